// Package certbind is what certificate-bound tokens (RFC 8705) need on
// both tiers: the x5t#S256 thumbprint of a phone's client certificate
// (§3.1), and the Header that carries it from the edge, which sees the
// phone's TLS connection, to the core, which does not (issue 15).
//
// The header is handled as the request ID is (internal/reqid): a phone
// never chooses it. The edge removes any such header a phone wrote and
// sets its own from the client certificate of the phone's connection (none
// when the phone presented none); the core believes it only on
// connections from an admitted edge (the MRA port, or an HTTPS client
// certificate admitted in the handshake, S-11/S-12) and ignores it
// everywhere else.
//
// Both tiers import it; neither imports the other.
package certbind

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Header carries the thumbprint of the phone's client certificate from the
// edge to the core, in HTTPS token requests and in SIP requests alike.
const Header = "X-Edgeway-Client-Cert-S256"

// Thumbprint is the x5t#S256 of cert (RFC 8705 §3.1): the base64url
// (unpadded) SHA-256 of its DER encoding; "" for nil.
func Thumbprint(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Of is the thumbprint of the leaf of a TLS peer's chain, "" when the peer
// presented no certificate.
func Of(chain []*x509.Certificate) string {
	if len(chain) == 0 {
		return ""
	}
	return Thumbprint(chain[0])
}

// Valid reports whether s has the shape of a thumbprint: 43 characters of
// the base64url alphabet (32 bytes, unpadded).
func Valid(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// FromHTTP is the thumbprint an admitted edge (trusted) sent with r: the
// value of its one Header when Valid; "" otherwise (none, two, malformed,
// or not trusted).
func FromHTTP(r *http.Request, trusted bool) string {
	if vs := r.Header.Values(Header); trusted && len(vs) == 1 && Valid(vs[0]) {
		return vs[0]
	}
	return ""
}

// SetHTTP gives the outgoing request h the one Header thumb, replacing
// any it had (a phone's); none when thumb is "".
func SetHTTP(h http.Header, thumb string) {
	h.Del(Header)
	if thumb != "" {
		h.Set(Header, thumb)
	}
}

// FromSIP is the thumbprint an admitted edge (trusted) sent with req, as
// FromHTTP.
func FromSIP(req *sip.Request, trusted bool) string {
	if !trusted {
		return ""
	}
	v, n := "", 0
	for _, h := range req.Headers() {
		if name := h.Name(); len(name) == len(Header) && strings.EqualFold(name, Header) {
			v, n = h.Value(), n+1
		}
	}
	if n == 1 && Valid(v) {
		return v
	}
	return ""
}

// StripSIP removes every Header from req, whatever the case of its name:
// for a copy the caller owns (the one a proxy forwards).
func StripSIP(req *sip.Request) {
	for {
		var found sip.Header
		for _, h := range req.Headers() {
			if name := h.Name(); len(name) == len(Header) && strings.EqualFold(name, Header) {
				found = h
				break
			}
		}
		if found == nil {
			return
		}
		req.RemoveHeader(found.Name())
	}
}

// SetSIP gives the forwarded copy req the one Header thumb, replacing any
// the phone wrote; none when thumb is "".
func SetSIP(req *sip.Request, thumb string) {
	StripSIP(req)
	if thumb != "" {
		req.AppendHeader(sip.NewHeader(Header, thumb))
	}
}
