package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock drives the once-per-second stat rule in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := WriteFileAtomic(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeyPairReload(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, "Reload CA")
	trust := testTrust(t, dir, "trust.pem", ca)
	issue := func(cn string) (certPEM, keyPEM []byte) {
		c, k, err := ca.Issue(CertRequest{CommonName: cn, Names: []string{"server.example.com"}, Server: true})
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	certA, keyA := issue("A")
	writeFile(t, certFile, certA)
	writeFile(t, keyFile, keyA)
	kp, err := NewKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	kp.r.now = clk.Now

	addr, results := serveTLS(t, ServerConfig(kp))
	servedCN := func() string {
		t.Helper()
		state, err := dialTLS(t, addr, ClientConfig(nil, trust, "server.example.com"))
		if res := recv(t, results); err != nil || res.err != nil {
			t.Fatalf("handshake: client %v, server %v", err, res.err)
		}
		return state.PeerCertificates[0].Subject.CommonName
	}
	if got := servedCN(); got != "A" {
		t.Fatalf("served %q, want A", got)
	}

	// Replace both files (atomic renames). Within the stat interval the old
	// pair is still served; after it, the new one.
	certB, keyB := issue("B")
	writeFile(t, keyFile, keyB)
	writeFile(t, certFile, certB)
	if got := servedCN(); got != "A" {
		t.Errorf("served %q before the stat interval elapsed, want A", got)
	}
	clk.Advance(1100 * time.Millisecond)
	if got := servedCN(); got != "B" {
		t.Errorf("served %q after replacement, want B", got)
	}
	if kp.Leaf().Subject.CommonName != "B" || kp.LastError() != nil {
		t.Errorf("Leaf %q LastError %v", kp.Leaf().Subject.CommonName, kp.LastError())
	}

	// A half-written update (new cert, old key) keeps B in service.
	certC, keyC := issue("C")
	writeFile(t, certFile, certC)
	clk.Advance(1100 * time.Millisecond)
	if got := servedCN(); got != "B" {
		t.Errorf("served %q with mismatched files, want B", got)
	}
	if err := kp.LastError(); err == nil {
		t.Error("LastError is nil after a failed reload")
	}
	// Garbage, and a missing file, also keep B.
	writeFile(t, keyFile, []byte("not a key"))
	clk.Advance(1100 * time.Millisecond)
	if c, err := kp.Certificate(); err != nil || c.Leaf.Subject.CommonName != "B" || kp.LastError() == nil {
		t.Errorf("garbage key: cert %v err %v last %v", c.Leaf.Subject.CommonName, err, kp.LastError())
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	clk.Advance(1100 * time.Millisecond)
	if c, _ := kp.Certificate(); c.Leaf.Subject.CommonName != "B" || !errors.Is(kp.LastError(), fs.ErrNotExist) {
		t.Errorf("missing key: cert %v last %v", c.Leaf.Subject.CommonName, kp.LastError())
	}
	// Completing the update recovers.
	writeFile(t, keyFile, keyC)
	clk.Advance(1100 * time.Millisecond)
	if got := servedCN(); got != "C" {
		t.Errorf("served %q after completing the update, want C", got)
	}
	if err := kp.LastError(); err != nil {
		t.Errorf("LastError after recovery: %v", err)
	}

	// In-place rewrite (same inode) detected by mtime/size; the test hook
	// forces the re-stat.
	certD, keyD := issue("D")
	if err := os.WriteFile(keyFile, keyD, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certD, 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, future, future); err != nil {
			t.Fatal(err)
		}
	}
	kp.expire()
	if got := servedCN(); got != "D" {
		t.Errorf("served %q after in-place rewrite, want D", got)
	}
}

func TestNewKeyPairErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, "CA")
	certFile, keyFile := issueFiles(t, ca, dir, "a", CertRequest{CommonName: "a", Server: true})
	_, otherKey := issueFiles(t, ca, dir, "b", CertRequest{CommonName: "b", Server: true})
	if _, err := NewKeyPair(certFile, filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := NewKeyPair(certFile, otherKey); err == nil {
		t.Error("mismatched key accepted")
	}
	if _, err := NewKeyPair(keyFile, certFile); err == nil {
		t.Error("swapped files accepted")
	}
}

