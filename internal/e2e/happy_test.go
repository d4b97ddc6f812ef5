// Package e2e runs whole-system tests: a real core and edge on loopback
// sockets, real TLS and mTLS with a generated PKI, a real SQLite store, and
// simulated phones speaking SIP through sipgo.
package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/internal/testenv"
)

const (
	phoneA = "SEP001122334401"
	phoneB = "SEP001122334402"
	csf    = "CSFDEMO"
)

// S-17, S-10, RFC 3327: the operator's story from onboarding to
// un-registering, through the edge and the core's MRA port.
func TestHappyPathThroughEdge(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)

	tok, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatalf("onboard: %v", err)
	}
	if tok.RefreshToken == "" || tok.ExpiresIn != 3600 {
		t.Fatalf("tokens: refresh=%q expires_in=%d; want a refresh token (S-10) and 3600s", tok.RefreshToken, tok.ExpiresIn)
	}
	res, err := ph.Register(ctx, 600)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	regs := env.Registrations(t)
	if len(regs) != 1 {
		t.Fatalf("bindings = %d, want 1: %+v", len(regs), regs)
	}
	b := regs[0]
	edgeSIP := env.Info.EdgeSIP
	if !b.MRA || b.Edge != "expc.edgeway.test" || b.Device != phoneA || b.AOR != "sip:1001@edgeway.test" {
		t.Fatalf("binding = %+v; want MRA via expc.edgeway.test for %s", b, phoneA)
	}
	if len(b.Path) != 1 || !strings.Contains(b.Path[0], "@"+edgeSIP+";transport=tls;lr;ob") {
		t.Fatalf("binding Path = %v; want the edge %s with a flow token", b.Path, edgeSIP)
	}

	tok2, err := ph.Refresh(ctx)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh must rotate both tokens")
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("re-register with refreshed token: %v %v", res, err)
	}
	if n := len(env.Registrations(t)); n != 1 {
		t.Fatalf("re-register must replace the binding, have %d", n)
	}
	if err := ph.Unregister(ctx); err != nil {
		t.Fatalf("unregister: %v", err)
	}
	if n := len(env.Registrations(t)); n != 0 {
		t.Fatalf("bindings after un-register = %d, want 0", n)
	}
}
