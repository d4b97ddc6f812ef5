package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// headerOf decodes a compact JWS's protected header.
func headerOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.SplitN(raw, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// RFC 9068 §2.1: every access token Sign makes is typed at+jwt.
func TestSignTypesAccessTokens(t *testing.T) {
	ks, k := newSet(t, time.Now())
	tok, err := ks.Sign(claimsAt(time.Now(), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h := headerOf(t, tok)
	if h["typ"] != "at+jwt" || h["alg"] != "ES256" || h["kid"] != k.KID {
		t.Fatalf("header %v, want typ at+jwt, alg ES256, kid %s", h, k.KID)
	}
}

// RFC 9068 §4, RFC 8725 §3.11: a JWT of another type, correctly signed by
// the same key, is not an access token; typ is compared as a media type
// (case-insensitive, "application/" optional).
func TestVerifyRefusesOtherTypes(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	ks, _ := newSet(t, clk.t)
	v, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now,
		UntypedBefore: clk.t.Add(time.Hour)}) // even with untyped tokens still accepted
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"JWT", "jwt", "refresh+jwt", "secevent+jwt", "at+jwt+x", "application/jwt", "logout+jwt"} {
		tok, err := ks.SignTyped(typ, claimsAt(clk.t, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), tok)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrWrongType) || !strings.Contains(err.Error(), "RFC 9068 §4") {
			t.Errorf("typ %q: %v, want ErrInvalid and ErrWrongType naming RFC 9068 §4", typ, err)
		}
		// Refused again, from the cache's point of view too.
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrWrongType) {
			t.Errorf("typ %q, second time: %v", typ, err)
		}
	}
	for _, typ := range []string{"at+jwt", "AT+JWT", "application/at+jwt"} {
		tok, _ := ks.SignTyped(typ, claimsAt(clk.t, time.Hour))
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("typ %q refused: %v", typ, err)
		}
	}
}

// The transition: an untyped token (the format before RFC 9068 typing)
// issued before the cutover verifies until it expires; one issued after
// the cutover is refused, and with no cutover none is.
func TestVerifyUntypedTransition(t *testing.T) {
	cutover := time.Unix(1_800_000_000, 0)
	clk := &clock{t: cutover}
	ks, _ := newSet(t, cutover.Add(-time.Hour))
	v, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, UntypedBefore: cutover})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before, _ := ks.SignTyped("", claimsAt(cutover.Add(-10*time.Minute), time.Hour)) // expires cutover+50m
	if _, ok := headerOf(t, before)["typ"]; ok {
		t.Fatal("SignTyped(\"\") wrote a typ")
	}
	for _, at := range []time.Duration{0, 20 * time.Minute, 49 * time.Minute} {
		clk.t = cutover.Add(at)
		if _, err := v.Verify(ctx, before); err != nil {
			t.Fatalf("untyped token issued before the cutover, at cutover+%v: %v", at, err)
		}
	}
	clk.t = cutover.Add(51 * time.Minute)
	if _, err := v.Verify(ctx, before); !errors.Is(err, ErrExpired) {
		t.Fatalf("untyped token past its exp: %v, want expired", err)
	}

	clk.t = cutover.Add(time.Minute)
	after, _ := ks.SignTyped("", claimsAt(cutover.Add(time.Second), time.Hour))
	if _, err := v.Verify(ctx, after); !errors.Is(err, ErrWrongType) {
		t.Fatalf("untyped token issued after the cutover: %v, want ErrWrongType", err)
	}
	noIat := claimsAt(cutover.Add(-time.Minute), time.Hour)
	noIat.IssuedAt = nil
	tok, _ := ks.SignTyped("", noIat)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrWrongType) {
		t.Fatalf("untyped token without iat: %v, want ErrWrongType", err)
	}

	strict, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Verify(ctx, before); !errors.Is(err, ErrWrongType) {
		t.Fatalf("untyped token, no cutover configured: %v, want ErrWrongType", err)
	}
}

// FuzzVerifyType: whatever the typ header (and whether there is one), a
// token correctly signed by a trusted key verifies exactly when the typ
// names an access token (at+jwt, RFC 9068 §4), or when there is none and
// the token was issued before the cutover; every refusal of a typ wraps
// ErrWrongType and ErrInvalid.
func FuzzVerifyType(f *testing.F) {
	for _, s := range []string{"at+jwt", "AT+JWT", "application/at+jwt", "JWT", "", "at+jwt ", "application/at+jwt;x=1", "secevent+jwt"} {
		f.Add(s, true, false)
		f.Add(s, false, true)
	}
	cutover := time.Unix(1_800_000_000, 0)
	clk := &clock{t: cutover.Add(time.Minute)}
	k, err := GenerateKey(cutover)
	if err != nil {
		f.Fatal(err)
	}
	ks, err := NewKeySet([]Key{k})
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, UntypedBefore: cutover, CacheSize: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ string, present, beforeCutover bool) {
		iat := cutover.Add(time.Second)
		if beforeCutover {
			iat = cutover.Add(-time.Second)
		}
		c := claimsAt(iat, time.Hour)
		var raw string
		if present {
			// SignTyped("") writes no typ: a present but empty one is built by hand.
			raw = jwtWithTyp(k, c, typ)
		} else {
			raw, err = ks.SignTyped("", c)
			if err != nil {
				t.Fatal(err)
			}
		}
		_, err := v.Verify(context.Background(), raw)
		want := (present && IsAccessType(typ)) || (!present && beforeCutover)
		if want && err != nil {
			t.Fatalf("typ %q (present %v, before cutover %v) refused: %v", typ, present, beforeCutover, err)
		}
		if !want && (!errors.Is(err, ErrWrongType) || !errors.Is(err, ErrInvalid)) {
			t.Fatalf("typ %q (present %v, before cutover %v): %v, want ErrWrongType", typ, present, beforeCutover, err)
		}
	})
}

// jwtWithTyp signs c with k under a typ header that is present even when
// empty.
func jwtWithTyp(k Key, c *Claims, typ string) string {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = k.KID
	t.Header["typ"] = typ
	s, err := t.SignedString(k.Private)
	if err != nil {
		panic(err)
	}
	return s
}
