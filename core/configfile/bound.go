package configfile

import (
	"net/http"

	"github.com/edgeway/edgeway/internal/token"
)

// boundRefusal refuses a certificate-bound token (RFC 8705 §3; issue 15)
// unless the phone's connection presented its certificate: cnf is the
// thumbprint an admitted edge reported for the phone's HTTPS connection
// (oauth.Peer.Cnf), "" on premises, where the core sees no phone
// certificate, so a bound token downloads nothing there.
func boundRefusal(claims *token.Claims, cnf string) *configRefusal {
	if want := claims.CertThumbprint(); want != "" && want != cnf {
		return &configRefusal{status: http.StatusUnauthorized, bearer: "invalid_token",
			reason: "RFC 8705 §3: the token is bound to a client certificate this connection did not present"}
	}
	return nil
}
