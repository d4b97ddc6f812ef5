package webui_test

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/internal/testenv"
)

const (
	phoneJS = "SEP001122334401" // owned by jsmith in these tests
	phoneMJ = "SEP001122334402" // owned by mjones
)

// ownPhone makes user the owner of device through the admin API, then
// onboards a phone for it with its activation code (through the edge, S-17)
// and registers it.
func ownPhone(t *testing.T, env *testenv.Env, device, user string) *bench.Phone {
	t.Helper()
	code, b := env.Admin(t, http.MethodGet, "/api/v1/devices/"+device, nil)
	var d admin.DeviceView
	if code != 200 || json.Unmarshal(b, &d) != nil {
		t.Fatalf("device %s: HTTP %d %s", device, code, b)
	}
	d.Owner = user
	if code, b := env.Admin(t, http.MethodPut, "/api/v1/devices/"+device, d); code < 200 || code > 299 {
		t.Fatalf("owner of %s: HTTP %d %s", device, code, b)
	}
	ph := env.Phone(device, true)
	ctx := context.Background()
	if _, err := ph.Onboard(ctx, env.Devices[device].ActivationCode); err != nil {
		t.Fatalf("onboarding %s: %v", device, err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("%s register: %v %v", device, res, err)
	}
	return ph
}

func familiesOf(t *testing.T, env *testenv.Env, user string) []admin.FamilyView {
	t.Helper()
	code, b := env.Admin(t, http.MethodGet, "/api/v1/users/"+user+"/families", nil)
	var uf admin.UserFamilies
	if code != 200 || json.Unmarshal(b, &uf) != nil {
		t.Fatalf("families of %s: HTTP %d %s", user, code, b)
	}
	return uf.Families
}

// refreshRefused says whether the phone's refresh is refused with
// invalid_grant (RFC 6749 §5.2), as for a revoked family.
func refreshRefused(t *testing.T, ph *bench.Phone) bool {
	t.Helper()
	_, err := ph.Refresh(context.Background())
	if err == nil {
		return false
	}
	var te *bench.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("refresh: %v, want an OAuth answer", err)
	}
	return te.Status == 400 && te.Code == "invalid_grant"
}

