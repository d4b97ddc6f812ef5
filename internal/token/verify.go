package token

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Verification failures. Every error Verify returns wraps ErrInvalid, and
// expired tokens also wrap ErrExpired, so callers map them to RFC 6750
// "invalid_token" with errors.Is.
var (
	ErrInvalid = errors.New("token: invalid")
	ErrExpired = errors.New("token: expired")
)

// KeySource finds the public key for a kid.
type KeySource interface {
	PublicKey(ctx context.Context, kid string) (crypto.PublicKey, error)
}

// VerifierConfig pins what a token may be.
type VerifierConfig struct {
	Issuer    string
	Audience  string
	Leeway    time.Duration    // clock skew allowed on exp/iat/nbf; default 30s
	Now       func() time.Time // default time.Now
	CacheSize int              // verified-token cache entries; 0 = default 65536, <0 = no cache
	// LegacyBefore is the cutover of RFC 9068 typing: a token in the
	// format of earlier releases (typ "JWT", golang-jwt's default, or no
	// typ) is accepted only if its iat is before this instant, so the
	// tokens issued before an upgrade keep working until they expire, then
	// not. Zero: none is. A token of any other type than at+jwt is always
	// refused (typ.go).
	LegacyBefore time.Time
}

// Verifier checks access tokens. Verified tokens are cached, keyed by the
// SHA-256 of the token, and a cached entry is never used past the token's
// own expiry.
type Verifier struct {
	src    KeySource
	cfg    VerifierConfig
	parser *jwt.Parser
	cache  *lru.Cache[[32]byte, *Claims]
}

// NewVerifier returns a verifier that accepts only ES256 tokens from issuer
// for audience, with an expiry.
func NewVerifier(src KeySource, cfg VerifierConfig) (*Verifier, error) {
	if src == nil || cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("token: verifier needs a key source, issuer and audience")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{src: src, cfg: cfg}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{Alg}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	)
	if cfg.CacheSize >= 0 {
		size := cfg.CacheSize
		if size == 0 {
			size = 65536
		}
		c, err := lru.New[[32]byte, *Claims](size)
		if err != nil {
			return nil, fmt.Errorf("token: cache: %w", err)
		}
		v.cache = c
	}
	return v, nil
}

// errCachedExpired is what Verify returns for a token it verified before
// that has since expired: one value, not a new error per request.
var errCachedExpired = fmt.Errorf("%w: %w", ErrInvalid, ErrExpired)

// Cached answers from the verified-token cache alone: ok is false when
// raw is not there (Verify must then check it), and otherwise claims and
// err are what Verify would return. It never fetches a key, so callers
// can skip the context they would give Verify for that.
func (v *Verifier) Cached(raw string) (claims *Claims, err error, ok bool) {
	if v.cache == nil || raw == "" {
		return nil, nil, false
	}
	return v.cached(cacheKey(raw))
}

func (v *Verifier) cached(key [32]byte) (*Claims, error, bool) {
	c, ok := v.cache.Get(key)
	if !ok {
		return nil, nil, false
	}
	if v.cfg.Now().Before(c.ExpiresAt.Add(v.cfg.Leeway)) {
		return c, nil, true
	}
	v.cache.Remove(key)
	return nil, errCachedExpired, true
}

// keyBufs holds the byte copies of tokens being hashed for the cache
// (sha256.Sum256 takes a []byte; a conversion per Verify would allocate).
var keyBufs = sync.Pool{New: func() any { return new([]byte) }}

// cacheKey is the cache's key for raw: its SHA-256.
func cacheKey(raw string) [32]byte {
	b := keyBufs.Get().(*[]byte)
	*b = append((*b)[:0], raw...)
	key := sha256.Sum256(*b)
	if cap(*b) <= 8192 {
		keyBufs.Put(b)
	}
	return key
}

// Verify parses and checks raw. The returned claims must not be modified.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty token", ErrInvalid)
	}
	var key [32]byte
	if v.cache != nil {
		key = cacheKey(raw)
		if c, err, ok := v.cached(key); ok {
			return c, err
		}
	}
	claims := &Claims{}
	t, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		return v.src.PublicKey(ctx, kid)
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fmt.Errorf("%w: %w", ErrInvalid, ErrExpired)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	case claims.Subject == "" || claims.ID == "":
		return nil, fmt.Errorf("%w: missing sub or jti", ErrInvalid)
	}
	if err := v.checkType(t, claims); err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.Add(key, claims)
	}
	return claims, nil
}

// Forget drops every cached verification (after a key regeneration: R-1).
func (v *Verifier) Forget() {
	if v.cache != nil {
		v.cache.Purge()
	}
}
