package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/mtls"
)

// servedLeaf is the certificate a new TLS connection to addr gets.
func servedLeaf(t *testing.T, addr string, roots *x509.CertPool, serverName string) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// expiryGauge is edgeway_tls_certificate_expiry_timestamp_seconds for
// source, whatever its name; -1 when there is none.
func expiryGauge(t *testing.T, ops, source string) float64 {
	t.Helper()
	return scrapeOps(t, ops).value("edgeway_tls_certificate_expiry_timestamp_seconds", "source", source)
}

// Issue 12 §1-2: the edge exports its public certificate's expiry
// (edgeway_tls_certificate_expiry_timestamp_seconds) so operators can
// alert before it lapses. With certificate files (the dev PKI here) it
// equals the NotAfter of the certificate phones are served, and when the
// files are replaced (a renewal by the operator's tooling: the edge
// reloads them without a restart) it follows the new one.
func TestPublicCertificateExpiryGaugeFiles(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	https := strings.TrimPrefix(env.Info.EdgeHTTPS, "https://")
	first := servedLeaf(t, https, env.CA, "127.0.0.1")
	if sip := servedLeaf(t, env.Info.EdgeSIP, env.CA, "127.0.0.1"); sip.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("SIP/TLS serves serial %x, HTTPS %x: one public certificate", sip.SerialNumber, first.SerialNumber)
	}
	if got := expiryGauge(t, env.Info.EdgeOps, "file"); got != float64(first.NotAfter.Unix()) {
		t.Fatalf("expiry gauge %v, want the served certificate's NotAfter %d (%s)", got, first.NotAfter.Unix(), first.NotAfter)
	}
	if f := scrapeOps(t, env.Info.EdgeOps)["edgeway_tls_certificate_expiry_timestamp_seconds"]; f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("want exactly one public certificate series, got %v", f)
	}

	// The operator renews: new files, a day's validity.
	ca, err := mtls.LoadCA(env.Layout.PKI.CACert, env.Layout.PKI.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(mtls.CertRequest{CommonName: first.Subject.CommonName, Names: append(append([]string{}, first.DNSNames...), ipStrings(first)...),
		Server: true, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, env.Layout.Edge.TLS.PublicKey, keyPEM)
	replaceFile(t, env.Layout.Edge.TLS.PublicCert, certPEM)
	var renewed *x509.Certificate
	waitUntil(t, "new connections to get the renewed certificate", func() bool {
		renewed = servedLeaf(t, https, env.CA, "127.0.0.1")
		return renewed.SerialNumber.Cmp(first.SerialNumber) != 0
	})
	if renewed.NotAfter.Equal(first.NotAfter) {
		t.Fatalf("the renewed certificate expires when the first did (%s)", first.NotAfter)
	}
	if got := expiryGauge(t, env.Info.EdgeOps, "file"); got != float64(renewed.NotAfter.Unix()) {
		t.Fatalf("expiry gauge after the renewal %v, want the renewed certificate's NotAfter %d (the first's was %d)", got, renewed.NotAfter.Unix(), first.NotAfter.Unix())
	}
}

func ipStrings(c *x509.Certificate) []string {
	var out []string
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// replaceFile writes b to path in one rename, as a renewal tool would.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
