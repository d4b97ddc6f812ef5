package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Every listener and dialer in Edgeway gets its *tls.Config from this file,
// so protocol versions and verification rules live in one place.
//
// Certificates and trust anchors are looked up per handshake (KeyPair and
// TrustStore reload their files), so a config never needs rebuilding after a
// certificate or trust-store change; new handshakes see the change, open
// connections are unaffected.

// CipherSuites are the TLS 1.2 suites every Edgeway config offers and
// accepts: ECDHE key exchange with an AEAD cipher only (AES-GCM and
// ChaCha20-Poly1305). CBC-mode suites (LUCKY13, issue 9 item 8) and static
// RSA key exchange (no forward secrecy) are never negotiated. TLS 1.3 suites
// are all AEAD and are not configurable in crypto/tls.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

func baseConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS13,
		CipherSuites: CipherSuites(),
	}
}

// ServerConfig is a server config presenting kp that requests no client
// certificate (ClientAuth NoClientCert).
func ServerConfig(kp *KeyPair) *tls.Config {
	return ServerConfigFrom(kp)
}

// CertSource gives a server its certificate for each handshake: a
// KeyPair (files, reloaded when they change) or a certificate manager
// such as the edge's ACME client (edge/acme.go), which swaps in renewed
// certificates. Open connections keep the certificate they were made
// with.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// ServerConfigFrom is ServerConfig with the certificate taken from src at
// each handshake.
func ServerConfigFrom(src CertSource) *tls.Config {
	c := baseConfig()
	c.GetCertificate = src.GetCertificate
	c.ClientAuth = tls.NoClientCert
	return c
}

// MutualServerConfig is a server config presenting kp that requires a client
// certificate. In VerifyConnection (which also runs for resumed sessions) the
// presented chain is verified against trust's current pool for
// ExtKeyUsageClientAuth (S-11), so trust-store file changes apply to new
// handshakes; then admit(leaf) is called if admit is not nil (S-12, see
// AdmitNames). Any error fails the handshake: verification failures wrap
// ErrUntrusted, admission failures wrap ErrNotAdmitted and admit's error, a
// missing certificate is ErrNoClientCertificate.
//
// crypto/tls' own client verification is not used (ClientAuth is
// RequireAnyClientCert) because it reads ClientCAs fixed at config creation.
func MutualServerConfig(kp *KeyPair, trust *TrustStore, admit func(leaf *x509.Certificate) error) *tls.Config {
	c := baseConfig()
	c.GetCertificate = kp.GetCertificate
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyConnection = verifyClient(trust, admit, false)
	return c
}

// OptionalClientServerConfig is like MutualServerConfig, but a client that
// presents no certificate is allowed (VerifyClientCertIfGiven semantics,
// checked against trust's current pool). A client that presents one must
// verify and pass admit. Callers tell the two cases apart with
// len(conn.ConnectionState().PeerCertificates).
func OptionalClientServerConfig(kp *KeyPair, trust *TrustStore, admit func(leaf *x509.Certificate) error) *tls.Config {
	c := baseConfig()
	c.GetCertificate = kp.GetCertificate
	c.ClientAuth = tls.RequestClientCert
	c.VerifyConnection = verifyClient(trust, admit, true)
	return c
}

func verifyClient(trust *TrustStore, admit func(*x509.Certificate) error, optional bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			if optional {
				return nil
			}
			return ErrNoClientCertificate
		}
		leaf := cs.PeerCertificates[0]
		if _, err := trust.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth); err != nil {
			return fmt.Errorf("mtls: client certificate: %w", err)
		}
		if admit != nil {
			if err := admit(leaf); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrNotAdmitted, describeCert(leaf), err)
			}
		}
		return nil
	}
}

// ClientConfigAnyOf is ClientConfig for a client that dials several
// servers through one config (the edge's SIP user agent, which reaches
// every core of its list through one TLS config): the server's leaf must
// verify for one of names. With a single name it is ClientConfig.
func ClientConfigAnyOf(kp *KeyPair, trust *TrustStore, names []string) *tls.Config {
	if len(names) == 1 {
		return ClientConfig(kp, trust, names[0])
	}
	c := ClientConfig(kp, trust, "")
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(names) == 0 {
			return ErrNoServerName
		}
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("mtls: server %v: %w", names, ErrNoCertificate)
		}
		var errs []error
		for _, n := range names {
			_, err := trust.verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, n)
			if err == nil {
				return nil
			}
			errs = append(errs, err)
		}
		return fmt.Errorf("mtls: server none of %v: %w", names, errors.Join(errs...))
	}
	return c
}

// ClientConfig is a config for dialing a TLS server. It presents kp as the
// client certificate when kp is not nil and the server asks for one, and it
// verifies the server's chain against trust's current pool for
// ExtKeyUsageServerAuth and the leaf against serverName (a DNS name or an IP
// literal). serverName is also sent as SNI when it is a DNS name. Failures
// wrap ErrUntrusted (ErrNoServerName if serverName is empty).
func ClientConfig(kp *KeyPair, trust *TrustStore, serverName string) *tls.Config {
	c := baseConfig()
	c.ServerName = serverName
	if kp != nil {
		c.GetClientCertificate = kp.GetClientCertificate
	}
	// InsecureSkipVerify only disables crypto/tls' built-in verification,
	// which would check against RootCAs fixed when this config was built.
	// Trust stores reload from disk, so verification is done instead in
	// VerifyConnection against the trust store's pool at handshake time. It
	// performs the full check that InsecureSkipVerify turned off (chain to a
	// trusted root, validity, server-auth usage, and host name) and runs on
	// every handshake, including resumed sessions; any failure aborts the
	// handshake. Do not clear VerifyConnection on a config built here.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if serverName == "" {
			return ErrNoServerName
		}
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("mtls: server %s: %w", serverName, ErrNoCertificate)
		}
		if _, err := trust.verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, serverName); err != nil {
			return fmt.Errorf("mtls: server %s: %w", serverName, err)
		}
		return nil
	}
	return c
}
