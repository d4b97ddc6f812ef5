package edge

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeway/edgeway/mtls"
)

// The public certificate's expiry, for operators to alert on
// (edgeway_tls_certificate_expiry_timestamp_seconds; deploy/prometheus-alerts.yml).
// It is read at scrape time from the certificate a handshake gets now, so
// a renewal that swaps the certificate (ACME, edge/acme.go) or a new pair
// of files (mtls.KeyPair reloads them) moves it with nothing to update.

// PublicCertificate is the certificate a phone's handshake gets now for
// one name.
type PublicCertificate struct {
	// Name is the tls.acme.names entry (ACME), or the certificate's first
	// DNS name, IP address or common name (files).
	Name string
	// Source is "acme" or "file".
	Source   string
	NotAfter time.Time
	Serial   string
}

// PublicCertificates is the public certificate (HTTPS, SIP/TLS and
// TURN/TLS share it) for each name it is served for; an ACME name without
// a certificate yet is left out.
func (s *Server) PublicCertificates() []PublicCertificate {
	var out []PublicCertificate
	if s.cfg.TLS.ACME.Enabled() {
		for _, name := range s.cfg.TLS.ACME.Names {
			c, err := s.public.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
			if leaf := leafOf(c, err); leaf != nil {
				out = append(out, PublicCertificate{Name: name, Source: "acme", NotAfter: leaf.NotAfter, Serial: leaf.SerialNumber.String()})
			}
		}
		return out
	}
	if kp, ok := s.public.(*mtls.KeyPair); ok {
		if leaf := kp.Leaf(); leaf != nil {
			out = append(out, PublicCertificate{Name: certName(leaf), Source: "file", NotAfter: leaf.NotAfter, Serial: leaf.SerialNumber.String()})
		}
	}
	return out
}

func leafOf(c *tls.Certificate, err error) *x509.Certificate {
	if err != nil || c == nil || len(c.Certificate) == 0 {
		return nil
	}
	if c.Leaf != nil {
		return c.Leaf
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// certName is the name a certificate is known by: its first DNS name, IP
// address, or common name.
func certName(c *x509.Certificate) string {
	switch {
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.IPAddresses) > 0:
		return c.IPAddresses[0].String()
	}
	return c.Subject.CommonName
}

var descCertExpiry = prometheus.NewDesc("edgeway_tls_certificate_expiry_timestamp_seconds",
	"When the edge's public certificate (HTTPS, SIP/TLS, TURN/TLS) expires: its NotAfter in Unix seconds, by name (tls.acme.names, or the certificate file's first name) and source (acme, file). A renewal moves it.",
	[]string{"name", "source"}, nil)

// certCollector exports PublicCertificates at scrape time.
type certCollector struct{ s *Server }

func (c certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descCertExpiry }

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	for _, pc := range c.s.PublicCertificates() {
		ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(pc.NotAfter.Unix()), pc.Name, pc.Source)
	}
}
