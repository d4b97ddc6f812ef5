package registrar

import (
	"context"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/certbind"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// RFC 8705 §3 (issue 15): a bound token registers only when the edge
// reports the same certificate's thumbprint, and only on the MRA port; a
// device whose profile requires binding may not register with a bearer
// token.
func TestCheckBinding(t *testing.T) {
	const thumb = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	const other = "AAAA0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	g, look := testRegistrar(true)
	bound := claims(phoneDev, token.GrantActivationCode)
	bound.Cnf = token.BoundTo(thumb)
	g.d.Tokens.(fakeTokens)["bound"] = bound
	ctx := context.Background()
	run := func(mra bool, auth string, hdr ...string) error {
		req := register("1001", testDomain, edgeSource, auth)
		for _, h := range hdr {
			req.AppendHeader(sip.NewHeader(certbind.Header, h))
		}
		st := state(t, g, mra, req, "RFC 8705 certificate-bound token")
		return g.checkBinding(ctx, st)
	}
	if err := run(true, "Bearer bound", thumb); err != nil {
		t.Fatalf("bound token with its certificate through the edge: %v", err)
	}
	wantRefusal(t, run(true, "Bearer bound"), 403, "", nil)
	wantRefusal(t, run(true, "Bearer bound", other), 403, "", nil)
	wantRefusal(t, run(true, "Bearer bound", thumb, thumb), 403, "", nil) // two headers: none believed
	// The Phone OAuth port believes no such header: a phone wrote it.
	wantRefusal(t, run(false, "Bearer bound", thumb), 403, "", nil)
	if err := run(true, "Bearer good"); err != nil {
		t.Fatalf("bearer token, profile not requiring binding: %v", err)
	}
	look.profiles["oauth"] = store.SecurityProfile{Name: "oauth", Mode: "encrypted", Transport: "TLS", OAuth: true, RequireBoundTokens: true}
	wantRefusal(t, run(true, "Bearer good", thumb), 403, "", policy.ErrBoundTokenRequired)
	if err := run(true, "Bearer bound", thumb); err != nil {
		t.Fatalf("bound token, profile requiring binding: %v", err)
	}
}
