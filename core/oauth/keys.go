package oauth

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// KeyStore is where the signing keys live, shared by every core node.
type KeyStore interface {
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
	PutSigningKey(ctx context.Context, k store.SigningKey) error
	RetireSigningKey(ctx context.Context, kid string, at time.Time) error
}

// Keys is the signing key ring: the keys that sign and verify
// access tokens, as the store holds them, and the verifier pinned to the
// issuer and audience.
type Keys struct {
	st  KeyStore
	ttl *Lifetimes
	log *slog.Logger
	now func() time.Time

	keys *token.KeySet
	ver  *token.Verifier
}

// LoadKeys reads the signing keys from the store, creating the first one.
func LoadKeys(ctx context.Context, st KeyStore, issuer, audience string, ttl *Lifetimes, log *slog.Logger, now func() time.Time) (*Keys, error) {
	k := &Keys{st: st, ttl: ttl, log: log, now: now}
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	var err error
	// RFC 9068 transition: tokens of the format before typing (typ JWT)
	// are accepted if issued before this node started (LegacyBefore), so
	// they last until they expire, at most one access-token lifetime.
	if k.ver, err = token.NewVerifier(k.keys, token.VerifierConfig{Issuer: issuer, Audience: audience, Now: now, LegacyBefore: now()}); err != nil {
		return nil, err
	}
	return k, nil
}

// load reads the signing keys from the store, creating the first one.
func (k *Keys) load(ctx context.Context) error {
	rows, err := k.st.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("core: signing keys: %w", err)
	}
	if len(k.live(rows)) == 0 {
		_, err := k.Rotate(ctx, false)
		return err
	}
	return k.install(k.live(rows))
}

// live drops keys retired longer ago than an access token lives: they
// sign nothing that is still valid, so they stop being published or trusted
// (also after a restart).
func (k *Keys) live(rows []store.SigningKey) []store.SigningKey {
	now := k.now()
	var keep []store.SigningKey
	for _, r := range rows {
		if r.RetiredAt.IsZero() || now.Sub(r.RetiredAt) < max(k.ttl.Access(), k.ttl.cfgAccess)+time.Minute {
			keep = append(keep, r)
		}
	}
	return keep
}

func (k *Keys) install(rows []store.SigningKey) error {
	keys := make([]token.Key, 0, len(rows))
	for _, r := range rows {
		pk, err := token.ParsePrivate(r.PrivatePEM)
		if err != nil {
			return fmt.Errorf("core: signing key %s: %w", r.KID, err)
		}
		keys = append(keys, token.Key{KID: r.KID, Private: pk, Created: r.CreatedAt, Retired: r.RetiredAt})
	}
	if k.keys == nil {
		ks, err := token.NewKeySet(keys)
		if err != nil {
			return fmt.Errorf("core: signing keys: %w", err)
		}
		k.keys = ks
		return nil
	}
	return k.keys.Replace(keys)
}

// keyRevokedAt marks a key retired so long ago that no token of it is
// valid any more: regenerating uses it to stop the old key at once.
var keyRevokedAt = time.Unix(1, 0)

// Rotate makes a new signing key active. With regen false the previous
// key keeps verifying (and stays in the JWKS) until every token it signed
// has expired. With regen true — the key may be compromised, R-1 `set key
// regen authz signing` — the previous keys stop verifying at once, so
// every token they signed stops working.
func (k *Keys) Rotate(ctx context.Context, regen bool) (string, error) {
	now := k.now()
	key, err := token.GenerateKey(now)
	if err != nil {
		return "", err
	}
	pemBytes, err := key.MarshalPrivate()
	if err != nil {
		return "", err
	}
	old, err := k.st.ListSigningKeys(ctx)
	if err != nil {
		return "", err
	}
	if err := k.st.PutSigningKey(ctx, store.SigningKey{KID: key.KID, Alg: token.Alg, PrivatePEM: pemBytes, CreatedAt: now}); err != nil {
		return "", fmt.Errorf("core: storing signing key: %w", err)
	}
	retireAt := now
	if regen {
		retireAt = keyRevokedAt
	}
	for _, o := range old {
		if o.RetiredAt.IsZero() || (regen && o.RetiredAt.After(keyRevokedAt)) {
			if err := k.st.RetireSigningKey(ctx, o.KID, retireAt); err != nil {
				return "", err
			}
		}
	}
	rows, err := k.st.ListSigningKeys(ctx)
	if err != nil {
		return "", err
	}
	if err := k.install(k.live(rows)); err != nil {
		return "", err
	}
	if regen {
		k.ver.Forget()
	}
	k.log.Info("signing key rotated", "kid", key.KID, "regenerated", regen)
	return key.KID, nil
}

// Reload picks up signing keys another node rotated or regenerated (R-1:
// a regenerated key must stop working on every node, and a new key must
// verify everywhere).
func (k *Keys) Reload(ctx context.Context) {
	rows, err := k.st.ListSigningKeys(ctx)
	if err != nil {
		k.log.Warn("reading signing keys", "err", err)
		return
	}
	live := k.live(rows)
	want := map[string]bool{}
	for _, r := range live {
		want[r.KID] = true
	}
	have := map[string]bool{}
	for _, key := range k.keys.JWKS().Keys {
		have[key.Kid] = true
	}
	same := len(want) == len(have)
	dropped := false
	for key := range have {
		if !want[key] {
			same, dropped = false, true
		}
	}
	if same {
		return
	}
	if err := k.install(live); err != nil {
		k.log.Warn("installing signing keys", "err", err)
		return
	}
	if dropped {
		k.ver.Forget()
	}
}

// JWKS is the public key set the core publishes.
func (k *Keys) JWKS() token.JWKS { return k.keys.JWKS() }

// Sign signs claims with the active key.
func (k *Keys) Sign(c *token.Claims) (string, error) { return k.keys.Sign(c) }

// Verify checks an access token's signature, issuer, audience and expiry
// (S-2); CheckAccessToken adds revocation.
func (k *Keys) Verify(ctx context.Context, raw string) (*token.Claims, error) {
	return k.ver.Verify(ctx, raw)
}
