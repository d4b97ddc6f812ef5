package oauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/store"
)

// The refresh grace (issue 9 item 15, RFC 9700 §4.14.2). A phone whose
// refresh response is lost on the way retries with the refresh token it
// still holds. Without a grace that is a replay and the whole family dies,
// so the phone needs a new activation code. With one, the rotation keeps the
// response it returned, sealed with AES-GCM under a key every core node
// reads from the store, on the old token's row; the same token presented
// again by the same device within the grace gets that response once more,
// exactly once (a conditional UPDATE in the store). A second retry, a retry
// after the grace, one from anywhere else, or one after the successor has
// been used is a replay as before.
//
// "The same device" is what the core can tell about the caller without
// trusting what it writes: the refresh token is bound to one device already;
// the retry must also come the same way (through an admitted edge, or
// on-premises) and from the same source IP (for MRA the phone's IP as the
// admitted edge reports it). A phone that changes networks between the lost
// response and its retry is therefore treated as a replay: the safe side.

// graceFrom identifies the caller for the grace.
func graceFrom(p Peer) string {
	// A bound family's response goes again only to its certificate
	// (RFC 8705 §3); a bearer caller's key is as before.
	bound := ""
	if p.Cnf != "" {
		bound = "|x5t#S256=" + p.Cnf
	}
	if p.MRA {
		return "mra|" + p.Source + bound
	}
	return "onprem|" + p.Source + bound
}

// sealedResponse is what the grace keeps: the response as it was sent and
// when.
type sealedResponse struct {
	Response TokenResponse `json:"response"`
	IssuedAt time.Time     `json:"issued_at"`
}

func newGraceAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("want a 32-byte key, have %d bytes", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// sealResponse seals res for the old token (its hash is the additional
// data, so a sealed response cannot be moved to another row).
func (s *Server) sealResponse(oldHash []byte, res *TokenResponse, now time.Time) ([]byte, error) {
	plain, err := json.Marshal(sealedResponse{Response: *res, IssuedAt: now})
	if err != nil {
		return nil, err
	}
	nonce, err := randomBytes(s.graceAEAD.NonceSize())
	if err != nil {
		return nil, err
	}
	return s.graceAEAD.Seal(nonce, nonce, plain, oldHash), nil
}

var errSealed = errors.New("core: sealed refresh response does not open")

// openResponse opens what sealResponse sealed and counts the lifetimes in
// it down to now.
func (s *Server) openResponse(oldHash, sealed []byte, now time.Time) (*TokenResponse, error) {
	n := s.graceAEAD.NonceSize()
	if len(sealed) < n {
		return nil, errSealed
	}
	plain, err := s.graceAEAD.Open(nil, sealed[:n], sealed[n:], oldHash)
	if err != nil {
		return nil, errSealed
	}
	var sr sealedResponse
	if err := json.Unmarshal(plain, &sr); err != nil {
		return nil, errSealed
	}
	res := sr.Response
	elapsed := int(now.Sub(sr.IssuedAt) / time.Second)
	res.ExpiresIn = max(1, res.ExpiresIn-elapsed)
	if res.RefreshExpiresIn > 0 {
		res.RefreshExpiresIn = max(1, res.RefreshExpiresIn-elapsed)
	}
	return &res, nil
}

// refreshGrace is the grace in force (0: off).
func (s *Server) refreshGrace() time.Duration {
	if s.cfg.RefreshGrace == nil {
		return DefaultRefreshGrace
	}
	return *s.cfg.RefreshGrace
}

// graceRetry answers a rotated refresh token presented again: the lost
// response when the grace allows it, else nil and store.ErrAlreadyUsed.
func (s *Server) graceRetry(ctx context.Context, p Peer, hash []byte, family string, now time.Time) (*TokenResponse, error) {
	if s.refreshGrace() <= 0 {
		return nil, store.ErrAlreadyUsed
	}
	sealed, err := s.st.RedeemGrace(ctx, hash, graceFrom(p), now)
	if err != nil {
		return nil, err
	}
	res, err := s.openResponse(hash, sealed, now)
	if err != nil {
		// A key the store no longer has, or a damaged row: the claim is
		// spent, so this is not retried; treat it as the replay it would
		// have been without a grace.
		s.log.Error("refresh grace", "family", family, "err", err, reqid.Attr, reqid.From(ctx))
		return nil, store.ErrAlreadyUsed
	}
	// Per request: DEBUG (a token issued, counted in
	// edgeway_core_tokens_issued_total).
	s.log.Debug("refresh response fetched again within the grace", "family", family, "device", res.Device, "source", p.Source, reqid.Attr, reqid.From(ctx))
	return res, nil
}
