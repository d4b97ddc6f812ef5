package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// testCA creates a CA or fails the test.
func testCA(t *testing.T, cn string) *CA {
	t.Helper()
	ca, err := NewCA(cn, time.Hour)
	if err != nil {
		t.Fatalf("NewCA(%q): %v", cn, err)
	}
	return ca
}

// issueFiles issues a certificate and writes it to dir/<base>.pem and
// dir/<base>-key.pem.
func issueFiles(t *testing.T, ca *CA, dir, base string, req CertRequest) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(req)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", req, err)
	}
	certFile = filepath.Join(dir, base+".pem")
	keyFile = filepath.Join(dir, base+"-key.pem")
	if err := WriteFileAtomic(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func testKeyPair(t *testing.T, ca *CA, dir, base string, req CertRequest) *KeyPair {
	t.Helper()
	c, k := issueFiles(t, ca, dir, base, req)
	kp, err := NewKeyPair(c, k)
	if err != nil {
		t.Fatalf("NewKeyPair: %v", err)
	}
	return kp
}

func trustFile(t *testing.T, dir, name string, cas ...*CA) string {
	t.Helper()
	var data []byte
	for _, ca := range cas {
		data = append(data, ca.CertPEM...)
	}
	path := filepath.Join(dir, name)
	if err := WriteFileAtomic(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func testTrust(t *testing.T, dir, name string, cas ...*CA) *TrustStore {
	t.Helper()
	ts, err := NewTrustStore(trustFile(t, dir, name, cas...))
	if err != nil {
		t.Fatalf("NewTrustStore: %v", err)
	}
	return ts
}

func parsePEMCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handshakeResult is what a test server saw for one connection.
type handshakeResult struct {
	err   error
	state tls.ConnectionState
}

// serveTLS accepts connections on a loopback listener and handshakes each
// with cfg; on success it writes "k" and closes. Results are sent on the
// returned channel. The listener is closed at test end.
func serveTLS(t *testing.T, cfg *tls.Config) (addr string, results <-chan handshakeResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan handshakeResult, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(c, cfg)
				err := tc.Handshake()
				if err == nil {
					_, err = tc.Write([]byte("k"))
				}
				ch <- handshakeResult{err: err, state: tc.ConnectionState()}
				if err == nil {
					_ = tc.Close()
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// dialTLS connects, handshakes and reads the server's one-byte greeting, so
// that a server-side rejection after the client's TLS 1.3 Finished is also
// seen as a failure.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		return c.ConnectionState(), err
	}
	if buf[0] != 'k' {
		return c.ConnectionState(), errors.New("unexpected greeting")
	}
	return c.ConnectionState(), nil
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for result")
		panic("unreachable")
	}
}
