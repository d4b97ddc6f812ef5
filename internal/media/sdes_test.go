package media

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNewCrypto(t *testing.T) {
	for _, tc := range []struct {
		suite string
		size  int
	}{
		{SuiteAESCM128HMACSHA1_80, 30},
		{SuiteAEADAES128GCM, 28},
	} {
		a, err := NewCrypto(1, tc.suite)
		if err != nil {
			t.Fatalf("NewCrypto(%s): %v", tc.suite, err)
		}
		b, _ := NewCrypto(1, tc.suite)
		if len(a.Key) != tc.size {
			t.Errorf("%s: key+salt is %d bytes, want %d", tc.suite, len(a.Key), tc.size)
		}
		if bytes.Equal(a.Key, b.Key) {
			t.Errorf("%s: two NewCrypto calls gave the same key", tc.suite)
		}
	}
	if _, err := NewCrypto(1, "AES_256_CM_HMAC_SHA1_80"); !errors.Is(err, ErrUnknownSuite) {
		t.Errorf("unknown suite: %v, want ErrUnknownSuite", err)
	}
	if _, err := NewCrypto(1_000_000_000, SuiteAEADAES128GCM); !errors.Is(err, ErrCryptoSyntax) {
		t.Errorf("10-digit tag: %v, want ErrCryptoSyntax", err)
	}
}

func TestCryptoRoundTrip(t *testing.T) {
	for _, suite := range []string{SuiteAESCM128HMACSHA1_80, SuiteAEADAES128GCM} {
		c, err := NewCrypto(7, suite)
		if err != nil {
			t.Fatal(err)
		}
		line := c.Attribute()
		want := fmt.Sprintf("a=crypto:7 %s inline:%s", suite, base64.StdEncoding.EncodeToString(c.Key))
		if line != want {
			t.Errorf("Attribute() = %q, want %q", line, want)
		}
		for _, in := range []string{line, line + "\r\n", strings.TrimPrefix(line, "a=")} {
			got, err := ParseCrypto(in)
			if err != nil {
				t.Fatalf("ParseCrypto(%q): %v", in, err)
			}
			if got.Tag != c.Tag || got.Suite != c.Suite || !bytes.Equal(got.Key, c.Key) {
				t.Errorf("ParseCrypto(%q) = %v, want %v", in, got, c)
			}
		}
	}
}

// The key must not leak through fmt or slog.
func TestCryptoDoesNotPrintKey(t *testing.T) {
	c, _ := NewCrypto(1, SuiteAESCM128HMACSHA1_80)
	secret := base64.StdEncoding.EncodeToString(c.Key)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("offer", "crypto", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logged.String()} {
		if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprint(c.Key)) {
			t.Errorf("key printed: %s", s)
		}
		if !strings.Contains(s, "key=sha256:") {
			t.Errorf("no key fingerprint in %q", s)
		}
	}
}

func TestParseCryptoTable(t *testing.T) {
	// RFC 4568 §9.1 example key (30 bytes); the 28-byte one is made here.
	const key30 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
	key28 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 28))
	raw28 := base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 28))
	aes := func(params string) string { return "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + params }
	for _, tc := range []struct {
		name, line string
		want       error // nil: accepted
	}{
		{"aes cm", aes(""), nil},
		{"gcm", "a=crypto:2 AEAD_AES_128_GCM inline:" + key28, nil},
		{"lifetime 2^31", aes("|2^31"), nil},
		{"lifetime 2^48", aes("|2^48"), nil},
		{"decimal lifetime", aes("|2147483648"), nil},
		{"rfc 4568 example: 2^20 lifetime and MKI", aes("|2^20|1:4"), ErrCryptoParam},
		{"short lifetime", aes("|2^20"), ErrCryptoParam},
		{"short decimal lifetime", aes("|1000"), ErrCryptoParam},
		{"lifetime above 2^48", aes("|2^49"), ErrCryptoSyntax},
		{"zero lifetime", aes("|0"), ErrCryptoSyntax},
		{"bad lifetime", aes("|2^x"), ErrCryptoSyntax},
		{"mki", aes("|1:4"), ErrCryptoParam},
		{"lifetime and mki", aes("|2^31|1:4"), ErrCryptoParam},
		{"mki before lifetime", aes("|1:4|2^31"), ErrCryptoSyntax},
		{"mki length 0", aes("|1:0"), ErrCryptoSyntax},
		{"mki length 129", aes("|1:129"), ErrCryptoSyntax},
		{"three params", aes("|2^31|1:4|1:4"), ErrCryptoSyntax},
		{"two keys", aes(";inline:" + key30), ErrCryptoParam},
		{"session param KDR", aes(" KDR=1"), ErrCryptoParam},
		{"session param UNENCRYPTED_SRTP", aes(" UNENCRYPTED_SRTP"), ErrCryptoParam},
		{"unknown suite", "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + key30, ErrUnknownSuite},
		{"unknown suite _32", "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" + key30, ErrUnknownSuite},
		{"gcm 256", "a=crypto:1 AEAD_AES_256_GCM inline:" + key28, ErrUnknownSuite},
		{"bad base64", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!!" + key30[4:], ErrCryptoKey},
		{"unpadded base64", "a=crypto:2 AEAD_AES_128_GCM inline:" + raw28, ErrCryptoKey},
		{"gcm length for aes", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key28, ErrCryptoKey},
		{"aes length for gcm", "a=crypto:1 AEAD_AES_128_GCM inline:" + key30, ErrCryptoKey},
		{"empty key", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", ErrCryptoKey},
		{"tag not digits", "a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:" + key30, ErrCryptoSyntax},
		{"tag 10 digits", "a=crypto:1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key30, ErrCryptoSyntax},
		{"negative tag", "a=crypto:-1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, ErrCryptoSyntax},
		{"key method uri", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 uri:" + key30, ErrCryptoSyntax},
		{"no key method", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 " + key30, ErrCryptoSyntax},
		{"missing key", "a=crypto:1 AES_CM_128_HMAC_SHA1_80", ErrCryptoSyntax},
		{"double space", "a=crypto:1  AES_CM_128_HMAC_SHA1_80 inline:" + key30, ErrCryptoSyntax},
		{"bad suite token", "a=crypto:1 AES-CM inline:" + key30, ErrCryptoSyntax},
		{"not crypto", "a=rtpmap:0 PCMU/8000", ErrCryptoSyntax},
		{"empty", "", ErrCryptoSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCrypto(tc.line)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ParseCrypto(%q): %v", tc.line, err)
				}
				if _, err := c.validate(); err != nil {
					t.Fatalf("accepted Crypto does not validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseCrypto(%q) = %v, %v; want %v", tc.line, c, err, tc.want)
			}
		})
	}
}

func FuzzParseCrypto(f *testing.F) {
	c, _ := NewCrypto(1, SuiteAEADAES128GCM)
	f.Add(c.Attribute())
	f.Add("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|1:4 KDR=1")
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseCrypto(line)
		if err != nil {
			return
		}
		again, err := ParseCrypto(c.Attribute())
		if err != nil || again.Tag != c.Tag || again.Suite != c.Suite || !bytes.Equal(again.Key, c.Key) {
			t.Fatalf("%q parsed to %v, which does not round-trip: %v %v", line, c, again, err)
		}
	})
}
