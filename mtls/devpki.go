package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DevCACommonName is the subject CN of the development CA.
const DevCACommonName = "Edgeway Development CA"

// File names inside DevPKIOptions.Dir.
const (
	DevCACertFile         = "ca.pem"
	DevCAKeyFile          = "ca-key.pem"
	DevCoreCertFile       = "core.pem"
	DevCoreKeyFile        = "core-key.pem"
	DevEdgeMTLSCertFile   = "edge-mtls.pem"
	DevEdgeMTLSKeyFile    = "edge-mtls-key.pem"
	DevEdgePublicCertFile = "edge-public.pem"
	DevEdgePublicKeyFile  = "edge-public-key.pem"
	DevTomcatTrustFile    = "tomcat-trust.pem"
	DevPhoneEdgeTrustFile = "phone-edge-trust.pem"
)

const (
	certPerm = 0o644
	keyPerm  = 0o600
	dirPerm  = 0o700
)

// Default name lists for InitDevPKI. The first entry of each is the CN.
var (
	defaultCoreNames       = []string{"core.edgeway.test", "localhost", "127.0.0.1", "127.0.0.2"}
	defaultEdgeMTLSNames   = []string{"expc.edgeway.test"}
	defaultEdgePublicNames = []string{"edge.edgeway.test", "localhost", "127.0.0.1"}
)

// DevPKIOptions configures InitDevPKI (`edgeway pki init`).
type DevPKIOptions struct {
	Dir             string
	CoreNames       []string // SANs of the core's server ("Tomcat") certificate, e.g. core.edgeway.test, localhost, 127.0.0.2, 127.0.0.1
	EdgeMTLSNames   []string // SANs of the edge's client cert for the mTLS hop (its Expressway-C name), e.g. expc.edgeway.test. First is also CN.
	EdgePublicNames []string // SANs of the edge's public server certificate for phones, e.g. edge.edgeway.test, localhost, 127.0.0.1
	Force           bool     // regenerate even if files exist
}

// DevPKI lists the absolute paths of the development PKI files.
type DevPKI struct {
	CACert, CAKey, CoreCert, CoreKey, EdgeMTLSCert, EdgeMTLSKey, EdgePublicCert, EdgePublicKey, TomcatTrust, PhoneEdgeTrust string
}

// leafSpec describes one leaf pair of the development PKI.
type leafSpec struct {
	cert, key string
	names     []string
	server    bool
	client    bool
}

// InitDevPKI creates (or completes) a development PKI in o.Dir:
//
//   - ca.pem, ca-key.pem: the "Edgeway Development CA";
//   - core.pem, core-key.pem: the core's Tomcat certificate (server and
//     client usage, CN = first core name);
//   - edge-mtls.pem, edge-mtls-key.pem: the edge's certificate for the
//     mutual-TLS hop to the core (client and server usage, CN = first name,
//     which the core lists as its Expressway-C entry, S-12);
//   - edge-public.pem, edge-public-key.pem: the edge's server certificate
//     for phones;
//   - tomcat-trust.pem: the CA certificate, which verifies the edge mTLS
//     certificate (S-11);
//   - phone-edge-trust.pem: the CA certificate rooting the core's Tomcat
//     certificate (S-8).
//
// Keys are written 0600, certificates 0644, the directory is created 0700.
//
// Without Force it is idempotent: if every file exists nothing is written;
// if some are missing, the missing leaf pairs and trust bundles are
// regenerated with the existing CA (a pair is reissued if either of its
// files is missing). If ca.pem and ca-key.pem are both missing, everything
// is regenerated; if only one of them is missing it fails with
// ErrIncompleteDevPKI rather than orphan the existing certificates. Existing
// certificates are kept even if the name options changed. In every case the
// result is checked (keys match, leaves chain to the trust bundles for their
// usages) and an inconsistent directory fails with ErrIncompleteDevPKI; Force
// regenerates everything.
func InitDevPKI(o DevPKIOptions) (DevPKI, error) {
	if o.Dir == "" {
		return DevPKI{}, fmt.Errorf("mtls: initialising development PKI: %w: no directory", ErrInvalidRequest)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return DevPKI{}, fmt.Errorf("mtls: initialising development PKI in %s: %w", o.Dir, err)
	}
	p := DevPKI{
		CACert:         filepath.Join(dir, DevCACertFile),
		CAKey:          filepath.Join(dir, DevCAKeyFile),
		CoreCert:       filepath.Join(dir, DevCoreCertFile),
		CoreKey:        filepath.Join(dir, DevCoreKeyFile),
		EdgeMTLSCert:   filepath.Join(dir, DevEdgeMTLSCertFile),
		EdgeMTLSKey:    filepath.Join(dir, DevEdgeMTLSKeyFile),
		EdgePublicCert: filepath.Join(dir, DevEdgePublicCertFile),
		EdgePublicKey:  filepath.Join(dir, DevEdgePublicKeyFile),
		TomcatTrust:    filepath.Join(dir, DevTomcatTrustFile),
		PhoneEdgeTrust: filepath.Join(dir, DevPhoneEdgeTrustFile),
	}
	leaves := []leafSpec{
		{cert: p.CoreCert, key: p.CoreKey, names: orDefault(o.CoreNames, defaultCoreNames), server: true, client: true},
		{cert: p.EdgeMTLSCert, key: p.EdgeMTLSKey, names: orDefault(o.EdgeMTLSNames, defaultEdgeMTLSNames), server: true, client: true},
		{cert: p.EdgePublicCert, key: p.EdgePublicKey, names: orDefault(o.EdgePublicNames, defaultEdgePublicNames), server: true},
	}
	for _, l := range leaves {
		if _, _, err := splitNames(l.names); err != nil {
			return DevPKI{}, fmt.Errorf("mtls: initialising development PKI: %s: %w", filepath.Base(l.cert), err)
		}
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return DevPKI{}, fmt.Errorf("mtls: initialising development PKI: creating %s: %w", dir, err)
	}

	exists := func(path string) (bool, error) {
		_, err := os.Stat(path)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		default:
			return false, fmt.Errorf("mtls: initialising development PKI: %w", err)
		}
	}
	have := make(map[string]bool)
	for _, f := range p.files() {
		ok, err := exists(f)
		if err != nil {
			return DevPKI{}, err
		}
		have[f] = ok
	}

	// Decide on the CA.
	var ca *CA
	freshCA := o.Force || (!have[p.CACert] && !have[p.CAKey])
	switch {
	case freshCA:
		if ca, err = NewCA(DevCACommonName, DefaultCAValidity); err != nil {
			return DevPKI{}, fmt.Errorf("mtls: initialising development PKI: %w", err)
		}
		if err := WriteFileAtomic(p.CAKey, ca.KeyPEM, keyPerm); err != nil {
			return DevPKI{}, err
		}
		if err := WriteFileAtomic(p.CACert, ca.CertPEM, certPerm); err != nil {
			return DevPKI{}, err
		}
	case !have[p.CACert] || !have[p.CAKey]:
		missing := p.CACert
		if have[p.CACert] {
			missing = p.CAKey
		}
		return DevPKI{}, fmt.Errorf("mtls: initialising development PKI: %w: %s is missing; restore it or use Force to regenerate everything",
			ErrIncompleteDevPKI, missing)
	default:
		if allTrue(have, p.files()) {
			break // nothing to write; only check below
		}
		if ca, err = LoadCA(p.CACert, p.CAKey); err != nil {
			return DevPKI{}, fmt.Errorf("mtls: initialising development PKI: %w", err)
		}
	}

	if ca != nil {
		for _, l := range leaves {
			if !freshCA && have[l.cert] && have[l.key] {
				continue
			}
			certPEM, keyPEM, err := ca.Issue(CertRequest{
				CommonName: l.names[0],
				Names:      l.names,
				Server:     l.server,
				Client:     l.client,
			})
			if err != nil {
				return DevPKI{}, fmt.Errorf("mtls: initialising development PKI: %s: %w", l.cert, err)
			}
			if err := WriteFileAtomic(l.key, keyPEM, keyPerm); err != nil {
				return DevPKI{}, err
			}
			if err := WriteFileAtomic(l.cert, certPEM, certPerm); err != nil {
				return DevPKI{}, err
			}
		}
		for _, trust := range []string{p.TomcatTrust, p.PhoneEdgeTrust} {
			if !freshCA && have[trust] {
				continue
			}
			if err := WriteFileAtomic(trust, ca.CertPEM, certPerm); err != nil {
				return DevPKI{}, err
			}
		}
	}

	if err := checkDevPKI(p); err != nil {
		return DevPKI{}, fmt.Errorf("mtls: initialising development PKI in %s: %w: %w (use Force to regenerate)", dir, ErrIncompleteDevPKI, err)
	}
	return p, nil
}

