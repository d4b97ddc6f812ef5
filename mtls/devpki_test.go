package mtls

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type fileSnap struct {
	data  []byte
	mtime time.Time
	mode  os.FileMode
}

func snapshot(t *testing.T, p DevPKI) map[string]fileSnap {
	t.Helper()
	out := make(map[string]fileSnap)
	for _, f := range p.files() {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("stat %s: %v", f, err)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = fileSnap{data: data, mtime: fi.ModTime(), mode: fi.Mode().Perm()}
	}
	return out
}

func loadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parsePEMCert(t, data)
}

func TestInitDevPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := InitDevPKI(DevPKIOptions{Dir: dir})
	if err != nil {
		t.Fatalf("InitDevPKI: %v", err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode: %v %v", fi.Mode(), err)
	}
	keys := map[string]bool{p.CAKey: true, p.CoreKey: true, p.EdgeMTLSKey: true, p.EdgePublicKey: true}
	snap := snapshot(t, p)
	for f, s := range snap {
		if !filepath.IsAbs(f) {
			t.Errorf("%s is not absolute", f)
		}
		want := os.FileMode(0o644)
		if keys[f] {
			want = 0o600
		}
		if s.mode != want {
			t.Errorf("%s mode %v, want %v", f, s.mode, want)
		}
	}

	// S-11: tomcat-trust verifies the edge's mTLS client certificate.
	tomcat, err := NewTrustStore(p.TomcatTrust)
	if err != nil {
		t.Fatal(err)
	}
	edge := loadCert(t, p.EdgeMTLSCert)
	if _, err := tomcat.Verify([]*x509.Certificate{edge}, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("edge mTLS cert vs tomcat-trust: %v", err)
	}
	if edge.Subject.CommonName != "expc.edgeway.test" {
		t.Errorf("edge mTLS CN = %q", edge.Subject.CommonName)
	}
	if m, ok := MatchPeerName(edge, []string{"expc.edgeway.test"}); !ok {
		t.Errorf("edge mTLS cert does not carry its Expressway-C name (%q)", m)
	}

	// S-8: phone-edge-trust verifies the core's Tomcat certificate by name.
	phoneEdge, err := NewTrustStore(p.PhoneEdgeTrust)
	if err != nil {
		t.Fatal(err)
	}
	core := loadCert(t, p.CoreCert)
	for _, name := range []string{"127.0.0.2", "core.edgeway.test", "localhost", "127.0.0.1"} {
		if _, err := phoneEdge.verify([]*x509.Certificate{core}, x509.ExtKeyUsageServerAuth, name); err != nil {
			t.Errorf("core cert for %s: %v", name, err)
		}
	}
	if _, err := phoneEdge.verify([]*x509.Certificate{core}, x509.ExtKeyUsageServerAuth, "other.edgeway.test"); err == nil {
		t.Error("core cert verified for a name it does not carry")
	}
	if _, err := tomcat.Verify([]*x509.Certificate{core}, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("core cert has no client usage: %v", err)
	}
	pub := loadCert(t, p.EdgePublicCert)
	if _, err := phoneEdge.verify([]*x509.Certificate{pub}, x509.ExtKeyUsageServerAuth, "edge.edgeway.test"); err != nil {
		t.Errorf("edge public cert: %v", err)
	}
	if _, err := phoneEdge.Verify([]*x509.Certificate{pub}, x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("edge public cert must not have client usage")
	}
	for _, kp := range [][2]string{{p.CoreCert, p.CoreKey}, {p.EdgeMTLSCert, p.EdgeMTLSKey}, {p.EdgePublicCert, p.EdgePublicKey}} {
		if _, err := NewKeyPair(kp[0], kp[1]); err != nil {
			t.Errorf("key pair %s: %v", kp[0], err)
		}
	}
	if _, err := LoadCA(p.CACert, p.CAKey); err != nil {
		t.Errorf("LoadCA: %v", err)
	}

	// Second call: nothing changes.
	p2, err := InitDevPKI(DevPKIOptions{Dir: dir})
	if err != nil {
		t.Fatalf("second InitDevPKI: %v", err)
	}
	if p2 != p {
		t.Errorf("paths changed: %+v vs %+v", p2, p)
	}
	for f, s := range snapshot(t, p2) {
		if !bytes.Equal(s.data, snap[f].data) || !s.mtime.Equal(snap[f].mtime) {
			t.Errorf("%s changed on idempotent call", f)
		}
	}

	// Missing leaf: only that pair is reissued, with the existing CA.
	if err := os.Remove(p.EdgePublicKey); err != nil {
		t.Fatal(err)
	}
	if _, err := InitDevPKI(DevPKIOptions{Dir: dir}); err != nil {
		t.Fatalf("InitDevPKI after removing a key: %v", err)
	}
	for f, s := range snapshot(t, p) {
		changed := !bytes.Equal(s.data, snap[f].data)
		if wantChanged := f == p.EdgePublicCert || f == p.EdgePublicKey; changed != wantChanged {
			t.Errorf("%s changed=%v, want %v", f, changed, wantChanged)
		}
	}
	snap = snapshot(t, p)

	// Missing trust bundle: rewritten from the existing CA.
	if err := os.Remove(p.TomcatTrust); err != nil {
		t.Fatal(err)
	}
	if _, err := InitDevPKI(DevPKIOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p.TomcatTrust); !bytes.Equal(got, snap[p.CACert].data) {
		t.Error("tomcat-trust.pem not rewritten with the CA certificate")
	}

	// Missing CA key with certificates present: refuse.
	caKey := snap[p.CAKey].data
	if err := os.Remove(p.CAKey); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p.CoreKey); err != nil {
		t.Fatal(err)
	}
	if _, err := InitDevPKI(DevPKIOptions{Dir: dir}); !errors.Is(err, ErrIncompleteDevPKI) {
		t.Fatalf("missing CA key: err = %v, want ErrIncompleteDevPKI", err)
	}
	if err := os.WriteFile(p.CAKey, caKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := InitDevPKI(DevPKIOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	snap = snapshot(t, p)

	// Force regenerates everything.
	p3, err := InitDevPKI(DevPKIOptions{Dir: dir, Force: true})
	if err != nil {
		t.Fatalf("forced InitDevPKI: %v", err)
	}
	for f, s := range snapshot(t, p3) {
		if bytes.Equal(s.data, snap[f].data) {
			t.Errorf("%s not regenerated by Force", f)
		}
	}
	if _, err := InitDevPKI(DevPKIOptions{Dir: dir}); err != nil {
		t.Fatalf("InitDevPKI after Force: %v", err)
	}
}

func TestInitDevPKICustomNames(t *testing.T) {
	dir := t.TempDir()
	p, err := InitDevPKI(DevPKIOptions{
		Dir:             dir,
		CoreNames:       []string{"cucm.lab.example", "10.0.0.5"},
		EdgeMTLSNames:   []string{"expc-1.lab.example", "expc-2.lab.example"},
		EdgePublicNames: []string{"mra.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	core := loadCert(t, p.CoreCert)
	if core.Subject.CommonName != "cucm.lab.example" || len(core.IPAddresses) != 1 || core.IPAddresses[0].String() != "10.0.0.5" {
		t.Errorf("core cert: CN %q IPs %v", core.Subject.CommonName, core.IPAddresses)
	}
	edge := loadCert(t, p.EdgeMTLSCert)
	if got := CertNames(edge); len(got) != 2 || got[0] != "expc-1.lab.example" {
		t.Errorf("edge names %v", got)
	}

	if _, err := InitDevPKI(DevPKIOptions{Dir: filepath.Join(dir, "bad"), EdgeMTLSNames: []string{"bad name"}}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("bad name: err = %v", err)
	}
	if _, err := InitDevPKI(DevPKIOptions{}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("no dir: err = %v", err)
	}
}