func TestTrustStoreReload(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := testCA(t, "CA one"), testCA(t, "CA two")
	serverKP := testKeyPair(t, ca1, dir, "server", CertRequest{CommonName: "core", Names: []string{"127.0.0.1"}, Server: true})
	client1 := testKeyPair(t, ca1, dir, "client1", CertRequest{CommonName: "c1", Names: []string{"c1.example.com"}, Client: true})
	client2 := testKeyPair(t, ca2, dir, "client2", CertRequest{CommonName: "c2", Names: []string{"c2.example.com"}, Client: true})
	path := trustFile(t, dir, "tomcat-trust.pem", ca1)
	trust, err := NewTrustStore(path)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	trust.r.now = clk.Now
	clientTrust := testTrust(t, dir, "client-trust.pem", ca1)

	addr, results := serveTLS(t, MutualServerConfig(serverKP, trust, nil))
	try := func(kp *KeyPair) error {
		t.Helper()
		_, cerr := dialTLS(t, addr, ClientConfig(kp, clientTrust, "127.0.0.1"))
		res := recv(t, results)
		if (cerr == nil) != (res.err == nil) {
			t.Fatalf("client err %v, server err %v", cerr, res.err)
		}
		return res.err
	}
	if err := try(client1); err != nil {
		t.Fatalf("client1: %v", err)
	}
	if err := try(client2); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("client2 before reload: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if err := try(client2); !errors.As(err, &unknown) {
		t.Errorf("want x509.UnknownAuthorityError in %v", err)
	}

	// Append CA two to the bundle in place.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(ca2.CertPEM); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(1100 * time.Millisecond)
	if err := try(client2); err != nil {
		t.Errorf("client2 after adding its CA: %v", err)
	}
	if n := len(trust.Certificates()); n != 2 {
		t.Errorf("%d certificates, want 2", n)
	}
	leaf2, _ := client2.Certificate()
	if _, err := leaf2.Leaf.Verify(x509.VerifyOptions{Roots: trust.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("Pool() does not hold CA two: %v", err)
	}

	// A broken bundle keeps the previous set.
	writeFile(t, path, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	clk.Advance(1100 * time.Millisecond)
	if err := try(client2); err != nil {
		t.Errorf("client2 after a broken update: %v", err)
	}
	if trust.LastError() == nil {
		t.Error("LastError nil after a broken update")
	}

	// Removing CA one applies to the next handshake.
	writeFile(t, path, ca2.CertPEM)
	clk.Advance(1100 * time.Millisecond)
	if err := try(client1); !errors.Is(err, ErrUntrusted) {
		t.Errorf("client1 after removing its CA: %v", err)
	}
	if trust.LastError() != nil {
		t.Errorf("LastError: %v", trust.LastError())
	}
}

func TestTrustStoreMultipleFiles(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2, ca3 := testCA(t, "one"), testCA(t, "two"), testCA(t, "three")
	a := trustFile(t, dir, "a.pem", ca1, ca2)
	b := trustFile(t, dir, "b.pem", ca2, ca3)
	ts, err := NewTrustStore(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var cns []string
	for _, c := range ts.Certificates() {
		cns = append(cns, c.Subject.CommonName)
	}
	if len(cns) != 3 || cns[0] != "one" || cns[1] != "two" || cns[2] != "three" {
		t.Errorf("certificates %v", cns)
	}
	leafPEM, _, err := ca3.Issue(CertRequest{CommonName: "x", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify([]*x509.Certificate{parsePEMCert(t, leafPEM)}, x509.ExtKeyUsageClientAuth); err != nil {
		t.Error(err)
	}
}

func TestNewTrustStoreErrors(t *testing.T) {
	dir := t.TempDir()
	good := trustFile(t, dir, "good.pem", testCA(t, "ca"))
	empty := filepath.Join(dir, "empty.pem")
	writeFile(t, empty, []byte("# no certificates here\n"))
	keyOnly := filepath.Join(dir, "key.pem")
	_, keyPEM, err := testCA(t, "k").Issue(CertRequest{CommonName: "k", Server: true})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyOnly, keyPEM)
	if _, err := NewTrustStore(); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("no files: %v", err)
	}
	if _, err := NewTrustStore(good, empty); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("empty file: %v", err)
	}
	if _, err := NewTrustStore(keyOnly); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("key-only file: %v", err)
	}
	if _, err := NewTrustStore(good, filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestConcurrentReload exercises readers against a reloading pair under the
// race detector.
func TestConcurrentReload(t *testing.T) {
	dir := t.TempDir()
	ca := testCA(t, "CA")
	certFile, keyFile := issueFiles(t, ca, dir, "s", CertRequest{CommonName: "s", Server: true})
	kp, err := NewKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := kp.GetCertificate(&tls.ClientHelloInfo{})
				if err != nil || c == nil || c.Leaf == nil {
					t.Error("no certificate")
					return
				}
				kp.expire()
			}
		}()
	}
	for i := 0; i < 20; i++ {
		issueFiles(t, ca, dir, "s", CertRequest{CommonName: "s", Server: true})
	}
	close(stop)
	wg.Wait()
}
