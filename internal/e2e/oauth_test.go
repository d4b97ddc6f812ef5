package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
)

func tokenError(t *testing.T, err error) *bench.TokenError {
	t.Helper()
	var te *bench.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("want an OAuth error response, got %v", err)
	}
	return te
}

func expectOAuthError(t *testing.T, what string, err error, status int, code, descPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %s", what, code)
	}
	te := tokenError(t, err)
	if te.Status != status || te.Code != code || !contains(te.Description, descPart) {
		t.Fatalf("%s: got HTTP %d %s %q, want HTTP %d %s containing %q", what, te.Status, te.Code, te.Description, status, code, descPart)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// S-17 and the activation rules: used, expired, revoked and wrong-device
// codes each fail with their own RFC 6749 §5.2 error.
func TestActivationCodeRefusals(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	env := testenv.Start(t, testenv.Options{CoreOptions: []core.Option{core.WithClock(clk.Now)}})
	ctx := context.Background()
	phA, phB := env.Phone(phoneA, true), env.Phone(phoneB, true)
	codeA, codeB := env.Devices[phoneA].ActivationCode, env.Devices[phoneB].ActivationCode

	_, err := phB.Onboard(ctx, codeA)
	expectOAuthError(t, "A's code for device B", err, 400, "invalid_grant", "not valid for device "+phoneB)
	if _, err := phA.Onboard(ctx, codeA); err != nil {
		t.Fatalf("A's code for A after a wrong-device attempt: %v", err)
	}
	_, err = phA.Onboard(ctx, codeA)
	expectOAuthError(t, "used code", err, 400, "invalid_grant", "already been used")

	// Revoke B's code through the admin API.
	code, body := env.Admin(t, http.MethodGet, "/api/v1/activation?device="+phoneB, nil)
	if code != 200 {
		t.Fatalf("list codes: %d %s", code, body)
	}
	var id string
	for _, c := range decode[[]core.CodeView](t, body) {
		if c.State == "valid" {
			id = c.ID
		}
	}
	if code, body := env.Admin(t, http.MethodDelete, "/api/v1/activation/"+id, nil); code != 204 {
		t.Fatalf("revoke code: %d %s", code, body)
	}
	if code, _ := env.Admin(t, http.MethodDelete, "/api/v1/activation/no-such-id", nil); code != 404 {
		t.Fatalf("revoking an unknown code: HTTP %d, want 404", code)
	}
	if code, _ := env.Admin(t, http.MethodPost, "/api/v1/activation/bulk", map[string][]string{"devices": {phoneA, phoneA}}); code != 400 {
		t.Fatalf("bulk issue naming a device twice: HTTP %d, want 400", code)
	}
	_, err = phB.Onboard(ctx, codeB)
	expectOAuthError(t, "revoked code", err, 400, "invalid_grant", "revoked")

	// A fresh code for B, then time passes beyond 168 h.
	code, body = env.Admin(t, http.MethodPost, "/api/v1/activation", map[string]string{"device": phoneB})
	if code != 201 {
		t.Fatalf("issue: %d %s", code, body)
	}
	fresh := decode[core.IssuedCode](t, body)
	clk.Advance(169 * time.Hour)
	_, err = phB.Onboard(ctx, fresh.ActivationCode)
	expectOAuthError(t, "expired code", err, 400, "invalid_grant", "expired")
}

// Exactly one of 100 concurrent redemptions of one code succeeds, through
// the edge, and a burst of wrong guesses is throttled.
func TestActivationRaceAndThrottle(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	const n = 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, failed := 0, map[string]int{}
	phones := make([]*bench.Phone, n)
	for i := range phones {
		phones[i] = env.Phone(phoneA, true)
	}
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(p *bench.Phone) {
			defer wg.Done()
			<-start
			_, err := p.Onboard(ctx, env.Devices[phoneA].ActivationCode)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
				return
			}
			var te *bench.TokenError
			if errors.As(err, &te) {
				failed[te.Code]++
			} else {
				failed[err.Error()]++
			}
		}(phones[i])
	}
	close(start)
	wg.Wait()
	if ok != 1 {
		t.Fatalf("successful redemptions = %d, want exactly 1 (failures %v)", ok, failed)
	}
	if failed["invalid_grant"]+failed["slow_down"] != n-1 {
		t.Fatalf("failures %v, want %d invalid_grant/slow_down", failed, n-1)
	}

	// A burst of wrong guesses for B from one address: after a few the
	// source is locked and told when to come back.
	phB := env.Phone(phoneB, true)
	var throttled *bench.TokenError
	for i := 0; i < 20 && throttled == nil; i++ {
		_, err := phB.Onboard(ctx, "0000-0000-0000-000"+string(rune('0'+i%10)))
		if te := tokenError(t, err); te.Status == http.StatusTooManyRequests {
			throttled = te
		}
	}
	if throttled == nil || throttled.Code != "slow_down" {
		t.Fatalf("20 wrong guesses were never throttled")
	}
	// While locked, even the right code is refused from this source.
	_, err := phB.Onboard(ctx, env.Devices[phoneB].ActivationCode)
	expectOAuthError(t, "right code while locked", err, http.StatusTooManyRequests, "slow_down", "")
}

