package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/internal/token"
)

// The device authorization grant (RFC 8628, issue 15) through a real edge
// and core, on a test clock: the phone's waits advance it.

var userCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

func deviceGrantEnv(t *testing.T) (*testenv.Env, *testenv.Clock) {
	t.Helper()
	clk := testenv.NewClock(time.Now())
	return testenv.Start(t, testenv.Options{CoreOptions: []core.Option{core.WithClock(clk.Now)}}), clk
}

// tokenErr is the RFC 6749 §5.2 error code of err ("" if none).
func tokenErr(t *testing.T, err error) *bench.TokenError {
	t.Helper()
	var te *bench.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("want a token endpoint error, got %v", err)
	}
	return te
}

func expectPoll(t *testing.T, ph *bench.Phone, deviceCode, code, inDescription string) {
	t.Helper()
	_, err := ph.PollDeviceTokenOnce(context.Background(), deviceCode)
	if err == nil {
		t.Fatalf("poll: tokens issued, want %s", code)
	}
	te := tokenErr(t, err)
	if te.Status != http.StatusBadRequest || te.Code != code || !strings.Contains(te.Description, inDescription) {
		t.Fatalf("poll: %v, want 400 %s naming %q", err, code, inDescription)
	}
}

func decide(t *testing.T, env *testenv.Env, userCode, verb string, want int) oauth.DeviceCodeView {
	t.Helper()
	code, b := env.Admin(t, http.MethodPost, "/api/v1/device-codes/"+url.PathEscape(userCode)+"/"+verb, nil)
	if code != want {
		t.Fatalf("%s %s: HTTP %d %s, want %d", verb, userCode, code, b, want)
	}
	var v oauth.DeviceCodeView
	_ = json.Unmarshal(b, &v)
	return v
}

// The whole flow: device_authorization through the edge, pending, too
// fast, approved through the admin API (audited), tokens once (with the
// edge's TURN credentials), REGISTER (also with S-9 explicit), a second
// redemption refused.
func TestDeviceGrantFlow(t *testing.T) {
	env, clk := deviceGrantEnv(t)
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	da, err := ph.DeviceAuthorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !userCodeRE.MatchString(da.UserCode) || !strings.HasPrefix(da.DeviceCode, "ewd_") || len(da.DeviceCode) < 40 {
		t.Fatalf("device authorization %+v: want an XXXX-XXXX user_code and a high-entropy device_code", da)
	}
	if da.ExpiresIn != 600 || da.Interval != 5 || !strings.HasSuffix(da.VerificationURI, "/ui/device") ||
		da.VerificationURIComplete != da.VerificationURI+"?user_code="+da.UserCode {
		t.Fatalf("device authorization %+v: want expires_in 600, interval 5, the /ui/device page with the user_code", da)
	}
	// Only the device_code's hash is stored, as for activation codes.
	row, err := env.Store.(store.DeviceCodeStore).DeviceCodeByUserCode(ctx, strings.ReplaceAll(da.UserCode, "-", ""))
	if sum := sha256.Sum256([]byte(da.DeviceCode)); err != nil || !bytes.Equal(row.Hash, sum[:]) {
		t.Fatalf("stored device code %+v (%v): want the SHA-256 of the device_code only", row, err)
	}
	code, b := env.Admin(t, http.MethodGet, "/api/v1/device-codes", nil)
	var pending []oauth.DeviceCodeView
	if code != 200 || json.Unmarshal(b, &pending) != nil || len(pending) != 1 || pending[0].UserCode != da.UserCode ||
		pending[0].Device != phoneA || !pending[0].MRA || pending[0].Edge == "" || pending[0].Status != "pending" {
		t.Fatalf("pending device codes: HTTP %d %s", code, b)
	}
	if strings.Contains(string(b), da.DeviceCode) {
		t.Fatal("the admin API shows the device_code")
	}

	clk.Advance(5 * time.Second)
	expectPoll(t, ph, da.DeviceCode, "authorization_pending", "RFC 8628 §3.5")
	expectPoll(t, ph, da.DeviceCode, "slow_down", "RFC 8628 §3.5") // at once: too fast
	clk.Advance(5 * time.Second)                                   // the interval is 10 s now
	expectPoll(t, ph, da.DeviceCode, "slow_down", "15 s")

	v := decide(t, env, strings.ToLower(da.UserCode), "approve", http.StatusOK) // typed in lower case
	if v.Status != "approved" || v.Device != phoneA || v.DecidedBy == "" {
		t.Fatalf("approved: %+v", v)
	}
	if entries, _ := env.Store.ListAudit(ctx, 1); len(entries) == 0 || entries[0].Action != "device_code.approve" || !strings.Contains(entries[0].Detail, phoneA) {
		t.Fatalf("newest audit entry %+v, want device_code.approve for %s", entries, phoneA)
	}
	decide(t, env, da.UserCode, "deny", http.StatusConflict) // decided once

	var waited []time.Duration
	tok, err := ph.PollDeviceToken(ctx, bench.DeviceAuthorization{DeviceCode: da.DeviceCode, Interval: 15}, func(_ context.Context, d time.Duration) error {
		waited = append(waited, d)
		clk.Advance(d)
		return nil
	})
	if err != nil {
		t.Fatalf("poll after approval: %v", err)
	}
	if len(waited) != 1 || waited[0] != 15*time.Second {
		t.Errorf("the phone waited %v, want one interval of 15 s", waited)
	}
	if tok.RefreshToken == "" || tok.TURN == nil || tok.TURN.Username == "" {
		t.Fatalf("tokens %+v: want a refresh token and the edge's TURN credentials", tok)
	}
	var c token.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, &c); err != nil || c.Origin != token.GrantDeviceCode || c.Subject != phoneA || !c.MRA || c.Family == "" {
		t.Fatalf("access token claims %+v (%v): want origin device_code, the device, MRA, a family", c, err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER with the device grant's token: %v %v", res, err)
	}
	// S-9 explicit admits the device grant: an explicit onboarding.
	if code, body := env.Admin(t, http.MethodPut, "/api/v1/params/"+core.ParamAccessTokenForDevices, map[string]string{"value": "explicit"}); code != 200 {
		t.Fatalf("set explicit: %d %s", code, body)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER under S-9 explicit with the device grant's token: %v %v", res, err)
	}
	if _, err := ph.Refresh(ctx); err != nil {
		t.Fatalf("refresh of the device grant's family: %v", err)
	}
	clk.Advance(20 * time.Second)
	expectPoll(t, ph, da.DeviceCode, "invalid_grant", "already been redeemed")
}

