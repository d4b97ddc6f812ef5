package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newSet(t *testing.T, now time.Time) (*KeySet, Key) {
	t.Helper()
	k, err := GenerateKey(now)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := NewKeySet([]Key{k})
	if err != nil {
		t.Fatal(err)
	}
	return ks, k
}

func claimsAt(now time.Time, ttl time.Duration) *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "https://core.test", Audience: jwt.ClaimStrings{"urn:edgeway:sip"},
			Subject: "SEP0011223344AA", ID: "jti-1",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Grant: GrantActivationCode, Origin: GrantActivationCode, Family: "fam",
	}
}

func TestVerifyRefusals(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	ks, _ := newSet(t, clk.t)
	other, _ := newSet(t, clk.t)
	v, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := ks.Sign(claimsAt(clk.t, time.Hour))
	if c, err := v.Verify(context.Background(), good); err != nil || c.Device() != "SEP0011223344AA" {
		t.Fatalf("good token: %v", err)
	}

	// Forged: same claims signed by a key the verifier does not hold, but
	// carrying the trusted kid.
	forgedTok := jwt.NewWithClaims(jwt.SigningMethodES256, claimsAt(clk.t, time.Hour))
	forgedTok.Header["kid"] = ks.ActiveKID()
	otherKey := other.active.Private
	forged, _ := forgedTok.SignedString(otherKey)

	// Tampered payload: change sub, keep the signature.
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	_ = json.Unmarshal(payload, &m)
	m["sub"] = "SEPFFFFFFFFFFFF"
	p2, _ := json.Marshal(m)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(p2) + "." + parts[2]

	// alg=none.
	noneTok := jwt.NewWithClaims(jwt.SigningMethodNone, claimsAt(clk.t, time.Hour))
	noneTok.Header["kid"] = ks.ActiveKID()
	none, _ := noneTok.SignedString(jwt.UnsafeAllowNoneSignatureType)

	expired, _ := ks.Sign(claimsAt(clk.t.Add(-2*time.Hour), time.Hour))
	wrongAud := claimsAt(clk.t, time.Hour)
	wrongAud.Audience = jwt.ClaimStrings{"urn:other"}
	wa, _ := ks.Sign(wrongAud)
	wrongIss := claimsAt(clk.t, time.Hour)
	wrongIss.Issuer = "https://evil.test"
	wi, _ := ks.Sign(wrongIss)
	noExp := claimsAt(clk.t, time.Hour)
	noExp.ExpiresAt = nil
	ne, _ := ks.Sign(noExp)

	cases := map[string]struct {
		tok     string
		expired bool
	}{
		"forged": {tok: forged}, "tampered": {tok: tampered}, "alg-none": {tok: none},
		"expired": {tok: expired, expired: true}, "wrong-aud": {tok: wa}, "wrong-iss": {tok: wi},
		"no-exp": {tok: ne}, "garbage": {tok: "abc.def.ghi"}, "empty": {tok: ""},
	}
	for name, tc := range cases {
		_, err := v.Verify(context.Background(), tc.tok)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
		if errors.Is(err, ErrExpired) != tc.expired {
			t.Errorf("%s: expired = %v, want %v (%v)", name, !tc.expired, tc.expired, err)
		}
	}
}

func TestCacheNeverOutlivesToken(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	ks, _ := newSet(t, clk.t)
	v, _ := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, Leeway: time.Second})
	tok, _ := ks.Sign(claimsAt(clk.t, time.Minute))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if v.cache.Len() != 1 {
		t.Fatalf("cache len %d, want 1", v.cache.Len())
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached token past expiry: %v, want ErrExpired", err)
	}
}

func TestRotationKeepsOldKeyVerifying(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ks, k1 := newSet(t, now)
	v, _ := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: func() time.Time { return now }})
	old, _ := ks.Sign(claimsAt(now, time.Hour))
	k2, _ := GenerateKey(now.Add(time.Second))
	k1.Retired = now
	if err := ks.Replace([]Key{k1, k2}); err != nil {
		t.Fatal(err)
	}
	if ks.ActiveKID() != k2.KID {
		t.Fatal("new key is not active")
	}
	fresh, _ := ks.Sign(claimsAt(now, time.Hour))
	for _, tok := range []string{old, fresh} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("verify after rotation: %v", err)
		}
	}
	if len(ks.JWKS().Keys) != 2 {
		t.Fatal("JWKS must publish both keys")
	}
	// Dropping the old key (regeneration, R-1) makes its tokens fail.
	_ = ks.Replace([]Key{k2})
	v.Forget()
	if _, err := v.Verify(context.Background(), old); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of a dropped key: %v", err)
	}
}

