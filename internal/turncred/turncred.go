package turncred

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // RFC 8489 §9.2.2 long-term key: MD5(username ":" realm ":" password).
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // The TURN REST API credential is HMAC-SHA1 (coturn compatible).
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
	// ErrMalformed: the username is not "<unix expiry>:<device>".
	ErrMalformed = errors.New("turncred: malformed username")
	// ErrExpired: the username's expiry has passed.
	ErrExpired = errors.New("turncred: credential expired")
	// ErrMismatch: the credential is not the one the secret gives for the username.
	ErrMismatch = errors.New("turncred: credential does not match")
	// ErrShortSecret: the shared secret is shorter than MinSecretLen.
	ErrShortSecret = errors.New("turncred: shared secret too short")
)

// Issue returns a credential for device valid until expires (rounded
// down to the second, so it never outlives expires).
func Issue(secret []byte, device string, expires time.Time) (username, credential string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + device
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
// and returns the device it names and the long-term key (RFC 8489
// §9.2.2, MD5(username ":" realm ":" credential)) that a client holding
// the right credential signs its requests with in realm — what a
// pion/turn AuthHandler returns. A forged credential is caught by the
// MESSAGE-INTEGRITY check made with that key.
func Verify(secret []byte, realm, username string, now time.Time) (device string, key []byte, err error) {
	device, err = parse(username, now)
	if err != nil {
		return "", nil, err
	}
	return device, LongTermKey(username, realm, Password(secret, username)), nil
}

// Check is Verify for a credential presented in the clear: it returns the
// device when credential is the secret's for username (compared in
// constant time) and username has not expired.
func Check(secret []byte, username, credential string, now time.Time) (device string, err error) {
	device, err = parse(username, now)
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare([]byte(Password(secret, username)), []byte(credential)) != 1 {
		return "", ErrMismatch
	}
	return device, nil
}

// LongTermKey is the RFC 8489 §9.2.2 key for the long-term credential
// mechanism with MD5: MD5(username ":" realm ":" password).
func LongTermKey(username, realm, password string) []byte {
	h := md5.New() //nolint:gosec // Mandated by RFC 8489 §9.2.2.
	h.Write([]byte(username + ":" + realm + ":" + password))
	return h.Sum(nil)
}

// parse splits "<unix expiry>:<device>" and checks the expiry.
func parse(username string, now time.Time) (string, error) {
	exp, device, ok := strings.Cut(username, ":")
	if !ok || device == "" || exp == "" || len(exp) > 19 {
		return "", ErrMalformed
	}
	for _, c := range exp {
		if c < '0' || c > '9' {
			return "", ErrMalformed
		}
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "", ErrMalformed
	}
	if t <= now.Unix() {
		return "", fmt.Errorf("%w at %s", ErrExpired, time.Unix(t, 0).UTC().Format(time.RFC3339))
	}
	return device, nil
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
