package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/acmetest"
	"github.com/edgeway/edgeway/internal/dnstest"
)

const acmeTestName = "edge.acme.test"

// acmeAgainstPebble runs Pebble validating challenges on pebblePort and
// the edge's ACME client answering them on solverPort.
func acmeAgainstPebble(t *testing.T, challenge string, solverPort, pebblePort int, validity time.Duration) (*acmeCerts, *acmetest.Pebble, *dnstest.Server) {
	t.Helper()
	dns := dnstest.Start(t, dnstest.Zone{A: map[string]netip.Addr{acmeTestName: netip.MustParseAddr("127.0.0.1")}})
	o := acmetest.Options{DNSServer: dns.Addr, HTTPPort: acmetest.FreePort(t), TLSPort: acmetest.FreePort(t), Validity: validity}
	if challenge == ChallengeHTTP01 {
		o.HTTPPort = pebblePort
	} else {
		o.TLSPort = pebblePort
	}
	peb := acmetest.Start(t, o)
	// Not t.TempDir: a background renewal cut short when the test stops
	// may still be writing there, and that must not fail the test.
	storage, err := os.MkdirTemp("", "edgeway-acme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(storage) })
	cfg := ACMEConfig{Directory: peb.Directory, Email: "ops@acme.test", AgreeTerms: true, Names: []string{acmeTestName},
		CARoot: peb.TLSRoot, Storage: filepath.Join(storage, "acme"), Challenge: challenge, ChallengeAddr: fmt.Sprintf("127.0.0.1:%d", solverPort)}
	if errs := cfg.validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	a, err := newACMECerts(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a, peb, dns
}

// Both challenge types the edge offers are validated by a real ACME
// server (RFC 8555 §8.3 HTTP-01, RFC 8737 TLS-ALPN-01), and the
// certificate verifies under the CA's root for the configured name; a
// handshake without SNI gets it too (tls.acme.names[0]).
func TestACMEObtainsOverEachChallenge(t *testing.T) {
	for _, ch := range []string{ChallengeHTTP01, ChallengeTLSALPN01} {
		t.Run(ch, func(t *testing.T) {
			port := acmetest.FreePort(t)
			a, peb, dns := acmeAgainstPebble(t, ch, port, port, 0)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := a.start(ctx); err != nil {
				t.Fatalf("obtaining: %v\npebble:\n%s", err, peb.Output())
			}
			defer a.stop()
			if dns.Queries() == 0 {
				t.Fatal("Pebble never resolved the name: the challenge was not validated")
			}
			for _, sni := range []string{acmeTestName, ""} {
				c, err := a.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
				if err != nil {
					t.Fatalf("SNI %q: %v", sni, err)
				}
				leaf, err := x509.ParseCertificate(c.Certificate[0])
				if err != nil {
					t.Fatal(err)
				}
				inter := x509.NewCertPool()
				for _, der := range c.Certificate[1:] {
					ic, _ := x509.ParseCertificate(der)
					inter.AddCert(ic)
				}
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: peb.Roots, Intermediates: inter, DNSName: acmeTestName}); err != nil {
					t.Fatalf("SNI %q: certificate does not verify under Pebble's root for %s: %v", sni, acmeTestName, err)
				}
			}
		})
	}
}

