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
// the same key, is not an access token — even when issued before the
// cutover, when the legacy format is still accepted; typ is compared as a
// media type (case-insensitive, "application/" optional).
func TestVerifyRefusesOtherTypes(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	ks, _ := newSet(t, clk.t)
	v, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now,
		LegacyBefore: clk.t.Add(time.Hour)}) // even with the legacy format still accepted
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"refresh+jwt", "secevent+jwt", "at+jwt+x", "application/jwt", "logout+jwt", "JOSE", "JWT "} {
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

// legacySign signs c exactly as KeySet.Sign did before RFC 9068 typing:
// golang-jwt's default header, {"alg": "ES256", "typ": "JWT"}, and the kid.
func legacySign(t *testing.T, k Key, c *Claims) string {
	t.Helper()
	tk := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tk.Header["kid"] = k.KID
	s, err := tk.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The transition: a token of the format before RFC 9068 typing (typ JWT,
// or none) issued before the cutover verifies until it expires; one issued
// after the cutover is refused, and with no cutover none is.
func TestVerifyLegacyTransition(t *testing.T) {
	cutover := time.Unix(1_800_000_000, 0)
	clk := &clock{t: cutover}
	ks, k := newSet(t, cutover.Add(-time.Hour))
	v, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, LegacyBefore: cutover})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := claimsAt(cutover.Add(-10*time.Minute), time.Hour) // expires cutover+50m
	legacy := legacySign(t, k, old)
	if h := headerOf(t, legacy); h["typ"] != "JWT" {
		t.Fatalf("the legacy format's header is %v, want typ JWT (golang-jwt's default)", h)
	}
	untyped, _ := ks.SignTyped("", old)
	if _, ok := headerOf(t, untyped)["typ"]; ok {
		t.Fatal("SignTyped(\"\") wrote a typ")
	}
	// A token of another type is refused even before the cutover.
	otherType, _ := ks.SignTyped("refresh+jwt", old)
	for name, before := range map[string]string{"typ JWT": legacy, "no typ": untyped} {
		for _, at := range []time.Duration{0, 20 * time.Minute, 49 * time.Minute} {
			clk.t = cutover.Add(at)
			if _, err := v.Verify(ctx, before); err != nil {
				t.Fatalf("%s, issued before the cutover, at cutover+%v: %v", name, at, err)
			}
			if _, err := v.Verify(ctx, otherType); !errors.Is(err, ErrWrongType) {
				t.Fatalf("typ refresh+jwt issued before the cutover: %v, want ErrWrongType", err)
			}
		}
		clk.t = cutover.Add(51 * time.Minute)
		if _, err := v.Verify(ctx, before); !errors.Is(err, ErrExpired) {
			t.Fatalf("%s, past its exp: %v, want expired", name, err)
		}
	}

	clk.t = cutover.Add(time.Minute)
	for name, after := range map[string]string{
		"typ JWT": legacySign(t, k, claimsAt(cutover.Add(time.Second), time.Hour)),
		"no typ":  func() string { s, _ := ks.SignTyped("", claimsAt(cutover.Add(time.Second), time.Hour)); return s }(),
	} {
		if _, err := v.Verify(ctx, after); !errors.Is(err, ErrWrongType) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s, issued after the cutover: %v, want ErrWrongType", name, err)
		}
	}
	noIat := claimsAt(cutover.Add(-time.Minute), time.Hour)
	noIat.IssuedAt = nil
	tok, _ := ks.SignTyped("", noIat)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrWrongType) {
		t.Fatalf("untyped token without iat: %v, want ErrWrongType", err)
	}
	if _, err := v.Verify(ctx, legacySign(t, k, noIat)); !errors.Is(err, ErrWrongType) {
		t.Fatalf("typ JWT without iat: %v, want ErrWrongType", err)
	}

	strict, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, before := range []string{legacy, untyped} {
		if _, err := strict.Verify(ctx, before); !errors.Is(err, ErrWrongType) {
			t.Fatalf("legacy token, no cutover configured: %v, want ErrWrongType", err)
		}
	}
}

// FuzzVerifyType: whatever the typ header (and whether there is one), a
// token correctly signed by a trusted key verifies exactly when the typ
// names an access token (at+jwt, RFC 9068 §4), or when it is of the
// legacy format (typ JWT, or none) and was issued before the cutover;
// every refusal of a typ wraps ErrWrongType and ErrInvalid.
func FuzzVerifyType(f *testing.F) {
	for _, s := range []string{"at+jwt", "AT+JWT", "application/at+jwt", "JWT", "jwt", "", "at+jwt ", "application/at+jwt;x=1", "secevent+jwt"} {
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
	v, err := NewVerifier(ks, VerifierConfig{Issuer: "https://core.test", Audience: "urn:edgeway:sip", Now: clk.Now, LegacyBefore: cutover, CacheSize: -1})
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
		legacy := !present || strings.EqualFold(typ, "JWT")
		want := (present && IsAccessType(typ)) || (legacy && beforeCutover)
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
