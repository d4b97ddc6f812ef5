package mtls

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// TrustStore is a set of trusted CA certificates read from one or more PEM
// bundle files (each may hold many certificates), re-read when any file
// changes (stat'ed at most once per second, on use). A failed reload keeps the
// previous set in service; see LastError. Only the store's certificates are
// trusted: system roots are never consulted.
//
// The core's "tomcat-trust" (S-11) and the edge's "phone-edge-trust" (S-8)
// are TrustStores. A TrustStore is safe for concurrent use.
type TrustStore struct {
	files []string
	r     *reloader[trustSet]
	extra atomic.Pointer[[]*x509.Certificate] // set by SetExtra
}

type trustSet struct {
	pool  *x509.CertPool
	certs []*x509.Certificate
}

// NewTrustStore loads the given bundle files now. It fails if no file is
// given, a file cannot be read, or a file holds no certificate.
func NewTrustStore(files ...string) (*TrustStore, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("mtls: creating trust store: %w: no files given", ErrNoCertificate)
	}
	t := &TrustStore{files: append([]string(nil), files...)}
	r, err := newReloader(t.files, t.load)
	if err != nil {
		return nil, err
	}
	t.r = r
	return t, nil
}

func (t *TrustStore) load() (*trustSet, error) {
	set := &trustSet{pool: x509.NewCertPool()}
	seen := make(map[string]struct{})
	for _, path := range t.files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("mtls: loading trust store %s: %w", path, err)
		}
		certs, err := parseCertificatesPEM(data)
		if err != nil {
			return nil, fmt.Errorf("mtls: loading trust store %s: %w", path, err)
		}
		for _, c := range certs {
			if _, dup := seen[string(c.Raw)]; dup {
				continue
			}
			seen[string(c.Raw)] = struct{}{}
			set.certs = append(set.certs, c)
			set.pool.AddCert(c)
		}
	}
	if extra := t.extra.Load(); extra != nil {
		for _, c := range *extra {
			if _, dup := seen[string(c.Raw)]; dup {
				continue
			}
			seen[string(c.Raw)] = struct{}{}
			set.certs = append(set.certs, c)
			set.pool.AddCert(c)
		}
	}
	return set, nil
}

// SetExtra replaces the certificates trusted in addition to the files'
// (uploaded through an admin API, say) and applies them to the next
// handshake.
func (t *TrustStore) SetExtra(certs []*x509.Certificate) error {
	cp := append([]*x509.Certificate(nil), certs...)
	t.extra.Store(&cp)
	return t.r.reload()
}

// Check reads and parses the bundle files now without putting them in
// service (see KeyPair.Check).
func (t *TrustStore) Check() error {
	if t == nil || t.r == nil {
		return ErrNoTrustStore
	}
	_, err := t.load()
	return err
}

// Reload reads the bundle files now, without waiting for the
// once-per-second stat, for the next handshakes. On failure the previous
// pool stays in service.
func (t *TrustStore) Reload() error {
	if t == nil || t.r == nil {
		return ErrNoTrustStore
	}
	return t.r.reloadFiles()
}

// Pool returns a copy of the current pool of trusted certificates.
func (t *TrustStore) Pool() *x509.CertPool {
	if t == nil || t.r == nil {
		return x509.NewCertPool()
	}
	return t.r.get().pool.Clone()
}

// Certificates returns the current trusted certificates, deduplicated, in
// file order.
func (t *TrustStore) Certificates() []*x509.Certificate {
	if t == nil || t.r == nil {
		return nil
	}
	return append([]*x509.Certificate(nil), t.r.get().certs...)
}

// Files returns the bundle files the store reads.
func (t *TrustStore) Files() []string {
	if t == nil {
		return nil
	}
	return append([]string(nil), t.files...)
}

// LastError reports why the most recent reload attempt failed, or nil.
func (t *TrustStore) LastError() error {
	if t == nil || t.r == nil {
		return ErrNoTrustStore
	}
	return t.r.err()
}

// Verify verifies a presented chain (leaf first, rest intermediates) against
// the current pool for the given usage. Failures wrap ErrUntrusted and the
// crypto/x509 error (x509.UnknownAuthorityError, x509.CertificateInvalidError...).
func (t *TrustStore) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage) ([][]*x509.Certificate, error) {
	return t.verify(chain, usage, "")
}

// verify is Verify plus, when name is not empty, a check that the leaf is
// valid for the DNS name or IP literal name.
func (t *TrustStore) verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, name string) ([][]*x509.Certificate, error) {
	if t == nil || t.r == nil {
		return nil, ErrNoTrustStore
	}
	if len(chain) == 0 || chain[0] == nil {
		return nil, fmt.Errorf("mtls: verifying chain: %w", ErrNoCertificate)
	}
	leaf := chain[0]
	opts := x509.VerifyOptions{
		Roots:     t.r.get().pool,
		DNSName:   name,
		KeyUsages: []x509.ExtKeyUsage{usage},
	}
	if len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			if c != nil {
				opts.Intermediates.AddCert(c)
			}
		}
	}
	chains, err := leaf.Verify(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUntrusted, describeCert(leaf), err)
	}
	return chains, nil
}

// expire forces the next use to re-stat the files (tests).
func (t *TrustStore) expire() { t.r.expire() }

// describeCert renders a certificate for error messages and logs.
func describeCert(c *x509.Certificate) string {
	if c == nil {
		return "<no certificate>"
	}
	return fmt.Sprintf("subject %q names [%s] issuer %q serial %s",
		c.Subject.CommonName, strings.Join(quoteAll(CertNames(c)), " "), c.Issuer.CommonName, c.SerialNumber)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
