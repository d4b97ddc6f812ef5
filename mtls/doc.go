// Package mtls is Edgeway's TLS layer: the development PKI, hot-reloadable
// key pairs and trust stores, the single tls.Config builder used by every
// listener and dialer, a TLS listener that handshakes off the accept loop,
// and peer-name matching for mutual TLS between the edge (Expressway role)
// and the core (Unified CM role, SIP over mutual TLS on port 5091).
//
// Rules owned by this package:
//
//   - S-8 Phone-Edge-Trust: the edge trusts the core's Tomcat certificate
//     through a separate "phone-edge-trust" bundle (the CA that roots the
//     core's server certificate).
//   - S-11 Tomcat certificate and tomcat-trust: the core presents its
//     Tomcat certificate and admits only clients whose certificate chains
//     to its "tomcat-trust" store (see [MutualServerConfig], [TrustStore]).
//   - S-12 subject/SAN matching: an admitted edge must also carry, in its
//     subject alternative names (or, only when it has no DNS or IP SAN, its
//     subject common name, per RFC 6125 §6.4.4), a name configured as an
//     Expressway-C entry (see [MatchPeerName]). Wildcards are deliberately
//     not honoured.
//
// Only the standard library's crypto/x509 and crypto/tls are used; all
// configurations negotiate TLS 1.2 or TLS 1.3 only.
package mtls
