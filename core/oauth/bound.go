package oauth

// Certificate-bound tokens (RFC 8705; issue 15). The phone's client
// certificate is the one it presented to the edge's HTTPS listener; the
// edge hands its x5t#S256 to the core in certbind.Header, believed only
// from an admitted edge (PeerOf). A family started with a certificate is
// bound to it: its access tokens carry cnf.x5t#S256, it remembers the
// thumbprint (store.RefreshToken.Cnf), and it refreshes only with the same
// certificate. A security profile may require binding for its devices
// (store.SecurityProfile.RequireBoundTokens).
//
// The password grant is served on premises only (S-18), straight on the
// core's HTTPS port, where a client certificate is taken for an
// Expressway-C's (PeerOf): so its tokens are never bound, and a device
// whose profile requires binding cannot use it.

import (
	"context"
	"net/http"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/store"
)

// bind binds the family f is about to start to the certificate with
// thumbprint cnf ("" leaves it a bearer family).
func (f *family) bind(cnf string) {
	f.cnf = cnf
	for i := range f.first {
		f.first[i].Cnf = cnf
	}
}

// checkBindable refuses a token request without a client certificate for
// a device whose security profile requires certificate-bound tokens.
func (s *Server) checkBindable(ctx context.Context, dev store.Device, cnf string) error {
	if cnf != "" {
		return nil
	}
	profile, required, err := policy.RequiresBoundTokens(ctx, s.st, dev)
	if err != nil {
		return err
	}
	if required {
		return oauthErr(http.StatusBadRequest, "invalid_request",
			"RFC 8705 §3: security profile %s of device %s requires certificate-bound tokens; present the device's client certificate to the edge", profile, dev.Name)
	}
	return nil
}

// checkRefreshBinding: a bound family refreshes only over a connection
// that presented its certificate (RFC 8705 §3: invalid_grant), and an
// unbound family of a device whose profile now requires binding does not
// refresh at all (the phone onboards again, with its certificate).
func (s *Server) checkRefreshBinding(ctx context.Context, dev store.Device, old store.RefreshToken, cnf string) error {
	if old.Cnf != "" {
		if cnf != old.Cnf {
			return oauthErr(http.StatusBadRequest, "invalid_grant",
				"RFC 8705 §3: the refresh token is bound to another client certificate than the one presented")
		}
		return nil
	}
	profile, required, err := policy.RequiresBoundTokens(ctx, s.st, dev)
	if err != nil {
		return err
	}
	if required {
		return oauthErr(http.StatusBadRequest, "invalid_grant",
			"RFC 8705 §3: security profile %s of device %s requires certificate-bound tokens; this refresh token is not bound: onboard the device again with its client certificate", profile, dev.Name)
	}
	return nil
}
