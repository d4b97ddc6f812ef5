package turncred

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // RFC 8489 §9.2.2 long-term key: MD5(username ":" realm ":" password).
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // The TURN REST API credential is HMAC-SHA1 (coturn compatible).
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// MinSecretLen is the shortest shared secret accepted, in bytes.
const MinSecretLen = 32

// Errors. Verify and Check wrap them; compare with errors.Is.
var (
	// ErrMalformed: the username is not "<unix expiry>:<device>" or
	// "<unix expiry>:<device>:<family tag>".
	ErrMalformed = errors.New("turncred: malformed username")
	// ErrExpired: the username's expiry has passed.
	ErrExpired = errors.New("turncred: credential expired")
	// ErrMismatch: the credential is not the one the secret gives for the username.
	ErrMismatch = errors.New("turncred: credential does not match")
	// ErrShortSecret: the shared secret is shorter than MinSecretLen.
	ErrShortSecret = errors.New("turncred: shared secret too short")
)

// Name is who a credential was issued to: the device, and the tag of the
// refresh-token family its access token belongs to ("" for a token
// without a family, when the refresh login flow is off, S-10).
type Name struct {
	Device string
	Family string // FamilyTag of the family id, or ""
}

// FamilyTagLen is the length of a FamilyTag, in characters.
const FamilyTagLen = 32

// FamilyTag is what a credential carries of a refresh-token family id: a
// hash, so the family id itself (an internal handle of the core) never
// travels in the clear in a STUN USERNAME. 128 bits, lowercase hex.
func FamilyTag(family string) string {
	if family == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("edgeway turn family\x00" + family))
	return hex.EncodeToString(sum[:FamilyTagLen/2])
}

// Issue returns a credential for device valid until expires (rounded
// down to the second, so it never outlives expires). Without a family the
// username is "<unix expiry>:<device>".
func Issue(secret []byte, device string, expires time.Time) (username, credential string) {
	return IssueName(secret, Name{Device: device}, expires)
}

// IssueName is Issue for a device and the tag of its token family (see
// FamilyTag): "<unix expiry>:<device>:<family tag>", so the edge can
// refuse the credential once the family is revoked.
func IssueName(secret []byte, n Name, expires time.Time) (username, credential string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + n.Device
	if n.Family != "" {
		username += ":" + n.Family
	}
	return username, Password(secret, username)
}

// Password is the credential the secret gives for username:
// base64(HMAC-SHA1(secret, username)), as coturn computes it.
func Password(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify parses username, refuses it once its expiry is not after now,
// and returns the device (and family tag) it names and the long-term key (RFC 8489
// §9.2.2, MD5(username ":" realm ":" credential)) that a client holding
// the right credential signs its requests with in realm — what a
// pion/turn AuthHandler returns. A forged credential is caught by the
// MESSAGE-INTEGRITY check made with that key.
func Verify(secret []byte, realm, username string, now time.Time) (Name, []byte, error) {
	n, err := parse(username, now)
	if err != nil {
		return Name{}, nil, err
	}
	return n, LongTermKey(username, realm, Password(secret, username)), nil
}

// Check is Verify for a credential presented in the clear: it returns the
// name when credential is the secret's for username (compared in constant
// time) and username has not expired.
func Check(secret []byte, username, credential string, now time.Time) (Name, error) {
	n, err := parse(username, now)
	if err != nil {
		return Name{}, err
	}
	if subtle.ConstantTimeCompare([]byte(Password(secret, username)), []byte(credential)) != 1 {
		return Name{}, ErrMismatch
	}
	return n, nil
}

// LongTermKey is the RFC 8489 §9.2.2 key for the long-term credential
// mechanism with MD5: MD5(username ":" realm ":" password).
func LongTermKey(username, realm, password string) []byte {
	h := md5.New() //nolint:gosec // Mandated by RFC 8489 §9.2.2.
	h.Write([]byte(username + ":" + realm + ":" + password))
	return h.Sum(nil)
}

// parse splits "<unix expiry>:<device>[:<family tag>]" and checks the
// expiry. Device names never hold a colon (letters, digits, '-', '_').
func parse(username string, now time.Time) (Name, error) {
	exp, rest, ok := strings.Cut(username, ":")
	if !ok || exp == "" || len(exp) > 19 {
		return Name{}, ErrMalformed
	}
	device, family, tagged := strings.Cut(rest, ":")
	if device == "" || (tagged && !validTag(family)) {
		return Name{}, ErrMalformed
	}
	for _, c := range exp {
		if c < '0' || c > '9' {
			return Name{}, ErrMalformed
		}
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return Name{}, ErrMalformed
	}
	if t <= now.Unix() {
		return Name{}, fmt.Errorf("%w at %s", ErrExpired, time.Unix(t, 0).UTC().Format(time.RFC3339))
	}
	return Name{Device: device, Family: family}, nil
}

func validTag(s string) bool {
	if len(s) != FamilyTagLen {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// LoadSecret reads a shared secret file: its content without surrounding
// whitespace, used as is (like coturn's static-auth-secret), at least
// MinSecretLen bytes.
func LoadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("turncred: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecretLen {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want at least %d", ErrShortSecret, path, len(b), MinSecretLen)
	}
	return b, nil
}

// NewSecret returns a fresh secret in the form LoadSecret reads: 32
// random bytes, hex encoded (64 bytes of text).
func NewSecret() ([]byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	return []byte(hex.EncodeToString(raw)), nil
}
