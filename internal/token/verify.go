package token

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
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

// Verify parses and checks raw. The returned claims must not be modified.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty token", ErrInvalid)
	}
	var key [32]byte
	if v.cache != nil {
		key = sha256.Sum256([]byte(raw))
		if c, ok := v.cache.Get(key); ok {
			if v.cfg.Now().Before(c.ExpiresAt.Add(v.cfg.Leeway)) {
				return c, nil
			}
			v.cache.Remove(key)
			return nil, fmt.Errorf("%w: %w", ErrInvalid, ErrExpired)
		}
	}
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
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
