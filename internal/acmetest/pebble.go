// Package acmetest runs Pebble, Let's Encrypt's ACME test server (the
// Debian package `pebble`), on loopback for tests of the edge's ACME
// client (edge/acme.go). Pebble validates challenges for real: it
// connects to the HTTP-01 or TLS-ALPN-01 port the test names, after
// resolving the name through the DNS server the test gives it. It is a
// test fixture, not part of Edgeway.
package acmetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/logx"
)

// Options place Pebble's validation.
type Options struct {
	// HTTPPort and TLSPort are where Pebble connects, on the address the
	// name resolves to, to validate HTTP-01 and TLS-ALPN-01 challenges.
	HTTPPort, TLSPort int
	// DNSServer is the host:port Pebble resolves names through
	// (internal/dnstest); empty: the system resolver.
	DNSServer string
	// Validity is the lifetime of the certificates Pebble issues
	// (default: Pebble's, years).
	Validity time.Duration
}

// Pebble is a running Pebble.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// TLSRoot is the PEM file of the certificate Pebble's own HTTPS
	// listeners present (tls.acme.ca_root).
	TLSRoot string
	// Roots trusts the certificates Pebble issues: its root, from the
	// management endpoint /roots/0.
	Roots *x509.CertPool

	mgmt string
	hc   *http.Client
	out  *logx.Buffer
}

// Output is what Pebble has logged so far.
func (p *Pebble) Output() string { return p.out.String() }

// Binary is Pebble's program, as the Debian package installs it.
const Binary = "pebble"

// Start runs Pebble until the test ends. It skips the test when Pebble
// is not installed, and fails it under CI=true (.ci/run installs it).
func Start(t testing.TB, o Options) *Pebble {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("acmetest: %s not installed (apt-get install pebble): %v", Binary, err)
		}
		t.Skipf("acmetest: %s not installed (apt-get install pebble)", Binary)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "pebble-tls.pem"), filepath.Join(dir, "pebble-tls-key.pem")
	pool := writeTLSCert(t, certFile, keyFile)
	wfe, mgmt := freePort(t), freePort(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(wfe),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        o.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	if o.Validity > 0 {
		conf["pebble"].(map[string]any)["certificateValidityPeriod"] = int(o.Validity.Seconds())
	}
	confFile := filepath.Join(dir, "pebble-config.json")
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-config", confFile, "-strict=false"}
	if o.DNSServer != "" {
		args = append(args, "-dnsserver", o.DNSServer)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	// No sleeps before validation, no bad-nonce injection, and real
	// validation (never "always valid").
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_AUTHZREUSE=0")
	out := &logx.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("acmetest: starting pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("pebble output:\n%s", out.String())
		}
	})
	p := &Pebble{
		Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", wfe),
		TLSRoot:   certFile,
		mgmt:      fmt.Sprintf("https://127.0.0.1:%d", mgmt),
		out:       out,
		hc:        &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second},
	}
	t.Cleanup(p.hc.CloseIdleConnections)
	// Ready when the directory answers; bounded, and given up at once if
	// Pebble exits.
	deadline := time.Now().Add(30 * time.Second)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		res, err := p.hc.Get(p.Directory)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("acmetest: pebble exited:\n%s", out.String())
		case <-time.After(wait):
		}
		if time.Now().After(deadline) {
			t.Fatalf("acmetest: pebble's directory %s did not answer within 30s: %v\n%s", p.Directory, err, out.String())
		}
	}
	rootPEM := p.get(t, "/roots/0")
	p.Roots = x509.NewCertPool()
	if !p.Roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("acmetest: /roots/0 holds no certificate: %q", rootPEM)
	}
	return p
}

// get fetches a path of Pebble's management interface.
func (p *Pebble) get(t testing.TB, path string) []byte {
	t.Helper()
	res, err := p.hc.Get(p.mgmt + path)
	if err != nil {
		t.Fatalf("acmetest: %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("acmetest: %s: %s %v", path, res.Status, err)
	}
	return b
}

// writeTLSCert writes a self-signed certificate for 127.0.0.1 and
// localhost, for Pebble's own HTTPS, and returns a pool trusting it.
func writeTLSCert(t testing.TB, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// FreePort is a loopback TCP port the kernel just handed out and took
// back: Pebble and the challenge solver must be told a port before they
// bind it.
func FreePort(t testing.TB) int { return freePort(t) }

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
