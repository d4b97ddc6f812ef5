package registrar

import (
	"context"
	"errors"
	"fmt"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/certbind"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// checkBinding re-checks a certificate-bound token (RFC 8705 §3; issue
// 15) where the core can: the phone's TLS connection ends at the edge,
// which checks the binding first (edge/bound.go) and passes the phone
// certificate's thumbprint along in certbind.Header, believed only on the
// MRA port (S-11/S-12). So a token with cnf registers only through an
// edge whose phone connection presented that certificate; on the Phone
// OAuth port, where the core asks no phone for a certificate, a bound
// token is refused. And a device whose security profile requires bound
// tokens may not register with a bearer token.
func (g *Registrar) checkBinding(ctx context.Context, st *regState) error {
	return CheckBinding(ctx, g.d.Lookups, st.claims, st.dev, st.req, st.mra)
}

// CheckBinding is the REGISTER chain's binding check for any request
// carrying the token claims of device dev (core/proxy's new calls too);
// mra: req came in on the MRA port, from an edge.
func CheckBinding(ctx context.Context, profiles policy.ProfileReader, claims *token.Claims, dev store.Device, req *sip.Request, mra bool) error {
	if want := claims.CertThumbprint(); want != "" {
		if certbind.FromSIP(req, mra) != want {
			return Forbidden(errors.New("RFC 8705 §3: the token is bound to a client certificate the phone's TLS connection did not present"))
		}
		return nil
	}
	profile, required, err := policy.RequiresBoundTokens(ctx, profiles, dev)
	if err != nil {
		return err
	}
	if required {
		return Forbidden(fmt.Errorf("%w: security profile %s of device %s; this token is a bearer token", policy.ErrBoundTokenRequired, profile, dev.Name))
	}
	return nil
}
