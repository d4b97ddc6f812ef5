package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// Alg is the only signing algorithm Edgeway issues and accepts.
const Alg = "ES256"

var (
	ErrUnknownKey = errors.New("token: unknown signing key")
	ErrNoKey      = errors.New("token: no active signing key")
	// ErrUnavailable means the keys could not be fetched (the core is
	// unreachable), so a token could be neither accepted nor refused.
	ErrUnavailable = errors.New("token: signing keys unavailable")
)

// Key is one signing key. A retired key no longer signs but still verifies
// until Retired+grace has passed.
type Key struct {
	KID     string
	Private *ecdsa.PrivateKey
	Created time.Time
	Retired time.Time // zero while active
}

// GenerateKey creates a P-256 key whose kid is derived from its public key.
func GenerateKey(now time.Time) (Key, error) {
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("token: generating key: %w", err)
	}
	return Key{KID: kidOf(&pk.PublicKey), Private: pk, Created: now}, nil
}

func kidOf(pub *ecdsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// MarshalPrivate returns the key as PKCS#8 PEM.
func (k Key) MarshalPrivate() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("token: marshal key %s: %w", k.KID, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivate parses a PKCS#8 PEM P-256 key.
func ParsePrivate(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("token: no PEM block in key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token: parse key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("token: key is not ECDSA P-256")
	}
	return ec, nil
}

// KeySet signs with its active key and verifies with any key it holds.
// It is safe for concurrent use; Replace swaps the whole set atomically.
type KeySet struct {
	mu     sync.RWMutex
	active *Key
	pub    map[string]*ecdsa.PublicKey
	keys   []Key
}

// NewKeySet builds a set from keys; the newest key with a zero Retired is
// the active one.
func NewKeySet(keys []Key) (*KeySet, error) {
	ks := &KeySet{}
	if err := ks.Replace(keys); err != nil {
		return nil, err
	}
	return ks, nil
}

// Replace swaps in a new list of keys (after a rotation, say).
func (ks *KeySet) Replace(keys []Key) error {
	pub := make(map[string]*ecdsa.PublicKey, len(keys))
	var active *Key
	for i := range keys {
		k := keys[i]
		pub[k.KID] = &k.Private.PublicKey
		if k.Retired.IsZero() && (active == nil || k.Created.After(active.Created)) {
			active = &keys[i]
		}
	}
	if active == nil {
		return ErrNoKey
	}
	ks.mu.Lock()
	ks.active, ks.pub, ks.keys = active, pub, append([]Key(nil), keys...)
	ks.mu.Unlock()
	return nil
}

// ActiveKID is the kid new tokens are signed with.
func (ks *KeySet) ActiveKID() string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.active.KID
}

// Sign signs an access token's claims with the active key, setting the
// kid header and typ at+jwt (RFC 9068 §2.1).
func (ks *KeySet) Sign(c *Claims) (string, error) {
	return ks.SignTyped(TypeAccess, c)
}

// PublicKey implements KeySource.
func (ks *KeySet) PublicKey(_ context.Context, kid string) (crypto.PublicKey, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if p, ok := ks.pub[kid]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// JWKS returns the public keys as a JSON Web Key Set (RFC 7517).
func (ks *KeySet) JWKS() JWKS {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := JWKS{Keys: make([]JWK, 0, len(ks.keys))}
	for _, k := range ks.keys {
		out.Keys = append(out.Keys, publicJWK(k.KID, &k.Private.PublicKey))
	}
	return out
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one EC public key (RFC 7518 §6.2.1).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

func publicJWK(kid string, p *ecdsa.PublicKey) JWK {
	enc := func(b *big.Int) string {
		buf := make([]byte, 32)
		return base64.RawURLEncoding.EncodeToString(b.FillBytes(buf))
	}
	return JWK{Kty: "EC", Crv: "P-256", X: enc(p.X), Y: enc(p.Y), Kid: kid, Use: "sig", Alg: Alg}
}

// ParseJWKS decodes a key set, keeping only well-formed P-256 signing keys.
func ParseJWKS(data []byte) (map[string]*ecdsa.PublicKey, error) {
	var set JWKS
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("token: decode JWKS: %w", err)
	}
	out := make(map[string]*ecdsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Kty != "EC" || k.Crv != "P-256" || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			continue
		}
		// Reject points that are not on the curve.
		uncompressed := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), uncompressed)
		if err != nil {
			continue
		}
		out[k.Kid] = pub
	}
	if len(out) == 0 {
		return nil, errors.New("token: JWKS holds no usable key")
	}
	return out, nil
}