func TestDeviceGrantDeniedExpiredAndOthers(t *testing.T) {
	env, clk := deviceGrantEnv(t)
	ctx := context.Background()
	ph := env.Phone(phoneA, true)

	// Denied: access_denied.
	denied, err := ph.DeviceAuthorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := decide(t, env, denied.UserCode, "deny", http.StatusOK); v.Status != "denied" {
		t.Fatalf("denied: %+v", v)
	}
	if entries, _ := env.Store.ListAudit(ctx, 1); len(entries) == 0 || entries[0].Action != "device_code.deny" {
		t.Fatalf("newest audit entry %+v, want device_code.deny", entries)
	}
	clk.Advance(5 * time.Second)
	expectPoll(t, ph, denied.DeviceCode, "access_denied", "denied")
	_, err = ph.PollDeviceToken(ctx, denied, func(_ context.Context, d time.Duration) error { clk.Advance(d); return nil })
	if te := tokenErr(t, err); te.Code != "access_denied" {
		t.Fatalf("PollDeviceToken after a denial: %v, want access_denied", err)
	}

	// Another device's phone polls with this device's code: invalid_grant.
	da, err := ph.DeviceAuthorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := env.Phone(phoneB, true)
	clk.Advance(5 * time.Second)
	expectPoll(t, other, da.DeviceCode, "invalid_grant", "RFC 6749 §5.2")
	// A guessed device_code.
	expectPoll(t, ph, "ewd_"+strings.Repeat("A", 43), "invalid_grant", "not valid")

	// Expired: expired_token, and the admin can no longer approve it.
	clk.Advance(601 * time.Second)
	expectPoll(t, ph, da.DeviceCode, "expired_token", "RFC 8628 §3.5")
	decide(t, env, da.UserCode, "approve", http.StatusGone)
	if code, b := env.Admin(t, http.MethodGet, "/api/v1/device-codes", nil); code != 200 || strings.Contains(string(b), da.UserCode) {
		t.Fatalf("pending list after expiry: %d %s", code, b)
	}
}

