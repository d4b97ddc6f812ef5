package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/acmetest"
	"github.com/edgeway/edgeway/internal/dnstest"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// acmeName is the edge's public name in the ACME tests; the test's DNS
// server resolves it to 127.0.0.1 for Pebble.
const acmeName = "edge.acme.test"

// startACMEEdge runs Pebble and a core + edge whose public certificate
// comes from it over the given challenge type.
func startACMEEdge(t *testing.T, challenge string) (*testenv.Env, *acmetest.Pebble) {
	t.Helper()
	dns := dnstest.Start(t, dnstest.Zone{A: map[string]netip.Addr{acmeName: netip.MustParseAddr("127.0.0.1")}})
	// The port Pebble validates on is the one the edge's solver listens
	// on while a challenge is open (tls.acme.challenge_addr).
	solver := acmetest.FreePort(t)
	o := acmetest.Options{DNSServer: dns.Addr, HTTPPort: solver, TLSPort: solver}
	if challenge == edge.ChallengeHTTP01 {
		o.TLSPort = acmetest.FreePort(t)
	} else {
		o.HTTPPort = acmetest.FreePort(t)
	}
	peb := acmetest.Start(t, o)
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		l.Edge.TLS.PublicCert, l.Edge.TLS.PublicKey = "", ""
		l.Edge.TLS.ACME = edge.ACMEConfig{
			Directory: peb.Directory, Email: "ops@acme.test", AgreeTerms: true, Names: []string{acmeName},
			CARoot: peb.TLSRoot, Storage: filepath.Join(t.TempDir(), "acme"),
			Challenge: challenge, ChallengeAddr: fmt.Sprintf("127.0.0.1:%d", solver),
		}
	}})
	return env, peb
}

// acmeLeaf makes a new TLS connection to addr as a phone would (Pebble's
// root, the edge's public name) and returns the certificate it saw. It
// polls, bounded, while the edge is still getting its first certificate.
func acmeLeaf(t *testing.T, addr string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: roots, ServerName: acmeName, MinVersion: tls.VersionTLS12}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := d.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			leaf := c.(*tls.Conn).ConnectionState().PeerCertificates[0]
			c.Close()
			return leaf
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate from %s that verifies for %s under Pebble's root within 60s: %v", addr, acmeName, err)
		}
		<-time.After(wait) // the next try of a bounded poll
	}
}

func acmePhone(t *testing.T, env *testenv.Env, device string, roots *x509.CertPool) *bench.Phone {
	t.Helper()
	d := env.Devices[device]
	p, err := bench.NewPhone(bench.PhoneConfig{Device: d.Name, Line: d.Line, Domain: d.Domain, RootCAs: roots, ServerName: acmeName,
		Log: env.Log, EdgeHTTPS: env.Info.EdgeHTTPS, EdgeSIP: env.Info.EdgeSIP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Issue 12 §1: the edge gets its public certificate from a real ACME CA
// (Pebble, validating the HTTP-01 challenge for real), a phone that
// trusts only that CA onboards and registers through it, and a forced
// renewal swaps the certificate with no restart: the registered phone's
// connection stays up and works, new connections on every phone-facing
// listener get the new certificate.
func TestACMEEdgeCertificateObtainedAndRenewed(t *testing.T) {
	env, peb := startACMEEdge(t, edge.ChallengeHTTP01)
	ctx := context.Background()
	listeners := map[string]string{"https": strings.TrimPrefix(env.Info.EdgeHTTPS, "https://"), "sip": env.Info.EdgeSIP, "turns": env.Info.EdgeTURNS}

	first := acmeLeaf(t, listeners["https"], peb.Roots)
	issued := time.Now() // the first certificate was issued before this
	if !slices.Contains(first.DNSNames, acmeName) {
		t.Fatalf("certificate names %v, want %s", first.DNSNames, acmeName)
	}
	// Its expiry is exported for alerting: the served certificate's NotAfter.
	expiry := func() float64 {
		return scrapeOps(t, env.Info.EdgeOps).value("edgeway_tls_certificate_expiry_timestamp_seconds", "name", acmeName, "source", "acme")
	}
	if got := expiry(); got != float64(first.NotAfter.Unix()) {
		t.Fatalf("edgeway_tls_certificate_expiry_timestamp_seconds = %v, want the served certificate's NotAfter %d", got, first.NotAfter.Unix())
	}
	for name, addr := range listeners {
		if got := acmeLeaf(t, addr, peb.Roots); got.SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Fatalf("%s presents serial %x, https %x: one certificate for all phone-facing listeners", name, got.SerialNumber, first.SerialNumber)
		}
	}

	ph := acmePhone(t, env, phoneA, peb.Roots)
	if _, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode); err != nil {
		t.Fatalf("onboard through the ACME certificate: %v", err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	path := bindingPath(t, env, phoneA)

	// A renewal in a later second than the first issuance, so that its
	// NotAfter (whole seconds) is a later one.
	for time.Now().Unix() == issued.Unix() {
		<-time.After(time.Until(issued.Truncate(time.Second).Add(time.Second)))
	}
	if err := env.Edge.RenewPublicCertificate(ctx); err != nil {
		t.Fatalf("forced renewal: %v", err)
	}
	renewed := acmeLeaf(t, listeners["https"], peb.Roots)
	if got := expiry(); got != float64(renewed.NotAfter.Unix()) || got == float64(first.NotAfter.Unix()) {
		t.Fatalf("expiry gauge after the renewal %v, want the renewed certificate's NotAfter %d (the first's: %d)", got, renewed.NotAfter.Unix(), first.NotAfter.Unix())
	}

	// New connections see the new certificate, on every listener.
	for name, addr := range listeners {
		got := acmeLeaf(t, addr, peb.Roots)
		if got.SerialNumber.Cmp(first.SerialNumber) == 0 {
			t.Fatalf("%s still presents serial %x after renewal", name, first.SerialNumber)
		}
		if !slices.Contains(got.DNSNames, acmeName) {
			t.Fatalf("%s: renewed certificate names %v, want %s", name, got.DNSNames, acmeName)
		}
	}
	// The registered phone's connection stayed up: it answers a ping
	// (RFC 5626 §4.4.1) and a re-REGISTER goes over the same flow (the
	// edge's flow token in Path names the phone's source port, so a new
	// connection would give another Path).
	if err := ph.Ping(ctx); err != nil {
		t.Fatalf("registered phone's connection after renewal: %v", err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("re-register after renewal: %v %v", res, err)
	}
	if got := bindingPath(t, env, phoneA); got != path {
		t.Fatalf("binding Path after renewal %q, before %q: the phone's connection was replaced", got, path)
	}
	// And a phone that comes now onboards and registers over the new one.
	ph2 := acmePhone(t, env, phoneB, peb.Roots)
	if _, err := ph2.Onboard(ctx, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatalf("onboard after renewal: %v", err)
	}
	if res, err := ph2.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register after renewal: %v %v", res, err)
	}
}

func bindingPath(t *testing.T, env *testenv.Env, device string) string {
	t.Helper()
	for _, b := range env.Registrations(t) {
		if b.Device == device {
			return strings.Join(b.Path, ",")
		}
	}
	t.Fatalf("no binding for %s", device)
	return ""
}