// files lists every file of the PKI.
func (p DevPKI) files() []string {
	return []string{p.CACert, p.CAKey, p.CoreCert, p.CoreKey, p.EdgeMTLSCert, p.EdgeMTLSKey,
		p.EdgePublicCert, p.EdgePublicKey, p.TomcatTrust, p.PhoneEdgeTrust}
}

// checkDevPKI loads every file and checks the relationships the tiers rely
// on: the CA pair matches, each leaf pair matches, tomcat-trust verifies the
// edge mTLS certificate for client auth (S-11), phone-edge-trust verifies the
// core certificate for server auth (S-8), and the CA verifies the edge
// public certificate for server auth.
func checkDevPKI(p DevPKI) error {
	if _, err := LoadCA(p.CACert, p.CAKey); err != nil {
		return err
	}
	ca, err := NewTrustStore(p.CACert)
	if err != nil {
		return err
	}
	tomcat, err := NewTrustStore(p.TomcatTrust)
	if err != nil {
		return err
	}
	phoneEdge, err := NewTrustStore(p.PhoneEdgeTrust)
	if err != nil {
		return err
	}
	checks := []struct {
		cert, key string
		trust     *TrustStore
		usage     x509.ExtKeyUsage
	}{
		{p.CoreCert, p.CoreKey, phoneEdge, x509.ExtKeyUsageServerAuth},
		{p.EdgeMTLSCert, p.EdgeMTLSKey, tomcat, x509.ExtKeyUsageClientAuth},
		{p.EdgePublicCert, p.EdgePublicKey, ca, x509.ExtKeyUsageServerAuth},
	}
	for _, c := range checks {
		pair, err := tls.LoadX509KeyPair(c.cert, c.key)
		if err != nil {
			return fmt.Errorf("loading %s: %w", c.cert, err)
		}
		chain := make([]*x509.Certificate, 0, len(pair.Certificate))
		for _, der := range pair.Certificate {
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("parsing %s: %w", c.cert, err)
			}
			chain = append(chain, cert)
		}
		if _, err := c.trust.Verify(chain, c.usage); err != nil {
			return fmt.Errorf("checking %s against %v: %w", c.cert, c.trust.Files(), err)
		}
	}
	return nil
}

func orDefault(names, def []string) []string {
	if len(names) == 0 {
		return append([]string(nil), def...)
	}
	return names
}

func allTrue(m map[string]bool, keys []string) bool {
	for _, k := range keys {
		if !m[k] {
			return false
		}
	}
	return true
}