// The validation is real: when the CA's validation reaches a port the
// edge does not answer on, no certificate is issued and start fails, so
// the edge does not serve phones without one.
func TestACMEFailsWhenChallengeNotAnswered(t *testing.T) {
	a, peb, _ := acmeAgainstPebble(t, ChallengeHTTP01, acmetest.FreePort(t), acmetest.FreePort(t), 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := a.start(ctx)
	if err == nil {
		a.stop()
		t.Fatalf("a certificate was issued though the challenge was answered on another port than the one validated\npebble:\n%s", peb.Output())
	}
	if !strings.Contains(err.Error(), acmeTestName) {
		t.Fatalf("error %q does not name %s", err, acmeTestName)
	}
	if _, err := a.GetCertificate(&tls.ClientHelloInfo{ServerName: acmeTestName}); err == nil {
		t.Fatal("a handshake got a certificate after the ACME start failed")
	}
}

// tls.acme is checked: the public certificate has one source, the terms
// are agreed, and the challenge is one the edge answers.
func TestACMEConfigRefusals(t *testing.T) {
	good := ACMEConfig{Directory: "https://acme.example/dir", Email: "ops@example.com", AgreeTerms: true, Names: []string{"edge.example.com"}, Storage: "/var/lib/edgeway/acme"}
	base := Config{Node: "e", AdvertisedHost: "edge.example.com"}
	if errs := good.withDefaults(base).validate(); len(errs) > 0 {
		t.Fatalf("good config refused: %v", errs)
	}
	if d := good.withDefaults(base); d.Challenge != ChallengeHTTP01 || d.ChallengeAddr != ":80" {
		t.Fatalf("defaults: challenge %q on %q, want http-01 on :80", d.Challenge, d.ChallengeAddr)
	}
	if d := (ACMEConfig{Directory: "https://acme.example/dir", Challenge: ChallengeTLSALPN01}).withDefaults(base); d.ChallengeAddr != ":443" || !slices.Equal(d.Names, []string{"edge.example.com"}) {
		t.Fatalf("tls-alpn-01 defaults: %q names %v, want :443 and the advertised host", d.ChallengeAddr, d.Names)
	}
	bad := map[string]func(*ACMEConfig){
		"http directory":   func(a *ACMEConfig) { a.Directory = "http://acme.example/dir" },
		"terms not agreed": func(a *ACMEConfig) { a.AgreeTerms = false },
		"no email":         func(a *ACMEConfig) { a.Email = "" },
		"no storage":       func(a *ACMEConfig) { a.Storage = "" },
		"dns-01":           func(a *ACMEConfig) { a.Challenge = "dns-01" },
		"bad name":         func(a *ACMEConfig) { a.Names = []string{"bad name"} },
		"bad port":         func(a *ACMEConfig) { a.ChallengeAddr = ":0" },
	}
	for name, mod := range bad {
		c := good.withDefaults(base)
		mod(&c)
		if errs := c.validate(); len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
	c := Config{TLS: TLSConfig{PublicCert: "a.pem", PublicKey: "a-key.pem", MTLSCert: "m.pem", MTLSKey: "m-key.pem", CoreTrust: "t.pem", ACME: good}}.WithDefaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), ErrPublicCertForms.Error()) {
		t.Fatalf("files and ACME both set: %v, want %v", err, ErrPublicCertForms)
	}
	c.TLS.PublicCert, c.TLS.PublicKey = "", ""
	if err := c.Validate(); err != nil {
		t.Fatalf("ACME without files refused: %v", err)
	}
	c.TLS.ACME.ChallengeAddr = c.HTTPSAddr
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "shares its port with https_addr") {
		t.Fatalf("challenge_addr on https_addr: %v, want a refusal", err)
	}
}

// Renewal runs in the background: once a certificate is in its renewal
// window, certmagic's maintenance renews it and the next handshake gets
// the new one, with nobody calling anything. (The window is widened to
// almost the whole lifetime so that a fresh certificate is due in
// seconds.)
func TestACMERenewsInBackground(t *testing.T) {
	port := acmetest.FreePort(t)
	// An hour's certificate whose last 99.9 % is its renewal window: due
	// 3.6 s after it was issued.
	a, peb, _ := acmeAgainstPebble(t, ChallengeHTTP01, port, port, time.Hour)
	a.renewCheck, a.renewRatio = 100*time.Millisecond, 0.999
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.start(ctx); err != nil {
		t.Fatalf("obtaining: %v\npebble:\n%s", err, peb.Output())
	}
	defer a.stop()
	serial := func() string {
		c, err := a.GetCertificate(&tls.ClientHelloInfo{ServerName: acmeTestName})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.String()
	}
	first := serial()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for serial() == first {
		select {
		case <-ctx.Done():
			t.Fatalf("the certificate in its renewal window was not renewed in the background within a minute\npebble:\n%s", peb.Output())
		case <-tick.C:
		}
	}
}
