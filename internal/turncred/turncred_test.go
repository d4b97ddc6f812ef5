package turncred

import (
	"bytes"
	"crypto/md5"  //nolint:gosec
	"crypto/sha1" //nolint:gosec
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef-edgeway-test")

// hmacSHA1 is RFC 2104 written out, so the test does not share
// crypto/hmac with the code under test.
func hmacSHA1(key, msg []byte) []byte {
	if len(key) > 64 {
		k := sha1.Sum(key) //nolint:gosec
		key = k[:]
	}
	k := make([]byte, 64)
	copy(k, key)
	ipad, opad := make([]byte, 64), make([]byte, 64)
	for i := range k {
		ipad[i], opad[i] = k[i]^0x36, k[i]^0x5c
	}
	inner := sha1.Sum(append(ipad, msg...))      //nolint:gosec
	outer := sha1.Sum(append(opad, inner[:]...)) //nolint:gosec
	return outer[:]
}

// The password derivation is coturn's (use-auth-secret): base64 of
// HMAC-SHA1 keyed with the secret text over the whole username.
func TestPasswordIsCoturnCompatible(t *testing.T) {
	const user = "1700000000:SEP001122334401"
	// `echo -n 1700000000:SEP001122334401 | openssl dgst -sha1 -hmac <secret> -binary | base64`
	const fromOpenSSL = "8Zse3yMIwP4gG2FVY1ihj6awwa4="
	if got := Password(secret, user); got != fromOpenSSL {
		t.Errorf("Password = %q, openssl says %q", got, fromOpenSSL)
	}
	for _, u := range []string{user, "1:x", "4102444800:CSFDEMO", "1700000000:" + strings.Repeat("d", 200)} {
		want := base64.StdEncoding.EncodeToString(hmacSHA1(secret, []byte(u)))
		if got := Password(secret, u); got != want {
			t.Errorf("Password(%q) = %q, RFC 2104 by hand gives %q", u, got, want)
		}
	}
	// A long secret (> the SHA-1 block) is hashed first, as HMAC says.
	long := bytes.Repeat([]byte("s"), 100)
	if got, want := Password(long, user), base64.StdEncoding.EncodeToString(hmacSHA1(long, []byte(user))); got != want {
		t.Errorf("long secret: %q, want %q", got, want)
	}

	// And pion/turn's own TURN REST generator agrees.
	u, p, err := turn.GenerateLongTermTURNRESTCredentials(string(secret), "SEP001122334401", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := Password(secret, u); got != p {
		t.Errorf("pion's credential for %q is %q, ours %q", u, p, got)
	}
}

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(time.Hour + 900*time.Millisecond)
	user, cred := Issue(secret, "SEP001122334401", exp)
	if user != "1700003600:SEP001122334401" {
		t.Fatalf("username %q: want the expiry rounded down, then the device", user)
	}
	name, key, err := Verify(secret, "edgeway.test", user, now)
	if err != nil || name != (Name{Device: "SEP001122334401"}) {
		t.Fatalf("Verify = %+v, %v", name, err)
	}
	want := md5.Sum([]byte(user + ":edgeway.test:" + cred)) //nolint:gosec
	if !bytes.Equal(key, want[:]) {
		t.Errorf("key %x, want MD5(user:realm:credential) %x", key, want)
	}
	if pk := turn.GenerateAuthKey(user, "edgeway.test", cred); !bytes.Equal(key, pk) {
		t.Errorf("key %x, pion's GenerateAuthKey %x", key, pk)
	}
	if n, err := Check(secret, user, cred, now); err != nil || n.Device != "SEP001122334401" {
		t.Errorf("Check = %+v, %v", n, err)
	}

	// Another secret gives another key: a forged credential fails pion's
	// MESSAGE-INTEGRITY check, and Check.
	_, other, _ := Verify([]byte(strings.Repeat("x", 40)), "edgeway.test", user, now)
	if bytes.Equal(other, key) {
		t.Error("a different secret gives the same key")
	}
	if _, err := Check(secret, user, Password([]byte(strings.Repeat("x", 40)), user), now); !errors.Is(err, ErrMismatch) {
		t.Errorf("forged credential: %v, want ErrMismatch", err)
	}
	// The device is bound: the credential of one user does not fit another.
	if _, err := Check(secret, "1700003600:SEP001122334402", cred, now); !errors.Is(err, ErrMismatch) {
		t.Errorf("credential reused for another device: %v, want ErrMismatch", err)
	}

	// Expired: at and after the expiry second.
	for _, at := range []time.Time{time.Unix(1_700_003_600, 0), exp.Add(time.Second)} {
		if _, _, err := Verify(secret, "r", user, at); !errors.Is(err, ErrExpired) {
			t.Errorf("Verify at %v: %v, want ErrExpired", at.Unix(), err)
		}
		if _, err := Check(secret, user, cred, at); !errors.Is(err, ErrExpired) {
			t.Errorf("Check at %v: %v, want ErrExpired", at.Unix(), err)
		}
	}
	// Still valid the second before.
	if _, _, err := Verify(secret, "r", user, time.Unix(1_700_003_599, 999)); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, u := range []string{
		"", "SEP001122334401", "1800000000", "1800000000:", ":SEP1", "abc:SEP1", "-1:SEP1", "+1800000000:SEP1",
		" 1800000000:SEP1", "1.8e9:SEP1", "99999999999999999999:SEP1", "0x6b49d200:SEP1",
		// A third part must be a family tag: 32 lowercase hex digits.
		"1800000000:a:b", "1800000000:SEP1:", "1800000000::" + FamilyTag("f"), "1800000000:SEP1:" + strings.ToUpper(FamilyTag("f")),
		"1800000000:SEP1:" + FamilyTag("f") + "0", "1800000000:SEP1:" + FamilyTag("f") + ":" + FamilyTag("g"),
	} {
		if _, _, err := Verify(secret, "r", u, now); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%q) = %v, want ErrMalformed", u, err)
		}
		if _, err := Check(secret, u, Password(secret, u), now); !errors.Is(err, ErrMalformed) {
			t.Errorf("Check(%q) = %v, want ErrMalformed", u, err)
		}
	}
}

