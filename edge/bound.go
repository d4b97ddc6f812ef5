package edge

// Certificate-bound tokens (RFC 8705; issue 15).
//
// The edge's public HTTPS (8443) and SIP/TLS (5061) listeners ask every
// phone for a client certificate and never require one: Cisco phones
// carry a manufacturer-installed (MIC) or locally significant (LSC)
// certificate, soft clients and older firmware none.
//
//   - Token requests: the edge hands the core the x5t#S256 thumbprint of
//     the certificate the phone's HTTPS connection presented, in
//     certbind.Header, after removing any such header the phone wrote
//     (httpHandler's traversalHeaders); the core binds the tokens to it.
//   - SIP: a request whose bearer token has cnf.x5t#S256 (REGISTER, an
//     initial INVITE) is refused unless the phone's TLS connection to this
//     edge presented that certificate (precheck → checkBound); the copy
//     forwarded to the core carries the connection's thumbprint in
//     certbind.Header, so the core re-checks it (core/registrar/bound.go).
//
// tls.phone_client_ca: with it set, a certificate that does not verify
// against the bundle fails the handshake (refused, not ignored). Ignoring
// it would quietly hand the phone a bearer token where it expects a bound
// one (a downgrade nobody sees), or, under a profile that requires binding,
// a refusal that names the token instead of the certificate; a failed
// handshake shows up at once in the edge's log ("phone TLS handshake
// failed"). Without it, any certificate binds: RFC 8705 §2.2 (self-signed
// certificates) — the handshake's CertificateVerify proves the phone
// holds the key, which is all a binding needs; which device the tokens are
// for is the core's decision (activation code, refresh token), not the
// certificate's.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/certbind"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/token"
	"github.com/edgeway/edgeway/mtls"
)

// phoneServerConfig is the TLS config of the phone-facing listeners: the
// public certificate, a client certificate requested, verified against
// phoneTrust when that is set.
func (s *Server) phoneServerConfig() *tls.Config {
	c := mtls.ServerConfigFrom(s.public)
	c.ClientAuth = tls.RequestClientCert
	if trust := s.phoneTrust; trust != nil {
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil // never required
			}
			if _, err := trust.Verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth); err != nil {
				return fmt.Errorf("edge: phone client certificate not issued by tls.phone_client_ca: %w", err)
			}
			return nil
		}
	}
	return c
}

// phoneThumbprint is the x5t#S256 of the client certificate r's
// connection presented, "" for none.
func phoneThumbprint(r *http.Request) string {
	if r.TLS == nil {
		return ""
	}
	return certbind.Of(r.TLS.PeerCertificates)
}

// connThumbprint is the x5t#S256 of the client certificate the phone's
// TLS connection from source presented, "" for none (or no such
// connection any more).
func (f *SIPFront) connThumbprint(source string) string {
	if f.ua == nil {
		return ""
	}
	c, err := f.ua.TransportLayer().GetConnection("tls", source)
	if err != nil || c == nil {
		return ""
	}
	tc, ok := c.(*sip.TCPConnection)
	if !ok {
		return ""
	}
	conn, ok := tc.Conn.(*tls.Conn)
	if !ok {
		return ""
	}
	return certbind.Of(conn.ConnectionState().PeerCertificates)
}

// checkBound refuses a request whose token is bound to a certificate the
// phone's connection did not present (RFC 8705 §3): 401 invalid_token,
// and a Warning naming the rule. It reports whether to go on.
func (f *SIPFront) checkBound(req *sip.Request, tx sip.ServerTransaction, claims *token.Claims, realm string) bool {
	want := claims.CertThumbprint()
	if want == "" || f.connThumbprint(req.Source()) == want {
		return true
	}
	const desc = "RFC 8705 §3: the token is bound to a client certificate this TLS connection did not present"
	f.log.Debug("request refused at edge", "method", req.Method, "src", req.Source(), "why", desc, reqid.Attr, reqid.FromTx(tx))
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", sipx.BearerChallenge(realm, f.authz, "invalid_token", desc)))
	res.AppendHeader(sip.NewHeader("Warning", fmt.Sprintf("399 %s %q", f.host, desc)))
	_ = tx.Respond(res)
	return false
}