func TestRemoteJWKSRefetchesOnUnknownKidButPaced(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	ks, _ := newSet(t, clk.t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(ks.JWKS())
	}))
	defer srv.Close()
	r := &RemoteJWKS{URL: srv.URL, Client: srv.Client(), Now: clk.Now}
	v, _ := NewVerifier(r, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, CacheSize: -1})
	tok, _ := ks.Sign(claimsAt(clk.t, time.Hour))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// Rotate on the core: the edge sees an unknown kid and refetches once.
	k2, _ := GenerateKey(clk.t.Add(time.Second))
	_ = ks.Replace(append(ks.keys, k2))
	clk.t = clk.t.Add(2 * time.Second)
	tok2, _ := ks.Sign(claimsAt(clk.t, time.Hour))
	if _, err := v.Verify(context.Background(), tok2); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if hits.Load() != 2 {
		t.Fatalf("fetches = %d, want 2", hits.Load())
	}
}

// Junk kids cannot make the edge hammer the core: a concurrent burst shares
// one refetch per pacing window (real clock).
func TestRemoteJWKSPacesJunkKids(t *testing.T) {
	ks, k := newSet(t, time.Now())
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(ks.JWKS())
	}))
	defer srv.Close()
	r := &RemoteJWKS{URL: srv.URL, Client: srv.Client(), MinRefresh: 200 * time.Millisecond}
	v, _ := NewVerifier(r, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", CacheSize: -1})
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	junk := jwt.NewWithClaims(jwt.SigningMethodES256, claimsAt(time.Now(), time.Hour))
	junk.Header["kid"] = "junk"
	s, _ := junk.SignedString(k.Private)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), s); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("junk kid: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := hits.Load(); n > 3 {
		t.Fatalf("50 concurrent junk kids caused %d fetches, want at most 3", n)
	}
}

func TestParseJWKSRejectsOffCurve(t *testing.T) {
	bad := `{"keys":[{"kty":"EC","crv":"P-256","kid":"x","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 43) + `"}]}`
	if _, err := ParseJWKS([]byte(bad)); err == nil {
		t.Fatal("off-curve key accepted")
	}
}

func BenchmarkVerify(b *testing.B) {
	now := time.Now()
	k, _ := GenerateKey(now)
	ks, _ := NewKeySet([]Key{k})
	tok, _ := ks.Sign(claimsAt(now, time.Hour))
	for _, size := range []int{-1, 0} {
		name := map[int]string{-1: "uncached", 0: "cached"}[size]
		b.Run(name, func(b *testing.B) {
			v, _ := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", CacheSize: size})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A core that cannot be reached is "unavailable", not "bad token".
func TestRemoteJWKSUnreachableIsUnavailable(t *testing.T) {
	ks, _ := newSet(t, time.Now())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	r := &RemoteJWKS{URL: srv.URL, Client: srv.Client(), MinRefresh: time.Millisecond}
	v, _ := NewVerifier(r, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", CacheSize: -1})
	tok, _ := ks.Sign(claimsAt(time.Now(), time.Hour))
	_, err := v.Verify(context.Background(), tok)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("unreachable key source: %v, want ErrUnavailable", err)
	}
}

// Cached answers from the verified-token cache only, as Verify would:
// nothing before a token was verified, the claims while it lives,
// ErrExpired (and the entry gone) past its expiry, and never a token
// Verify refused.
func TestCachedAgreesWithVerify(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	ks, _ := newSet(t, clk.t)
	v, _ := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, Leeway: time.Second})
	tok, _ := ks.Sign(claimsAt(clk.t, time.Minute))
	if _, _, ok := v.Cached(tok); ok {
		t.Fatal("Cached answered for a token never verified")
	}
	want, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	got, err, ok := v.Cached(tok)
	if !ok || err != nil || got != want {
		t.Fatalf("Cached = %v, %v, %v; want the verified claims", got, err, ok)
	}
	if n := testing.AllocsPerRun(100, func() { v.Cached(tok) }); n != 0 {
		t.Errorf("a cache hit allocates %v times", n)
	}
	bad := tok[:len(tok)-2] + "AA"
	if _, err := v.Verify(context.Background(), bad); err == nil {
		t.Fatal("tampered token verified")
	}
	if _, _, ok := v.Cached(bad); ok {
		t.Fatal("a refused token is in the cache")
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if _, err, ok := v.Cached(tok); !ok || !errors.Is(err, ErrExpired) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Cached past expiry = %v, %v; want ErrExpired", err, ok)
	}
	if v.cache.Len() != 0 {
		t.Fatalf("expired entry kept: cache len %d", v.cache.Len())
	}
	uncached, _ := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, CacheSize: -1})
	if _, _, ok := uncached.Cached(tok); ok {
		t.Fatal("Cached answered without a cache")
	}
}
