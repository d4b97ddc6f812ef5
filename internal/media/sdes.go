package media

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// The SDES crypto suites this package speaks.
const (
	// SuiteAESCM128HMACSHA1_80 is AES-128 counter mode with an 80-bit
	// HMAC-SHA1 tag (RFC 4568 §6.2.1): a 16-byte key and a 14-byte salt.
	SuiteAESCM128HMACSHA1_80 = "AES_CM_128_HMAC_SHA1_80"
	// SuiteAEADAES128GCM is AES-128 GCM (RFC 7714 §14.2): a 16-byte key
	// and a 12-byte salt, 16-byte tag.
	SuiteAEADAES128GCM = "AEAD_AES_128_GCM"
)

// MinLifetime is the shortest master-key lifetime, in packets, ParseCrypto
// accepts. This package never re-keys during a call, so a key that must be
// replaced sooner cannot be honoured; 2^31 is also the SRTCP index limit
// (RFC 4568 §6.1), about 497 days of 20 ms packets.
const MinLifetime = 1 << 31

// maxLifetime is the SRTP limit on a master key's use (RFC 3711 §9.2).
const maxLifetime = 1 << 48

// maxTag is the largest tag the 1*9DIGIT grammar allows (RFC 4568 §9.1).
const maxTag = 999999999

// Errors from ParseCrypto and NewCrypto; compare with errors.Is.
var (
	// ErrCryptoSyntax: the line does not follow the a=crypto grammar.
	ErrCryptoSyntax = errors.New("media: malformed a=crypto attribute")
	// ErrUnknownSuite: a well-formed line with a suite we do not speak.
	// An offer may carry such lines; they are skipped, not fatal.
	ErrUnknownSuite = errors.New("media: unsupported SDES crypto suite")
	// ErrCryptoKey: the inline key is not base64 or has the wrong length
	// for its suite.
	ErrCryptoKey = errors.New("media: bad SDES master key")
	// ErrCryptoParam: a well-formed line that asks for something this
	// package does not do (MKI, several keys, a short lifetime, session
	// parameters).
	ErrCryptoParam = errors.New("media: unsupported SDES parameter")
)

type suite struct {
	keyLen, saltLen int
	profile         srtp.ProtectionProfile
}

var suites = map[string]suite{
	SuiteAESCM128HMACSHA1_80: {16, 14, srtp.ProtectionProfileAes128CmHmacSha1_80},
	SuiteAEADAES128GCM:       {16, 12, srtp.ProtectionProfileAeadAes128Gcm},
}

// Crypto is one SDES a=crypto attribute (RFC 4568): the tag that pairs an
// answer with its offer, the suite, and the inline master key followed by
// the master salt.
//
// Key is a secret: String and LogValue print only a short SHA-256 prefix.
type Crypto struct {
	Tag   int
	Suite string
	Key   []byte // master key || master salt
}

// NewCrypto makes a fresh master key and salt for suite from crypto/rand.
func NewCrypto(tag int, suiteName string) (Crypto, error) {
	if tag < 0 || tag > maxTag {
		return Crypto{}, fmt.Errorf("%w: tag %d outside 0-%d", ErrCryptoSyntax, tag, maxTag)
	}
	s, ok := suites[suiteName]
	if !ok {
		return Crypto{}, fmt.Errorf("%w: %q", ErrUnknownSuite, suiteName)
	}
	key := make([]byte, s.keyLen+s.saltLen)
	if _, err := rand.Read(key); err != nil {
		return Crypto{}, fmt.Errorf("media: reading random master key: %w", err)
	}
	return Crypto{Tag: tag, Suite: suiteName, Key: key}, nil
}

// Attribute is the SDP line, for example
// "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64 key||salt>".
func (c Crypto) Attribute() string {
	return fmt.Sprintf("a=crypto:%d %s inline:%s", c.Tag, c.Suite, base64.StdEncoding.EncodeToString(c.Key))
}

// String names the attribute without its key.
func (c Crypto) String() string {
	sum := sha256.Sum256(c.Key)
	return fmt.Sprintf("crypto:%d %s key=sha256:%s", c.Tag, c.Suite, hex.EncodeToString(sum[:4]))
}

// GoString keeps %#v from printing the key.
func (c Crypto) GoString() string { return "media.Crypto{" + c.String() + "}" }

// LogValue keeps slog from printing the key.
func (c Crypto) LogValue() slog.Value { return slog.StringValue(c.String()) }

// validate checks that c is usable for SRTP.
func (c Crypto) validate() (suite, error) {
	s, ok := suites[c.Suite]
	if !ok {
		return suite{}, fmt.Errorf("%w: %q", ErrUnknownSuite, c.Suite)
	}
	if len(c.Key) != s.keyLen+s.saltLen {
		return suite{}, fmt.Errorf("%w: %s needs %d bytes of key and salt, got %d",
			ErrCryptoKey, c.Suite, s.keyLen+s.saltLen, len(c.Key))
	}
	return s, nil
}