// R-2 through the page: Find shows the user's families (device, origin,
// MRA, started, expires, state); "Revoke all of this user's refresh
// tokens" revokes them through the API, audited, and the user's phone
// can no longer refresh or register with its access token, while another
// user's phone keeps working until its own family's Revoke button.
func TestUsersPageRevokesAUsersRefreshTokens(t *testing.T) {
	u := startUI(t, testenv.Options{})
	phJS, phMJ := ownPhone(t, u.env, phoneJS, "jsmith"), ownPhone(t, u.env, phoneMJ, "mjones")
	accessJS := phJS.Tokens().AccessToken
	home := u.login(account, password)

	p := u.get("/ui/users?user=jsmith")
	if p.status != 200 || !strings.Contains(p.body, "R-2: ") || !strings.Contains(p.body, `href="/ui/users" aria-current="page">Refresh tokens</a>`) {
		t.Fatalf("users page: HTTP %d, without its rule or menu entry:\n%s", p.status, p.body)
	}
	fams := familiesOf(t, u.env, "jsmith")
	if len(fams) != 1 {
		t.Fatalf("jsmith's families through the API: %+v", fams)
	}
	f := fams[0]
	row := `<td class="wrap">` + f.ID + `</td><td>` + phoneJS + `</td><td>activation_code</td><td>yes</td>`
	if !strings.Contains(p.body, row) || !strings.Contains(p.body, `<td>active</td>`) || !strings.Contains(p.body, `id="revoke-`+f.ID+`"`) || !strings.Contains(p.body, `id="revoke-all"`) {
		t.Fatalf("the page does not show jsmith's family as the API does (%+v):\n%s", f, p.body)
	}
	if p := u.get("/ui/users?user=nobody"); !strings.Contains(p.body, "nobody has no refresh-token family") {
		t.Errorf("a user without families: the page does not say so:\n%s", p.body)
	}

	// Without the CSRF token: 403, nothing revoked.
	if p := u.post("/ui/users/revoke", url.Values{"user": {"jsmith"}}); p.status != http.StatusForbidden {
		t.Errorf("revoke all without CSRF: HTTP %d, want 403", p.status)
	}
	if p := u.post("/ui/users/families/"+f.ID+"/revoke", url.Values{"user": {"jsmith"}, "csrf": {strings.Repeat("0", 64)}}); p.status != http.StatusForbidden {
		t.Errorf("revoke one with a wrong CSRF token: HTTP %d, want 403", p.status)
	}
	if got := familiesOf(t, u.env, "jsmith"); got[0].State != "active" {
		t.Fatalf("forms without a valid CSRF token revoked the family: %+v", got[0])
	}
	// No user: the page refuses, naming R-2; an unknown family: the API's 404.
	tok := csrf(t, home)
	if p := u.post("/ui/users/revoke", url.Values{"csrf": {tok}, "user": {"  "}}); p.status != http.StatusBadRequest ||
		!strings.Contains(p.body, `<p id="users-error" class="error" role="alert">R-2: `) || !strings.Contains(p.body, `aria-describedby="users-error"`) {
		t.Errorf("revoke all without a user: HTTP %d, want 400 naming R-2:\n%s", p.status, p.body)
	}
	code, b := u.env.Admin(t, http.MethodDelete, "/api/v1/families/no-such-family", nil)
	var apiErr struct{ Error string }
	if err := json.Unmarshal(b, &apiErr); err != nil || code != http.StatusNotFound {
		t.Fatalf("API revoke of an unknown family: HTTP %d %s", code, b)
	}
	if p := u.post("/ui/users/families/no-such-family/revoke", url.Values{"csrf": {tok}, "user": {"jsmith"}}); p.status != code ||
		!strings.Contains(p.body, html.EscapeString(apiErr.Error)) {
		t.Errorf("revoking an unknown family: HTTP %d (API %d), page lacks %q", p.status, code, apiErr.Error)
	}

	// Revoke all of jsmith's refresh tokens.
	p = u.post("/ui/users/revoke", url.Values{"csrf": {tok}, "user": {"jsmith"}})
	if p.status != 200 || p.url.Path != "/ui/users" || p.url.Query().Get("user") != "jsmith" ||
		!strings.Contains(p.body, "R-2: revoked 1 refresh-token family of jsmith") || !strings.Contains(p.body, `<td>revoked `) {
		t.Fatalf("revoke all: HTTP %d at %s:\n%s", p.status, p.url, p.body)
	}
	if got := familiesOf(t, u.env, "jsmith"); got[0].State != "revoked" {
		t.Errorf("after the page's revoke the API shows %+v", got[0])
	}
	if !auditHas(t, u.env, "user.families-revoke", account+" (token", f.ID) {
		t.Errorf("the revoke is not audited by %s as the API audits it", account)
	}
	if !refreshRefused(t, phJS) {
		t.Errorf("jsmith's phone still refreshes after the revoke through the page")
	}
	if res, err := phJS.RegisterWith(context.Background(), "Bearer "+accessJS, 600); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("jsmith's phone registering with its old access token: %v %v, want 401", res, err)
	}
	// Again: the API's clear answer, nothing to revoke.
	if p := u.post("/ui/users/revoke", url.Values{"csrf": {tok}, "user": {"jsmith"}}); !strings.Contains(p.body, "jsmith has no live refresh-token family: nothing was revoked") {
		t.Errorf("revoking again does not say nothing was revoked:\n%s", p.body)
	}

	// mjones's phone is untouched, until his family's own Revoke button.
	if refreshRefused(t, phMJ) {
		t.Fatalf("another user's phone was cut off by jsmith's revocation")
	}
	mj := familiesOf(t, u.env, "mjones")
	if len(mj) != 1 {
		t.Fatalf("mjones's families: %+v", mj)
	}
	p = u.post("/ui/users/families/"+mj[0].ID+"/revoke", url.Values{"csrf": {tok}, "user": {"mjones"}})
	if p.status != 200 || p.url.Query().Get("user") != "mjones" || !strings.Contains(p.body, "family "+mj[0].ID+" revoked") {
		t.Fatalf("revoking one family: HTTP %d at %s:\n%s", p.status, p.url, p.body)
	}
	if !auditHas(t, u.env, "family.revoke", account+" (token", mj[0].ID) {
		t.Errorf("the family's revoke is not audited")
	}
	if !refreshRefused(t, phMJ) {
		t.Errorf("mjones's phone still refreshes after its family was revoked through the page")
	}
}
