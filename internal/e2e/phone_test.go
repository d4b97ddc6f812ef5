package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/testenv"
)

// The simulated phone's life: register, refresh before the token expires
// and re-register, un-register when stopped (what `edgeway phone` runs).
func TestPhoneRunRefreshesAndUnregisters(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(context.Background(), env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	// Pretend the token was obtained 55 minutes ago: past 80 % of its life,
	// so Run refreshes at its first opportunity.
	tok.Obtained = time.Now().Add(-55 * time.Minute)
	ph.SetTokens(tok)

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan bench.Event, 16)
	done := make(chan error, 1)
	go func() { done <- ph.Run(ctx, func(e bench.Event) { events <- e }) }()

	var kinds []string
	timeout := time.After(30 * time.Second)
	for len(kinds) < 3 {
		select {
		case e := <-events:
			kinds = append(kinds, e.Kind)
			if e.Kind == "error" {
				t.Fatalf("phone error: %s", e.Detail)
			}
		case <-timeout:
			t.Fatalf("events so far %v; want registered, refreshed, registered", kinds)
		}
	}
	if kinds[0] != "registered" || kinds[1] != "refreshed" || kinds[2] != "registered" {
		t.Fatalf("events %v; want registered, refreshed, registered", kinds)
	}
	if ph.Tokens().AccessToken == tok.AccessToken {
		t.Fatal("Run did not replace the access token")
	}
	if n := len(env.Registrations(t)); n != 1 {
		t.Fatalf("bindings while running = %d, want 1", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if last := <-events; last.Kind != "unregistered" {
		t.Fatalf("last event %v, want unregistered", last)
	}
	if n := len(env.Registrations(t)); n != 0 {
		t.Fatalf("bindings after stop = %d, want 0", n)
	}
}

// RFC 7009 on a refresh token revokes its grant: the refresh token and the
// family's access tokens stop working.
func TestRevokeRefreshToken(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	revoke(t, env, env.Info.EdgeHTTPS, tok.RefreshToken)
	_, err = ph.Refresh(ctx)
	expectOAuthError(t, "refresh after revocation", err, 400, "invalid_grant", "")
	expectRefusal(t, ph, "access token of a revoked grant", "Bearer "+tok.AccessToken, 401, "invalid_token")
	// Revoking an unknown token is still 200 (RFC 7009 §2.2).
	revoke(t, env, env.Info.EdgeHTTPS, "ewr_unknown")
}