// A credential for a token family names the family's tag; the tag is a
// hash (the family id does not travel in STUN USERNAMEs), it binds the
// credential (changing or dropping it breaks the HMAC), and expiry still
// applies.
func TestIssueWithFamily(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const family = "0123456789abcdef0123456789abcdef"
	tag := FamilyTag(family)
	if len(tag) != FamilyTagLen || strings.Contains(tag, family) || tag == FamilyTag("other") || FamilyTag("") != "" {
		t.Fatalf("FamilyTag(%q) = %q", family, tag)
	}
	user, cred := IssueName(secret, Name{Device: "SEP001122334401", Family: tag}, now.Add(time.Hour))
	if user != "1700003600:SEP001122334401:"+tag {
		t.Fatalf("username %q", user)
	}
	n, key, err := Verify(secret, "r", user, now)
	if err != nil || n != (Name{Device: "SEP001122334401", Family: tag}) {
		t.Fatalf("Verify = %+v, %v", n, err)
	}
	if !bytes.Equal(key, LongTermKey(user, "r", cred)) {
		t.Error("key is not the long-term key of the credential")
	}
	if got, err := Check(secret, user, cred, now); err != nil || got != n {
		t.Errorf("Check = %+v, %v", got, err)
	}
	for _, other := range []string{"1700003600:SEP001122334401", "1700003600:SEP001122334401:" + FamilyTag("another family")} {
		if _, err := Check(secret, other, cred, now); !errors.Is(err, ErrMismatch) {
			t.Errorf("credential with the tag dropped or changed (%q): %v, want ErrMismatch", other, err)
		}
	}
	if _, err := Check(secret, user, cred, now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: %v, want ErrExpired", err)
	}
}

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) < MinSecretLen {
		t.Fatalf("NewSecret gave %d bytes", len(s))
	}
	path := filepath.Join(dir, "turn.secret")
	if err := os.WriteFile(path, append(append([]byte{}, s...), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSecret(path)
	if err != nil || !bytes.Equal(got, s) {
		t.Fatalf("LoadSecret = %q, %v; want %q (trailing newline trimmed)", got, err, s)
	}
	if s2, _ := NewSecret(); bytes.Equal(s2, s) {
		t.Error("two NewSecret calls agree")
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("  "+strings.Repeat("k", MinSecretLen-1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecret(short); !errors.Is(err, ErrShortSecret) {
		t.Errorf("short secret: %v, want ErrShortSecret", err)
	}
	if _, err := LoadSecret(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}
