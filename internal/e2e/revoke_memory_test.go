package e2e

import (
	"context"
	"testing"

	"github.com/edgeway/edgeway/internal/testenv"
)

// The core answers revocation from memory (issue 10): once a REGISTER has
// shown the token's grant alive, revoking the access token (RFC 7009)
// through this node still stops the very next REGISTER, with no wait for
// the change feed, while another token of the same grant keeps working.
func TestAccessTokenRevokedThroughThisNodeRefusedAtOnce(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	t1, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	t2, err := ph.Refresh(ctx) // same grant family, new access token
	if err != nil {
		t.Fatal(err)
	}
	revoke(t, env, env.Info.EdgeHTTPS, t1.AccessToken)
	expectRefusal(t, ph, "access token revoked a moment ago", "Bearer "+t1.AccessToken, 401, "invalid_token")
	ph.SetTokens(t2)
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register with the grant's other token after revoking the first: %v %v", res, err)
	}
}
