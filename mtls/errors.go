package mtls

import "errors"

// Sentinel errors. Errors returned by this package wrap these (test with
// errors.Is) together with the underlying cause and context.
var (
	// ErrNoCertificate: a PEM input, a trust-store file or a presented chain
	// holds no certificate.
	ErrNoCertificate = errors.New("mtls: no certificate")
	// ErrNoPrivateKey: a PEM input holds no usable private key.
	ErrNoPrivateKey = errors.New("mtls: no private key")
	// ErrKeyMismatch: a private key does not belong to the certificate.
	ErrKeyMismatch = errors.New("mtls: private key does not match certificate")
	// ErrNotCA: a certificate loaded as a CA cannot sign certificates.
	ErrNotCA = errors.New("mtls: certificate is not a CA")
	// ErrInvalidRequest: a CertRequest is unusable (no names, bad name, no usage).
	ErrInvalidRequest = errors.New("mtls: invalid certificate request")
	// ErrNoKeyPair: a nil *KeyPair was used.
	ErrNoKeyPair = errors.New("mtls: no key pair configured")
	// ErrNoTrustStore: a nil *TrustStore was used.
	ErrNoTrustStore = errors.New("mtls: no trust store configured")
	// ErrUntrusted: a presented chain does not verify against the trust store
	// (unknown CA, expired, wrong key usage or, for servers, wrong name).
	ErrUntrusted = errors.New("mtls: certificate not trusted")
	// ErrNoClientCertificate: a mutual-TLS server received no client certificate.
	ErrNoClientCertificate = errors.New("mtls: client certificate required")
	// ErrNotAdmitted: the client chain verified but the admission check
	// (for example S-12 name matching) refused it.
	ErrNotAdmitted = errors.New("mtls: client certificate not admitted")
	// ErrNoServerName: ClientConfig was built without a server name, so the
	// server's identity cannot be verified.
	ErrNoServerName = errors.New("mtls: no server name to verify")
	// ErrConnLimit: the listener's MaxConns was reached; the socket was closed.
	ErrConnLimit = errors.New("mtls: listener connection limit reached")
	// ErrSourceConnLimit: MaxConnsPerSource was reached for the remote IP.
	ErrSourceConnLimit = errors.New("mtls: per-source connection limit reached")
	// ErrNotEstablished: a connection was closed because Established was
	// not called for it within ListenerOptions.EstablishTimeout.
	ErrNotEstablished = errors.New("mtls: connection not established in time")
	// ErrHandshakeTimeout: the TLS handshake did not complete within
	// ListenerOptions.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("mtls: TLS handshake timed out")
	// ErrIncompleteDevPKI: the development PKI directory is in a state
	// InitDevPKI will not repair without Force (for example the CA key is
	// missing, or existing files do not chain to the CA).
	ErrIncompleteDevPKI = errors.New("mtls: development PKI is incomplete or inconsistent")
)
