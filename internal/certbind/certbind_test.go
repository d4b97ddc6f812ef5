package certbind

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestThumbprint(t *testing.T) {
	der := []byte("not really DER, but hashed as given")
	sum := sha256.Sum256(der)
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if got := Thumbprint(&x509.Certificate{Raw: der}); got != want || !Valid(got) {
		t.Fatalf("Thumbprint = %q (valid %v), want %q: base64url of SHA-256 of the DER, RFC 8705 §3.1", got, Valid(got), want)
	}
	if Thumbprint(nil) != "" || Of(nil) != "" {
		t.Fatal("no certificate, yet a thumbprint")
	}
	for _, bad := range []string{"", want + "=", want[:42], want[:42] + "+", want[:42] + "/"} {
		if Valid(bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}

// The header is believed only from an admitted edge, exactly once and
// well formed; a phone's copies are removed whatever their case.
func TestHeaderTrust(t *testing.T) {
	const v = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	r := &http.Request{Header: http.Header{}}
	r.Header.Set(Header, v)
	if FromHTTP(r, false) != "" || FromHTTP(r, true) != v {
		t.Fatal("HTTP: believed untrusted, or not believed trusted")
	}
	r.Header.Add(Header, v)
	if FromHTTP(r, true) != "" {
		t.Fatal("HTTP: two headers believed")
	}
	SetHTTP(r.Header, "")
	if len(r.Header.Values(Header)) != 0 {
		t.Fatal("HTTP: SetHTTP(\"\") kept the phone's header")
	}

	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "edgeway.test"})
	req.AppendHeader(sip.NewHeader("x-edgeway-client-cert-s256", "forged"))
	req.AppendHeader(sip.NewHeader(Header, v))
	if FromSIP(req, true) != "" {
		t.Fatal("SIP: two headers believed")
	}
	SetSIP(req, v)
	if FromSIP(req, false) != "" || FromSIP(req, true) != v {
		t.Fatal("SIP: after SetSIP, want the one value, believed only when trusted")
	}
	SetSIP(req, "")
	for _, h := range req.Headers() {
		if h.Name() == Header || h.Name() == "x-edgeway-client-cert-s256" {
			t.Fatalf("SIP: %s left after SetSIP(\"\")", h.Name())
		}
	}
}
