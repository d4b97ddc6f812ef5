package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
)

// R-3 (Unified CM 15) through the edge, on the core's clock: a phone that
// refreshes before half of its refresh token's lifetime keeps the expiry
// (refresh_token_expires_in counts down), one that refreshes after half
// gets a full lifetime; a phone refreshing daily never has to be onboarded
// again; one that stops refreshing is refused at the expiry it was last
// given (RFC 6749 §5.2 invalid_grant). (Only the core's clock moves: the
// edge checks SIP tokens on its own, so registering is left out here.)
func TestRefreshRenewalThroughEdge(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	env := testenv.Start(t, testenv.Options{CoreOptions: []core.Option{core.WithClock(clk.Now)}})
	ctx := context.Background()
	life := env.Core.Config().RefreshTokenTTL
	full := int(life / time.Second)
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshExpiresIn != full {
		t.Fatalf("onboarding: refresh_token_expires_in %d, want the lifetime %d", tok.RefreshExpiresIn, full)
	}

	clk.Advance(life / 4)
	if tok, err = ph.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if want := full * 3 / 4; tok.RefreshExpiresIn != want {
		t.Fatalf("R-3: refresh at 0.25 of the lifetime: refresh_token_expires_in %d, want %d (the expiry kept)", tok.RefreshExpiresIn, want)
	}
	clk.Advance(life * 35 / 100) // 0.6
	if tok, err = ph.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if tok.RefreshExpiresIn != full {
		t.Fatalf("R-3: refresh at 0.6 of the lifetime: refresh_token_expires_in %d, want %d (renewed)", tok.RefreshExpiresIn, full)
	}

	// Daily use for two and a half lifetimes: never cut off.
	days := int(life/(24*time.Hour))*5/2 + 1
	for day := 1; day <= days; day++ {
		clk.Advance(24 * time.Hour)
		if tok, err = ph.Refresh(ctx); err != nil {
			t.Fatalf("R-3: daily refresh, day %d of %d: %v", day, days, err)
		}
		if tok.RefreshExpiresIn > full || tok.RefreshExpiresIn < full/2-int(24*time.Hour/time.Second) {
			t.Fatalf("day %d: refresh_token_expires_in %d outside [lifetime/2 - 1 day, lifetime]", day, tok.RefreshExpiresIn)
		}
	}

	// The phone goes quiet: at the expiry it was last given, refused.
	clk.Advance(time.Duration(tok.RefreshExpiresIn) * time.Second)
	_, err = ph.Refresh(ctx)
	expectOAuthError(t, "refresh at the refresh token's expiry", err, 400, "invalid_grant", "expired")
}
