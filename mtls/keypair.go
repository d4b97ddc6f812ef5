package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// KeyPair is a certificate chain and private key loaded from PEM files and
// re-read, without a restart, when either file changes. The files are
// stat'ed at most once per second, on use. A failed reload (for example a
// certificate written before its key) keeps the previous pair in service;
// the failure is reported by LastError until a reload succeeds.
//
// The certificate file may hold the leaf followed by intermediates. A
// KeyPair is safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	r                 *reloader[loadedPair]
}

type loadedPair struct {
	cert *tls.Certificate
	leaf *x509.Certificate
}

// NewKeyPair loads certFile and keyFile now and fails if they cannot be
// loaded or do not belong together.
func NewKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	r, err := newReloader([]string{certFile, keyFile}, k.load)
	if err != nil {
		return nil, err
	}
	k.r = r
	return k, nil
}

func (k *KeyPair) load() (*loadedPair, error) {
	certPEM, err := os.ReadFile(k.certFile)
	if err != nil {
		return nil, fmt.Errorf("mtls: loading certificate %s: %w", k.certFile, err)
	}
	keyPEM, err := os.ReadFile(k.keyFile)
	if err != nil {
		return nil, fmt.Errorf("mtls: loading key %s: %w", k.keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("mtls: loading key pair %s, %s: %w", k.certFile, k.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("mtls: loading key pair %s: parsing leaf: %w", k.certFile, err)
		}
		cert.Leaf = leaf
	}
	return &loadedPair{cert: &cert, leaf: leaf}, nil
}

// Certificate returns the current pair, reloading it first if the files
// changed (checked at most once per second). It returns an error only for a
// nil KeyPair. The returned value must not be modified.
func (k *KeyPair) Certificate() (*tls.Certificate, error) {
	if k == nil || k.r == nil {
		return nil, ErrNoKeyPair
	}
	return k.r.get().cert, nil
}

// LastError reports why the most recent reload attempt failed, or nil if it
// succeeded or found nothing to reload.
func (k *KeyPair) LastError() error {
	if k == nil || k.r == nil {
		return ErrNoKeyPair
	}
	return k.r.err()
}

// Leaf returns the parsed leaf certificate of the current pair (nil for a
// nil KeyPair).
func (k *KeyPair) Leaf() *x509.Certificate {
	if k == nil || k.r == nil {
		return nil
	}
	return k.r.get().leaf
}

// GetCertificate is suitable for tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate()
}

// GetClientCertificate is suitable for tls.Config.GetClientCertificate. A nil
// KeyPair presents no certificate.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if k == nil || k.r == nil {
		return &tls.Certificate{}, nil
	}
	return k.Certificate()
}

// Check reads and parses the files now without putting them in service:
// the error Reload would return, for a caller that must know every input
// is good before it changes anything (a configuration reload, SIGHUP).
func (k *KeyPair) Check() error {
	if k == nil || k.r == nil {
		return ErrNoKeyPair
	}
	_, err := k.load()
	return err
}

// Reload reads the files now, without waiting for the once-per-second
// stat, and serves the pair to the next handshakes; open connections keep
// theirs. On failure the previous pair stays in service.
func (k *KeyPair) Reload() error {
	if k == nil || k.r == nil {
		return ErrNoKeyPair
	}
	return k.r.reloadFiles()
}

// Files are the certificate and key files the pair is read from.
func (k *KeyPair) Files() (certFile, keyFile string) {
	if k == nil {
		return "", ""
	}
	return k.certFile, k.keyFile
}

// expire forces the next use to re-stat the files (tests).
func (k *KeyPair) expire() { k.r.expire() }
