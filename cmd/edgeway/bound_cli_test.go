package main

import (
	"net/http"
	"slices"
	"testing"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/testenv"
)

// Issue 15 (RFC 8705): `edgeway admin profile set --require-bound-tokens`
// stores the setting, `profile list` shows it, and without --oauth the
// API's refusal is shown.
func TestAdminCLIProfileRequireBoundTokens(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Bare: true})
	c := newCLI(t, env)
	out := c.run("profile", "set", "Bound", "--mode", "encrypted", "--transport", "TLS", "--oauth", "--require-bound-tokens")
	wantContains(t, "profile set", out, `saved security profile "Bound"`, "certificate-bound tokens on")
	if r := tableRow(c.run("profile", "list"), "Bound"); !slices.Equal(r, []string{"Bound", "-", "encrypted", "TLS", "yes", "no", "no", "yes"}) {
		t.Fatalf("profile list row %q, want BOUND-TOKENS yes", r)
	}
	c.run("profile", "set", "Bound", "--mode", "encrypted", "--transport", "TLS", "--oauth")
	if r := tableRow(c.run("profile", "list"), "Bound"); len(r) != 8 || r[7] != "no" {
		t.Fatalf("profile list row %q after clearing, want BOUND-TOKENS no", r)
	}
	if msg := c.refused(http.StatusBadRequest, "profile", "set", "Bad", "--mode", "encrypted", "--transport", "TLS", "--require-bound-tokens"); msg != policy.ErrBoundTokensNeedOAuth.Error() {
		t.Fatalf("bound tokens without OAuth: %q, want %q", msg, policy.ErrBoundTokensNeedOAuth)
	}
}
