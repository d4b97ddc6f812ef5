package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
)

// S-9: with "OAuth Access Token for Devices" = explicit, only tokens that
// came from an activation code may register; implicit accepts the others.
func TestExplicitModeRefusesNonActivationTokens(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	csfPhone := env.Phone(csf, false)
	if _, err := csfPhone.Login(ctx, env.Users[0].Username, env.Users[0].Password); err != nil {
		t.Fatal(err)
	}
	mra := env.Phone(phoneA, true)
	if _, err := mra.Onboard(ctx, env.Devices[phoneA].ActivationCode); err != nil {
		t.Fatal(err)
	}
	if res, err := csfPhone.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("implicit: password-grant token refused: %v %v", res, err)
	}
	if code, body := env.Admin(t, http.MethodPut, "/api/v1/params/"+core.ParamAccessTokenForDevices, map[string]string{"value": "explicit"}); code != 200 {
		t.Fatalf("set explicit: %d %s", code, body)
	}
	res, err := csfPhone.Register(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 403 || !contains(res.GetHeader("Warning").Value(), "S-9") {
		t.Fatalf("explicit: password-grant token: %d %v, want 403 naming S-9", res.StatusCode, res.GetHeader("Warning"))
	}
	// A refreshed activation-code token is still an activation-code token.
	if _, err := mra.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := mra.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("explicit: activation-code token (refreshed) refused: %v %v", res, err)
	}
}

// S-17 and S-12: activation through the edge needs the device's service
// domain, and an Expressway-C entry with extra domains must list it.
func TestActivationServiceDomain(t *testing.T) {
	env := testenv.Start(t, testenv.Options{BeforeStart: func(ctx context.Context, e *testenv.Env) error {
		d, err := e.Store.GetDevice(ctx, phoneB)
		if err != nil {
			return err
		}
		d.MRAServiceDomain = "other.example"
		return e.Store.PutDevice(ctx, d)
	}})
	ctx := context.Background()
	_, err := env.Phone(phoneB, true).Onboard(ctx, env.Devices[phoneB].ActivationCode)
	expectOAuthError(t, "activation in the wrong service domain", err, 400, "unauthorized_client", "S-17")

	// The edge's entry now serves only another domain.
	if code, body := env.Admin(t, http.MethodPut, "/api/v1/expressway/1", core.ExpresswayEntryView{
		Address: "127.0.0.1", Names: []string{"expc.edgeway.test"}, Domains: []string{"corp.example"}}); code != 200 {
		t.Fatalf("edit entry: %d %s", code, body)
	}
	_, err = env.Phone(phoneA, true).Onboard(ctx, env.Devices[phoneA].ActivationCode)
	expectOAuthError(t, "activation through an edge not serving the domain", err, 400, "unauthorized_client", "S-12")
	if code, body := env.Admin(t, http.MethodPut, "/api/v1/expressway/1", core.ExpresswayEntryView{
		Address: "127.0.0.1", Names: []string{"expc.edgeway.test"}, Domains: []string{"corp.example", "edgeway.test"}}); code != 200 {
		t.Fatalf("edit entry: %d %s", code, body)
	}
	// The code survived the refusals (they came before redemption).
	if _, err := env.Phone(phoneA, true).Onboard(ctx, env.Devices[phoneA].ActivationCode); err != nil {
		t.Fatalf("activation once the domain is added: %v", err)
	}
}

// S-15/S-16: changing a device's profile to one without OAuth stops its
// OAuth registrations; a reset drops its binding so it must re-register.
func TestProfileChangeAndReset(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	if _, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode); err != nil {
		t.Fatal(err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	if code, body := env.Admin(t, http.MethodPost, "/api/v1/devices/"+phoneA+"/reset", nil); code != 200 {
		t.Fatalf("reset: %d %s", code, body)
	}
	if n := len(env.Registrations(t)); n != 0 {
		t.Fatalf("bindings after reset = %d, want 0 (S-15: a reset phone must re-register)", n)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("re-register after reset: %v %v", res, err)
	}
	// Move the device to an authenticated (not encrypted) profile: the
	// device set is refused for an S-5 phone only if the profile has OAuth;
	// this one has none, so the phone may no longer use OAuth (S-15).
	if code, body := env.Admin(t, http.MethodPut, "/api/v1/profiles/Authenticated", core.ProfileView{Mode: "authenticated", Transport: "TLS"}); code != 200 {
		t.Fatalf("profile: %d %s", code, body)
	}
	d := env.Devices[phoneA]
	if code, body := env.Admin(t, http.MethodPut, "/api/v1/devices/"+phoneA, core.DeviceView{Model: d.Model, Line: d.Line,
		SecurityProfile: "Authenticated", AllowMRA: true, MRAServiceDomain: d.Domain}); code != 200 {
		t.Fatalf("device set: %d %s", code, body)
	}
	res, err := ph.Register(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 403 || !contains(res.GetHeader("Warning").Value(), "S-15") {
		t.Fatalf("register with a non-OAuth profile: %d, want 403 naming S-15", res.StatusCode)
	}
}
