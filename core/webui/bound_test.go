package webui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/testenv"
)

// Issue 15 (RFC 8705): the profiles page's "Require certificate-bound
// tokens" checkbox (with its label) reaches the profile through the API,
// shows in the table and the edit form, and the API's refusal of it
// without OAuth is shown as it is.
func TestProfileRequireBoundTokens(t *testing.T) {
	u := startUI(t, testenv.Options{Bare: true})
	u.login(account, password)
	p := u.get("/ui/profiles")
	for _, want := range []string{`<input type="checkbox" id="profile-require-bound-tokens" name="require_bound_tokens" value="on"`,
		`<label for="profile-require-bound-tokens">Require certificate-bound tokens</label>`, "RFC 8705"} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("the profiles form lacks %q", want)
		}
	}
	tok := csrf(t, p)
	const name = "Bound 8845"
	p = u.post("/ui/profiles", url.Values{"csrf": {tok}, "name": {name}, "device_type": {"8845"}, "mode": {"encrypted"}, "transport": {"TLS"},
		"oauth": {"on"}, "require_bound_tokens": {"on"}})
	if p.status != 200 || p.url.Path != "/ui/profiles" {
		t.Fatalf("adding a profile requiring bound tokens: HTTP %d at %s\n%s", p.status, p.url, p.body)
	}
	want := admin.ProfileView{Name: name, DeviceType: "8845", Mode: "encrypted", Transport: "TLS", OAuth: true, RequireBoundTokens: true}
	if got := profiles(t, u.env)[name]; got != want {
		t.Fatalf("after the form the API has %+v, want %+v", got, want)
	}
	if !strings.Contains(p.body, "<td>required</td>") {
		t.Errorf("the table does not show the profile requiring bound tokens")
	}
	p = u.get("/ui/profiles?edit=" + url.QueryEscape(name))
	if !strings.Contains(p.body, `id="profile-require-bound-tokens" name="require_bound_tokens" value="on" checked`) {
		t.Errorf("editing %q does not tick the checkbox", name)
	}
	// Unticked: saved as not required.
	p = u.post("/ui/profiles", url.Values{"csrf": {tok}, "name": {name}, "device_type": {"8845"}, "mode": {"encrypted"}, "transport": {"TLS"}, "oauth": {"on"}})
	if got := profiles(t, u.env)[name]; p.status != 200 || got.RequireBoundTokens {
		t.Fatalf("unticking: HTTP %d, API has %+v", p.status, got)
	}
	// Without OAuth: the API's refusal, shown on the page; nothing saved.
	code, msg := apiRefusal(t, u.env, http.MethodPut, "/api/v1/profiles/Bad", admin.ProfileView{Mode: "encrypted", Transport: "TLS", RequireBoundTokens: true})
	if msg != policy.ErrBoundTokensNeedOAuth.Error() {
		t.Fatalf("API refusal %d %q, want %q", code, msg, policy.ErrBoundTokensNeedOAuth)
	}
	p = u.post("/ui/profiles", url.Values{"csrf": {tok}, "name": {"Bad"}, "mode": {"encrypted"}, "transport": {"TLS"}, "require_bound_tokens": {"on"}})
	if p.status != code || !showsError(p, "profile-error", msg) {
		t.Errorf("bound tokens without OAuth: HTTP %d (API %d), page lacks %q", p.status, code, msg)
	}
	if _, ok := profiles(t, u.env)["Bad"]; ok {
		t.Errorf("a refused profile was saved")
	}
}
