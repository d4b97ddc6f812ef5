package mtls

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSameName(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"expc.example.com", "EXPC.example.com.", true},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
		{"expc.example.com", "xexpc.example.com", false},
		{"*.example.com", "expc.example.com", false},
		{"", "", false},
		{"K.example.com", "\u212a.example.com", false}, // Kelvin sign is not K
	} {
		if got := SameName(tc.a, tc.b); got != tc.want {
			t.Errorf("SameName(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// Certificates added with SetExtra are trusted on the next verification,
// and stop being trusted when removed.
func TestTrustStoreSetExtra(t *testing.T) {
	dir := t.TempDir()
	a, err := NewCA("file CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCA("uploaded CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "trust.pem")
	if err := os.WriteFile(path, a.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := NewTrustStore(path)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, _, err := b.Issue(CertRequest{CommonName: "edge", Names: []string{"edge.example"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCertificatesPEM(leafPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify(certs, x509.ExtKeyUsageClientAuth); err == nil {
		t.Fatal("a certificate of an untrusted CA verified")
	}
	if err := ts.SetExtra([]*x509.Certificate{b.Cert}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify(certs, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("after SetExtra: %v", err)
	}
	if len(ts.Certificates()) != 2 {
		t.Fatalf("certificates = %d, want 2", len(ts.Certificates()))
	}
	if err := ts.SetExtra(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify(certs, x509.ExtKeyUsageClientAuth); err == nil {
		t.Fatal("still trusted after removal")
	}
}