// S-17 through the edge: a device that does not allow onboarding via MRA
// is refused at device_authorization, as for an activation code; an
// unknown device too (RFC 8628 §3.2).
func TestDeviceGrantS17(t *testing.T) {
	env, _ := deviceGrantEnv(t)
	ctx := context.Background()
	_, err := env.Phone("CSFDEMO", true).DeviceAuthorize(ctx)
	if te := tokenErr(t, err); te.Status != 400 || te.Code != "unauthorized_client" || !strings.Contains(te.Description, "S-17") {
		t.Fatalf("device_authorization for a device without Allow Activation Code via MRA: %v, want unauthorized_client naming S-17", err)
	}
	// Wrong service domain: S-17 too.
	d := env.Devices[phoneA]
	wrong, err := bench.NewPhone(bench.PhoneConfig{Device: d.Name, Line: d.Line, Domain: "elsewhere.test", RootCAs: env.CA,
		EdgeHTTPS: env.Info.EdgeHTTPS, EdgeSIP: env.Info.EdgeSIP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wrong.Close)
	_, err = wrong.DeviceAuthorize(ctx)
	if te := tokenErr(t, err); te.Code != "unauthorized_client" || !strings.Contains(te.Description, "S-17") {
		t.Fatalf("device_authorization in the wrong service domain: %v, want unauthorized_client naming S-17", err)
	}
	ghost, err := bench.NewPhone(bench.PhoneConfig{Device: "SEP00000000FFFF", Line: "1999", Domain: d.Domain, RootCAs: env.CA,
		EdgeHTTPS: env.Info.EdgeHTTPS, EdgeSIP: env.Info.EdgeSIP})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ghost.Close)
	_, err = ghost.DeviceAuthorize(ctx)
	if te := tokenErr(t, err); te.Code != "invalid_client" || !strings.Contains(te.Description, "not provisioned") {
		t.Fatalf("device_authorization for an unknown device: %v, want invalid_client", err)
	}
	// No pending request was made by any of them.
	if code, b := env.Admin(t, http.MethodGet, "/api/v1/device-codes", nil); code != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Fatalf("pending after refusals: %d %s", code, b)
	}
}

// A guessed user_code is refused (404), and after a few wrong guesses from
// one address every user_code is refused for a while (429, RFC 8628
// §5.1), the right one too; the lock passes with time.
func TestDeviceGrantUserCodeGuessing(t *testing.T) {
	env, clk := deviceGrantEnv(t)
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	da, err := ph.DeviceAuthorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wrong := 0
	locked := false
	for i := range 20 {
		guess := []string{"BBBB-BBBB", "AAAA-AAAA", "x", "BCDF-GHJK"}[i%4]
		code, b := env.Admin(t, http.MethodPost, "/api/v1/device-codes/"+guess+"/approve", nil)
		if code == http.StatusTooManyRequests {
			if !strings.Contains(string(b), "RFC 8628 §5.1") {
				t.Fatalf("throttled guess: %s, want it to name RFC 8628 §5.1", b)
			}
			locked = true
			break
		}
		if code != http.StatusNotFound {
			t.Fatalf("guess %s: HTTP %d %s, want 404", guess, code, b)
		}
		wrong++
	}
	if !locked || wrong < 3 {
		t.Fatalf("after %d wrong user_codes: locked=%v, want a 429 after a few", wrong, locked)
	}
	decide(t, env, da.UserCode, "approve", http.StatusTooManyRequests) // the right one too, while locked
	clk.Advance(2 * time.Minute)                                       // the lock has passed; the code (600 s) has not
	decide(t, env, da.UserCode, "approve", http.StatusOK)
	clk.Advance(5 * time.Second)
	if _, err := ph.PollDeviceTokenOnce(ctx, da.DeviceCode); err != nil {
		t.Fatalf("poll after approval: %v", err)
	}
}

// The device grant binds tokens as an activation code does (RFC 8705): a
// phone polling with its client certificate gets a token bound to it; once
// its profile requires binding, a poll without a certificate is refused
// (invalid_request naming RFC 8705) and the code is not spent.
func TestDeviceGrantBoundToCertificate(t *testing.T) {
	env, clk := deviceGrantEnv(t)
	ctx := context.Background()
	cert := deviceCert(t, phoneCA(t), phoneA)
	ph := certPhone(t, env, phoneA, cert)
	da, err := ph.DeviceAuthorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	decide(t, env, da.UserCode, "approve", http.StatusOK)
	clk.Advance(5 * time.Second)
	tok, err := ph.PollDeviceTokenOnce(ctx, da.DeviceCode)
	if err != nil {
		t.Fatalf("poll with a certificate after approval: %v", err)
	}
	if got, want := cnfOf(t, tok.AccessToken), x5tS256(cert); got != want {
		t.Fatalf("device-grant token cnf.x5t#S256 = %q, want the phone certificate's %q", got, want)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("REGISTER with the bound device-grant token: %v %v", res, err)
	}

	profile := core.ProfileView{Mode: "encrypted", Transport: "TLS", OAuth: true, RequireBoundTokens: true}
	if code, body := env.Admin(t, http.MethodPut, "/api/v1/profiles/"+url.PathEscape(quickstart.ProfileName), profile); code != http.StatusOK {
		t.Fatalf("profile set: %d %s", code, body)
	}
	bare := env.Phone(phoneB, true)
	db, err := bare.DeviceAuthorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	decide(t, env, db.UserCode, "approve", http.StatusOK)
	clk.Advance(5 * time.Second)
	expectPoll(t, bare, db.DeviceCode, "invalid_request", "RFC 8705")
	clk.Advance(5 * time.Second)
	expectPoll(t, bare, db.DeviceCode, "invalid_request", "RFC 8705") // not spent: refused again, not invalid_grant
}
