package mtls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	// DefaultCAValidity is used by NewCA when validity is not positive.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultLeafValidity is used by CA.Issue when CertRequest.Validity is
	// not positive (825 days, the historical CA/Browser Forum maximum).
	DefaultLeafValidity = 825 * 24 * time.Hour

	// backdate tolerates modest clock skew between peers.
	backdate = 5 * time.Minute

	pemTypeCertificate = "CERTIFICATE"
	pemTypePKCS8       = "PRIVATE KEY"
	pemTypeEC          = "EC PRIVATE KEY"
	pemTypePKCS1       = "RSA PRIVATE KEY"
)

// CA is a certificate authority for the development PKI and for tests. Keys
// are ECDSA P-256. It is not meant to be a production CA: it keeps no
// issuance records and publishes no revocation information.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// CertRequest describes a leaf certificate to issue.
type CertRequest struct {
	CommonName string
	Names      []string      // DNS names and/or IP literals; each goes into the SAN extension as DNS or IP
	Server     bool          // ExtKeyUsageServerAuth
	Client     bool          // ExtKeyUsageClientAuth
	Validity   time.Duration // default 825 days
}

// NewCA creates a self-signed ECDSA P-256 CA certificate valid for validity
// (DefaultCAValidity if not positive). The CA may sign leaves only (path
// length zero).
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if strings.TrimSpace(commonName) == "" {
		return nil, fmt.Errorf("mtls: creating CA: %w: empty common name", ErrInvalidRequest)
	}
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mtls: creating CA %q: generating key: %w", commonName, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("mtls: creating CA %q: %w", commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("mtls: creating CA %q: signing: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mtls: creating CA %q: parsing result: %w", commonName, err)
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return nil, fmt.Errorf("mtls: creating CA %q: %w", commonName, err)
	}
	return &CA{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: der}),
		KeyPEM:  keyPEM,
	}, nil
}

// LoadCA loads a CA certificate (the first CERTIFICATE block of certFile)
// and its private key (PKCS#8, SEC 1 EC or PKCS#1 RSA PEM). It fails if the
// certificate is not a CA or the key does not match it.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("mtls: loading CA certificate %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("mtls: loading CA key %s: %w", keyFile, err)
	}
	certs, err := parseCertificatesPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("mtls: loading CA certificate %s: %w", certFile, err)
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA ||
		(cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0) {
		return nil, fmt.Errorf("mtls: loading CA certificate %s: %w", certFile, ErrNotCA)
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("mtls: loading CA key %s: %w", keyFile, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("mtls: loading CA %s with key %s: %w", certFile, keyFile, ErrKeyMismatch)
	}
	return &CA{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: cert.Raw}),
		KeyPEM:  keyPEM,
	}, nil
}

// Issue creates a new ECDSA P-256 key and a leaf certificate for it signed by
// the CA. The returned certificate PEM holds the leaf only; the key PEM is a
// PKCS#8 "PRIVATE KEY" block. At least one of CommonName and Names, and at
// least one of Server and Client, must be set. The validity is clamped to the
// CA's own expiry.
func (ca *CA) Issue(req CertRequest) (certPEM, keyPEM []byte, err error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, nil, fmt.Errorf("mtls: issuing certificate: %w: CA has no certificate or key", ErrInvalidRequest)
	}
	label := req.CommonName
	if label == "" && len(req.Names) > 0 {
		label = req.Names[0]
	}
	if label == "" {
		return nil, nil, fmt.Errorf("mtls: issuing certificate: %w: no common name and no names", ErrInvalidRequest)
	}
	if !req.Server && !req.Client {
		return nil, nil, fmt.Errorf("mtls: issuing certificate %q: %w: neither server nor client usage requested", label, ErrInvalidRequest)
	}
	dnsNames, ips, err := splitNames(req.Names)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: issuing certificate %q: %w", label, err)
	}
	validity := req.Validity
	if validity <= 0 {
		validity = DefaultLeafValidity
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	var usages []x509.ExtKeyUsage
	if req.Server {
		usages = append(usages, x509.ExtKeyUsageServerAuth)
	}
	if req.Client {
		usages = append(usages, x509.ExtKeyUsageClientAuth)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: issuing certificate %q: generating key: %w", label, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: issuing certificate %q: %w", label, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.CommonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usages,
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: issuing certificate %q: signing: %w", label, err)
	}
	keyPEM, err = encodeKeyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("mtls: issuing certificate %q: %w", label, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: der}), keyPEM, nil
}

// splitNames sorts names into DNS SANs and IP SANs, rejecting names that
// cannot appear in a certificate.
func splitNames(names []string) ([]string, []net.IP, error) {
	var dns []string
	var ips []net.IP
	for _, n := range names {
		if addr, err := netip.ParseAddr(n); err == nil {
			if addr.Zone() != "" {
				return nil, nil, fmt.Errorf("%w: IP %q has a zone", ErrInvalidRequest, n)
			}
			ips = append(ips, net.IP(addr.Unmap().AsSlice()))
			continue
		}
		if !validDNSName(n) {
			return nil, nil, fmt.Errorf("%w: invalid DNS name %q", ErrInvalidRequest, n)
		}
		dns = append(dns, n)
	}
	return dns, ips, nil
}

// validDNSName accepts LDH names, underscores (seen in internal names) and a
// leftmost "*" label (so tests can mint wildcard certificates; this package
// never honours wildcards when matching). It is deliberately permissive about label syntax but
// rejects empty names, spaces, control and non-ASCII characters.
func validDNSName(n string) bool {
	n = strings.TrimSuffix(n, ".")
	if n == "" || len(n) > 253 {
		return false
	}
	for li, label := range strings.Split(n, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		if label == "*" && li == 0 {
			continue
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}

// WriteFileAtomic writes data to a temporary file in path's directory, syncs
// it, sets perm and renames it over path, so readers see either the old or
// the new content, never a partial file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("mtls: writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("mtls: writing %s: setting mode: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("mtls: writing %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("mtls: writing %s: syncing: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("mtls: writing %s: closing: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("mtls: writing %s: renaming: %w", path, err)
	}
	// Persist the rename; failure here is not fatal (not all platforms
	// support syncing directories).
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func encodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypePKCS8, Bytes: der}), nil
}

// parseCertificatesPEM returns every CERTIFICATE block in data, in order.
// Other block types are skipped; a CERTIFICATE block that does not parse is
// an error.
func parseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != pemTypeCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return certs, nil
}

// parsePrivateKeyPEM returns the first private key in data.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case pemTypePKCS8:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case pemTypeEC:
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case pemTypePKCS1:
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: unsupported key type %T", ErrNoPrivateKey, key)
		}
		return signer, nil
	}
	return nil, ErrNoPrivateKey
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	switch k := a.(type) {
	case *ecdsa.PublicKey:
		return k.Equal(b)
	case *rsa.PublicKey:
		return k.Equal(b)
	case ed25519.PublicKey:
		return k.Equal(b)
	}
	return false
}