// S-18: the password grant is refused through the edge and works on
// premises; the on-prem soft client registers on the Phone OAuth port.
func TestPasswordGrantOnlyOnPremises(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	user := env.Users[0]
	viaEdge := env.Phone(csf, true)
	_, err := viaEdge.Login(ctx, user.Username, user.Password)
	expectOAuthError(t, "password grant through the edge", err, 400, "unauthorized_client", "S-18")

	onPrem := env.Phone(csf, false)
	_, err = onPrem.Login(ctx, user.Username, "wrong-password")
	expectOAuthError(t, "wrong password", err, 400, "invalid_grant", "invalid username or password")
	tok, err := onPrem.Login(ctx, user.Username, user.Password)
	if err != nil {
		t.Fatalf("password grant on premises: %v", err)
	}
	if res, err := onPrem.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("CSF register on 5090: %v %v", res, err)
	}
	regs := env.Registrations(t)
	if len(regs) != 1 || regs[0].MRA || len(regs[0].Path) != 0 || regs[0].Device != csf {
		t.Fatalf("on-prem binding = %+v, want one non-MRA binding without Path", regs)
	}
	_ = tok

	// Wrong passwords are throttled per source and username.
	var locked *bench.TokenError
	for i := 0; i < 10 && locked == nil; i++ {
		_, err := onPrem.Login(ctx, user.Username, fmt.Sprintf("guess-%d", i))
		if te := tokenError(t, err); te.Status == http.StatusTooManyRequests {
			locked = te
		}
	}
	if locked == nil || locked.Code != "slow_down" {
		t.Fatal("10 wrong passwords were never throttled")
	}

	// S-17: a device that does not allow activation via MRA cannot redeem
	// its code through the edge.
	_, err = viaEdge.Onboard(ctx, env.Devices[csf].ActivationCode)
	expectOAuthError(t, "activation via MRA for a non-MRA device", err, 400, "unauthorized_client", "S-17")
}

// RFC 9700 §4.14.2: replaying a rotated refresh token revokes the family,
// so the newest refresh token and the family's access tokens stop working.
func TestRefreshReplayRevokesFamily(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	t1, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := ph.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register with refreshed token: %v %v", res, err)
	}
	// An attacker replays the first refresh token from elsewhere (from the
	// phone's own address within the refresh grace it would be taken for a
	// lost response: refresh_grace_test.go).
	attacker := phoneAt(t, env, phoneA, true, "127.0.0.9")
	attacker.SetTokens(t1)
	_, err = attacker.Refresh(ctx)
	expectOAuthError(t, "replayed refresh token", err, 400, "invalid_grant", "already used")
	// The legitimate newest refresh token is now dead too.
	ph.SetTokens(t2)
	_, err = ph.Refresh(ctx)
	expectOAuthError(t, "newest refresh token after replay", err, 400, "invalid_grant", "revoked")
	// And so is the family's access token.
	expectRefusal(t, ph, "access token of a revoked family", "Bearer "+t2.AccessToken, 401, "invalid_token")
}

// after a key rotation tokens signed with the old key keep working
// until they expire, new tokens use the new key, the JWKS lists both.
func TestSigningKeyRotation(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	old, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := env.Admin(t, http.MethodPost, "/api/v1/keys/rotate", nil); code != 200 {
		t.Fatalf("rotate: %d %s", code, body)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("old-key token after rotation: %v %v", res, err)
	}
	fresh, err := ph.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kid(t, fresh.AccessToken) == kid(t, old.AccessToken) {
		t.Fatal("refreshed token still signed with the old key")
	}
	// The edge has never seen the new kid: it refetches the JWKS.
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("new-key token through the edge: %v %v", res, err)
	}
	// R-1 regeneration: tokens signed by the previous keys stop working now.
	if code, body := env.Admin(t, http.MethodPost, "/api/v1/keys/rotate?regen=true", nil); code != 200 {
		t.Fatalf("regen: %d %s", code, body)
	}
	expectRefusal(t, ph, "token of a regenerated-away key", "Bearer "+fresh.AccessToken, 401, "invalid_token")
}

// The admin API refuses callers without the admin token and audits changes.
func TestAdminAPIRequiresToken(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	for _, tok := range []string{"", "Bearer wrong", "Basic YWRtaW46YWRtaW4="} {
		req, _ := http.NewRequest(http.MethodGet, env.Info.CoreHTTPS+"/api/v1/registrations", nil)
		if tok != "" {
			req.Header.Set("Authorization", tok)
		}
		resp, err := env.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("admin API with %q: HTTP %d, want 401", tok, resp.StatusCode)
		}
	}
	if code, _ := env.Admin(t, http.MethodPost, "/api/v1/activation", map[string]string{"device": phoneA}); code != 201 {
		t.Fatalf("issue: %d", code)
	}
	entries, err := env.Store.ListAudit(context.Background(), 10)
	if err != nil || len(entries) == 0 || entries[0].Action != "activation.issue" {
		t.Fatalf("audit log = %+v, %v; want the issue recorded", entries, err)
	}
}