// ParseCrypto parses one a=crypto attribute (RFC 4568 §9.1), with or
// without the leading "a=" and trailing CRLF:
//
//	a=crypto:<tag> <suite> inline:<key||salt>[|<lifetime>][|<mki>:<length>] [<session-param> ...]
//
// It is strict. The key must be canonical padded base64 of exactly the
// suite's key and salt length. What it does with the optional parts:
//
//   - lifetime ("2^31" or decimal): accepted when at least MinLifetime
//     packets (we never re-key mid-call), refused with ErrCryptoParam when
//     shorter, ErrCryptoSyntax above 2^48;
//   - MKI: refused with ErrCryptoParam (one key per direction, no MKI
//     field on the wire);
//   - several keys (";"-separated key-params): refused with ErrCryptoParam;
//   - session parameters (KDR=, UNENCRYPTED_SRTP, WSH=, …): refused with
//     ErrCryptoParam, as §6.3 requires of a parameter the receiver does not
//     implement.
//
// An unknown suite is ErrUnknownSuite, checked after the grammar, so an
// offer's lines for other suites can be skipped while malformed lines fail.
func ParseCrypto(line string) (Crypto, error) {
	s := strings.TrimRight(line, "\r\n")
	s = strings.TrimPrefix(s, "a=")
	rest, ok := strings.CutPrefix(s, "crypto:")
	if !ok {
		return Crypto{}, fmt.Errorf("%w: want \"crypto:\", got %.20q", ErrCryptoSyntax, s)
	}
	fields := strings.Split(rest, " ")
	if len(fields) < 3 {
		return Crypto{}, fmt.Errorf("%w: want <tag> <suite> <key-params>", ErrCryptoSyntax)
	}
	for _, f := range fields {
		if f == "" {
			return Crypto{}, fmt.Errorf("%w: empty field (fields are separated by one space)", ErrCryptoSyntax)
		}
	}
	tag, err := parseTag(fields[0])
	if err != nil {
		return Crypto{}, err
	}
	suiteName := fields[1]
	if !isToken(suiteName) {
		return Crypto{}, fmt.Errorf("%w: suite %q", ErrCryptoSyntax, suiteName)
	}
	if strings.Contains(fields[2], ";") {
		return Crypto{}, fmt.Errorf("%w: several master keys in one attribute", ErrCryptoParam)
	}
	method, keyInfo, ok := strings.Cut(fields[2], ":")
	if !ok || method != "inline" {
		return Crypto{}, fmt.Errorf("%w: key method must be \"inline\"", ErrCryptoSyntax)
	}
	parts := strings.Split(keyInfo, "|")
	if len(parts) > 3 {
		return Crypto{}, fmt.Errorf("%w: too many \"|\" in key-info", ErrCryptoSyntax)
	}
	// Check the grammar of lifetime and MKI before deciding on the suite.
	var paramErr error
	for i, p := range parts[1:] {
		if strings.Contains(p, ":") {
			if err := checkMKI(p); err != nil {
				return Crypto{}, err
			}
			if i == 0 && len(parts) == 3 {
				return Crypto{}, fmt.Errorf("%w: MKI before lifetime", ErrCryptoSyntax)
			}
			paramErr = fmt.Errorf("%w: MKI %q", ErrCryptoParam, p)
			continue
		}
		if i == 1 {
			return Crypto{}, fmt.Errorf("%w: second key-info parameter %q is not an MKI", ErrCryptoSyntax, p)
		}
		life, err := parseLifetime(p)
		if err != nil {
			return Crypto{}, err
		}
		if life < MinLifetime && paramErr == nil {
			paramErr = fmt.Errorf("%w: lifetime %s is shorter than 2^31 packets and re-keying is not implemented", ErrCryptoParam, p)
		}
	}
	if len(fields) > 3 && paramErr == nil {
		paramErr = fmt.Errorf("%w: session parameter %q", ErrCryptoParam, fields[3])
	}
	su, ok := suites[suiteName]
	if !ok {
		return Crypto{}, fmt.Errorf("%w: %q", ErrUnknownSuite, suiteName)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return Crypto{}, fmt.Errorf("%w: inline key is not base64: %v", ErrCryptoKey, err)
	}
	if len(key) != su.keyLen+su.saltLen {
		return Crypto{}, fmt.Errorf("%w: %s needs %d bytes of key and salt, got %d",
			ErrCryptoKey, suiteName, su.keyLen+su.saltLen, len(key))
	}
	if paramErr != nil {
		return Crypto{}, paramErr
	}
	return Crypto{Tag: tag, Suite: suiteName, Key: key}, nil
}

func parseTag(s string) (int, error) {
	if len(s) == 0 || len(s) > 9 || !allDigits(s) {
		return 0, fmt.Errorf("%w: tag %q is not 1-9 digits", ErrCryptoSyntax, s)
	}
	n, _ := strconv.Atoi(s)
	return n, nil
}

// parseLifetime reads ["2^"]1*DIGIT.
func parseLifetime(s string) (uint64, error) {
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		if exp == "" || len(exp) > 2 || !allDigits(exp) {
			return 0, fmt.Errorf("%w: lifetime %q", ErrCryptoSyntax, s)
		}
		n, _ := strconv.Atoi(exp)
		if n > 48 {
			return 0, fmt.Errorf("%w: lifetime %q exceeds 2^48", ErrCryptoSyntax, s)
		}
		return 1 << n, nil
	}
	if s == "" || !allDigits(s) {
		return 0, fmt.Errorf("%w: lifetime %q", ErrCryptoSyntax, s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > maxLifetime {
		return 0, fmt.Errorf("%w: lifetime %q outside 1-2^48", ErrCryptoSyntax, s)
	}
	return n, nil
}

// checkMKI reads mki-value ":" mki-length (1*DIGIT ":" 1*3DIGIT, length 1-128).
func checkMKI(s string) error {
	v, l, _ := strings.Cut(s, ":")
	if v == "" || !allDigits(v) || l == "" || len(l) > 3 || !allDigits(l) {
		return fmt.Errorf("%w: MKI %q", ErrCryptoSyntax, s)
	}
	if n, _ := strconv.Atoi(l); n < 1 || n > 128 {
		return fmt.Errorf("%w: MKI length %q outside 1-128", ErrCryptoSyntax, l)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isToken reports whether s is 1*(ALPHA / DIGIT / "_"), the suite grammar.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
