package webui_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/internal/testenv"
)

// The System pages (S-7, S-9..S-11, S-13..S-16), each through its form:
// the change shows in the admin API and its audit log, a wrong input
// shows the API's own refusal and changes nothing, and a form without the
// CSRF token is refused.

// apiJSON reads an admin API answer with the bootstrap token into v.
func apiJSON(t *testing.T, env *testenv.Env, path string, v any) {
	t.Helper()
	code, b := env.Admin(t, http.MethodGet, path, nil)
	if code != 200 {
		t.Fatalf("GET %s: HTTP %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// apiRefusal is what the API answers to a change it refuses.
func apiRefusal(t *testing.T, env *testenv.Env, method, path string, body any) (int, string) {
	t.Helper()
	code, b := env.Admin(t, method, path, body)
	return code, refusalOf(t, code, b)
}

func params(t *testing.T, env *testenv.Env) map[string]admin.ParamView {
	t.Helper()
	var ps []admin.ParamView
	apiJSON(t, env, "/api/v1/params", &ps)
	out := map[string]admin.ParamView{}
	for _, p := range ps {
		out[p.Name] = p
	}
	return out
}

// showsError reports whether a page shows msg in the error paragraph id.
func showsError(p page, id, msg string) bool {
	return strings.Contains(p.body, `<p id="`+id+`" class="error" role="alert">`+html.EscapeString(msg)+`</p>`)
}

func TestEnterpriseParametersPage(t *testing.T) {
	u := startUI(t, testenv.Options{Bare: true})
	u.login(account, password)
	p := u.get("/ui/params")
	if p.status != 200 {
		t.Fatalf("GET /ui/params: HTTP %d", p.status)
	}
	// Every parameter the API lists is on the page, with its rule.
	before := params(t, u.env)
	for name := range before {
		if !strings.Contains(p.body, `id="param-`+name+`"`) {
			t.Errorf("the page does not show parameter %s", name)
		}
	}
	for _, want := range []string{"S-9", "S-10", "S-7", "S-13", "Implicit: already registered devices", "Explicit: activation code device onboarding required",
		`id="value-oauth_access_token_for_devices"`, `id="value-access_token_ttl" name="value" type="number"`, `id="unit-refresh_token_ttl"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Cluster SIPOAuth Mode is read-only (S-13): no form for it.
	if strings.Contains(p.body, `id="form-cluster_sipoauth_mode"`) {
		t.Errorf("the read-only Cluster SIPOAuth Mode has a form")
	}
	tok := csrf(t, p)

	// S-9 through its select.
	p = u.post("/ui/params", url.Values{"csrf": {tok}, "name": {"oauth_access_token_for_devices"}, "value": {"explicit"}})
	if p.status != 200 || p.url.Path != "/ui/params" {
		t.Fatalf("saving S-9: HTTP %d at %s", p.status, p.url)
	}
	if got := params(t, u.env)["oauth_access_token_for_devices"].Value; got != "explicit" {
		t.Errorf("after the form, the API says oauth_access_token_for_devices = %q, want explicit", got)
	}
	if !auditHas(t, u.env, "params.set", account+" (token", "oauth_access_token_for_devices=explicit") {
		t.Errorf("the change is not audited as params.set by %s", account)
	}
	// A lifetime through its number and unit.
	p = u.post("/ui/params", url.Values{"csrf": {tok}, "name": {"access_token_ttl"}, "value": {"30"}, "unit": {"m"}})
	if got := params(t, u.env)["access_token_ttl"].Value; p.status != 200 || got != "30m" {
		t.Errorf("saving the access token lifetime 30 minutes: HTTP %d, the API says %q", p.status, got)
	}
	if !strings.Contains(p.body, `id="value-access_token_ttl" name="value" type="number" min="1" step="1" inputmode="numeric" value="30"`) {
		t.Errorf("the page does not show the lifetime as 30 (minutes)")
	}

	// Wrong inputs: the API's own refusals, next to the parameter's form,
	// and nothing changes.
	for _, c := range []struct {
		name string
		form url.Values
		body string
	}{
		{"oauth_refresh_login_flow", url.Values{"value": {"sometimes"}}, "sometimes"},
		{"refresh_token_ttl", url.Values{"value": {"30"}, "unit": {"m"}}, "30m"},
		{"cluster_sipoauth_mode", url.Values{"value": {"enabled"}}, "enabled"},
	} {
		code, msg := apiRefusal(t, u.env, http.MethodPut, "/api/v1/params/"+c.name, map[string]string{"value": c.body})
		was := params(t, u.env)[c.name].Value
		c.form.Set("csrf", tok)
		c.form.Set("name", c.name)
		p := u.post("/ui/params", c.form)
		if p.status != code || !showsError(p, "param-"+c.name+"-error", msg) {
			t.Errorf("%s = %s: HTTP %d (API %d), page lacks the API's refusal %q", c.name, c.body, p.status, code, msg)
		}
		if now := params(t, u.env)[c.name].Value; now != was {
			t.Errorf("a refused %s changed it: %q, was %q", c.name, now, was)
		}
	}
	// The S-13 refusal names the rule.
	if p := u.post("/ui/params", url.Values{"csrf": {tok}, "name": {"cluster_sipoauth_mode"}, "value": {"enabled"}}); !strings.Contains(p.body, "S-13: Cluster SIPOAuth Mode is read-only") {
		t.Errorf("setting Cluster SIPOAuth Mode does not show S-13's refusal")
	}

	// A parameter the API does not know: its 404, at the top of the page.
	code, msg := apiRefusal(t, u.env, http.MethodPut, "/api/v1/params/no_such_param", map[string]string{"value": "x"})
	if p := u.post("/ui/params", url.Values{"csrf": {tok}, "name": {"no_such_param"}, "value": {"x"}}); p.status != code || !showsError(p, "params-error", msg) {
		t.Errorf("an unknown parameter: HTTP %d (API %d), page lacks %q", p.status, code, msg)
	}

	// Without the CSRF token: 403, nothing changes.
	if p := u.post("/ui/params", url.Values{"name": {"export_controlled_allowed"}, "value": {"true"}}); p.status != http.StatusForbidden {
		t.Errorf("a form without CSRF token: HTTP %d, want 403", p.status)
	}
	if got := params(t, u.env)["export_controlled_allowed"].Value; got != "false" {
		t.Errorf("a form without CSRF token set export_controlled_allowed to %q", got)
	}
}

func nodes(t *testing.T, env *testenv.Env) []admin.NodeView {
	t.Helper()
	var ns []admin.NodeView
	apiJSON(t, env, "/api/v1/nodes", &ns)
	if len(ns) == 0 {
		t.Fatal("the core registered no node")
	}
	return ns
}

func TestCiscoUnifiedCMNodesPage(t *testing.T) {
	u := startUI(t, testenv.Options{Bare: true})
	u.login(account, password)
	n := nodes(t, u.env)[0]
	p := u.get("/ui/nodes")
	if p.status != 200 {
		t.Fatalf("GET /ui/nodes: HTTP %d", p.status)
	}
	for _, want := range []string{"S-11", `id="phone-` + n.Name + `" name="phone_oauth_port"`, `value="` + strconv.Itoa(n.PhoneOAuthPort) + `"`,
		`id="mra-` + n.Name + `" name="mra_port"`, `value="` + strconv.Itoa(n.MRAPort) + `"`, `id="restart-callmanager"`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the nodes page lacks %q", want)
		}
	}
	if strings.Contains(p.body, "waiting for restart") {
		t.Errorf("a node whose configuration is in effect is shown waiting for a restart")
	}
	tok := csrf(t, p)

	// New ports: the API has them; the node listens on the old ones until
	// edgeway core restarts, and the page says so.
	phone, mra := n.PhoneOAuthPort+1000, n.MRAPort+1000
	if phone > 49151 || mra > 49151 {
		phone, mra = 20090, 20091
	}
	form := url.Values{"csrf": {tok}, "name": {n.Name}, "phone_oauth_port": {strconv.Itoa(phone)}, "mra_port": {strconv.Itoa(mra)}}
	p = u.post("/ui/nodes", form)
	if p.status != 200 || p.url.Path != "/ui/nodes" {
		t.Fatalf("saving ports: HTTP %d at %s\n%s", p.status, p.url, p.body)
	}
	got := nodes(t, u.env)[0]
	if got.PhoneOAuthPort != phone || got.MRAPort != mra || !got.PortsPending {
		t.Errorf("after the form the API has %d/%d pending %v, want %d/%d pending", got.PhoneOAuthPort, got.MRAPort, got.PortsPending, phone, mra)
	}
	if !strings.Contains(p.body, `<td id="status-`+n.Name+`"><strong>waiting for restart</strong>: ports `+strconv.Itoa(phone)) {
		t.Errorf("the page does not show the node's new ports waiting for a restart:\n%s", p.body)
	}
	if !auditHas(t, u.env, "node.set", account+" (token", "node="+n.Name+" phone_oauth_port="+strconv.Itoa(phone)) {
		t.Errorf("the port change is not audited as node.set by %s", account)
	}

	// Wrong inputs: the API's S-11 refusals; nothing changes.
	for what, ports := range map[string][2]int{"out of range": {80, mra}, "the same port twice": {mra, mra}} {
		code, msg := apiRefusal(t, u.env, http.MethodPut, "/api/v1/nodes/"+n.Name, map[string]int{"phone_oauth_port": ports[0], "mra_port": ports[1]})
		if !strings.Contains(msg, "S-11") {
			t.Fatalf("the API's refusal of %s does not name S-11: %q", what, msg)
		}
		p := u.post("/ui/nodes", url.Values{"csrf": {tok}, "name": {n.Name}, "phone_oauth_port": {strconv.Itoa(ports[0])}, "mra_port": {strconv.Itoa(ports[1])}})
		if p.status != code || !showsError(p, "node-"+n.Name+"-error", msg) {
			t.Errorf("ports %s: HTTP %d (API %d), page lacks the API's refusal %q", what, p.status, code, msg)
		}
		if !strings.Contains(p.body, `value="`+strconv.Itoa(ports[0])+`" aria-describedby="node-`+n.Name+`-help node-`+n.Name+`-error"`) {
			t.Errorf("ports %s: the refused form lost its input or its error link", what)
		}
	}
	// A node the cluster does not have: the API's 404, at the top.
	code, msg := apiRefusal(t, u.env, http.MethodPut, "/api/v1/nodes/no-such-node", map[string]int{"phone_oauth_port": 20090, "mra_port": 20091})
	if p := u.post("/ui/nodes", url.Values{"csrf": {tok}, "name": {"no-such-node"}, "phone_oauth_port": {"20090"}, "mra_port": {"20091"}}); p.status != code || !showsError(p, "nodes-error", msg) {
		t.Errorf("an unknown node: HTTP %d (API %d), page lacks %q", p.status, code, msg)
	}
	// Not a number: refused by the page itself, naming S-11.
	if p := u.post("/ui/nodes", url.Values{"csrf": {tok}, "name": {n.Name}, "phone_oauth_port": {"fifty"}, "mra_port": {strconv.Itoa(mra)}}); p.status != 400 || !strings.Contains(p.body, "S-11: SIP Phone OAuth Port") {
		t.Errorf("a port that is no number: HTTP %d, want 400 naming S-11", p.status)
	}
	if got := nodes(t, u.env)[0]; got.PhoneOAuthPort != phone || got.MRAPort != mra {
		t.Errorf("refused forms changed the ports to %d/%d", got.PhoneOAuthPort, got.MRAPort)
	}

	// Without the CSRF token: 403, nothing changes, no restart.
	delete(form, "csrf")
	form.Set("phone_oauth_port", "30000")
	if p := u.post("/ui/nodes", form); p.status != http.StatusForbidden {
		t.Errorf("ports without CSRF token: HTTP %d, want 403", p.status)
	}
	if p := u.post("/ui/service/restart", url.Values{"from": {"nodes"}}); p.status != http.StatusForbidden {
		t.Errorf("restart without CSRF token: HTTP %d, want 403", p.status)
	}
	if got := nodes(t, u.env)[0]; got.PhoneOAuthPort != phone || !got.RestartedAt.Equal(n.RestartedAt) {
		t.Errorf("forms without CSRF token changed the node: port %d, restarted %v (was %v)", got.PhoneOAuthPort, got.RestartedAt, n.RestartedAt)
	}

	// S-14: with the cluster mode turned on, the node waits for a
	// CallManager restart; the page's restart applies it.
	for _, c := range []struct{ path, body string }{{"/api/v1/params/export_controlled_allowed", `{"value":"true"}`}, {"/api/v1/utils/sipoauth-mode", `{"action":"enable"}`}} {
		method := http.MethodPut
		if strings.Contains(c.path, "utils") {
			method = http.MethodPost
		}
		if code, b := u.env.Admin(t, method, c.path, json.RawMessage(c.body)); code != 200 {
			t.Fatalf("%s: HTTP %d %s", c.path, code, b)
		}
	}
	p = u.get("/ui/nodes")
	if !strings.Contains(p.body, `id="waiting"`) || !strings.Contains(p.body, "waiting for restart</strong>: runs SIP OAuth mode disabled, the cluster's is enabled") {
		t.Errorf("the node is not shown waiting for a CallManager restart (S-14):\n%s", p.body)
	}
	p = u.post("/ui/service/restart", url.Values{"csrf": {tok}, "from": {"nodes"}})
	if p.status != 200 || p.url.Path != "/ui/nodes" || !strings.Contains(p.body, `id="restarted"`) {
		t.Fatalf("restart: HTTP %d at %s", p.status, p.url)
	}
	if got := nodes(t, u.env)[0]; got.RunningMode != "enabled" || got.RestartNeeded {
		t.Errorf("after the restart the node runs %q, restart needed %v", got.RunningMode, got.RestartNeeded)
	}
	if strings.Contains(p.body, `id="waiting"`) || strings.Contains(p.body, "runs SIP OAuth mode disabled") {
		t.Errorf("after the restart the page still shows the node waiting for it")
	}
	if !auditHas(t, u.env, "service.restart", account+" (token", "sip_oauth_mode=enabled") {
		t.Errorf("the restart is not audited as service.restart by %s", account)
	}
}

func profiles(t *testing.T, env *testenv.Env) map[string]admin.ProfileView {
	t.Helper()
	var ps []admin.ProfileView
	apiJSON(t, env, "/api/v1/profiles", &ps)
	out := map[string]admin.ProfileView{}
	for _, p := range ps {
		out[p.Name] = p
	}
	return out
}

func TestPhoneSecurityProfilePage(t *testing.T) {
	u := startUI(t, testenv.Options{Bare: true})
	u.login(account, password)
	p := u.get("/ui/profiles")
	if p.status != 200 || !strings.Contains(p.body, "No phone security profile.") {
		t.Fatalf("a bare core's profiles page: HTTP %d\n%s", p.status, p.body)
	}
	for _, want := range []string{"S-15: needs Device Security Mode encrypted and Transport TLS", "S-16: not with Digest Authentication or TFTP Encrypted Config"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the form does not show the rule %q", want)
		}
	}
	tok := csrf(t, p)
	const name = "OAuth 8845 Profile"
	form := url.Values{"csrf": {tok}, "name": {name}, "device_type": {"8845"}, "mode": {"encrypted"}, "transport": {"TLS"}, "oauth": {"on"}}
	p = u.post("/ui/profiles", form)
	if p.status != 200 || p.url.Path != "/ui/profiles" {
		t.Fatalf("adding a profile: HTTP %d at %s\n%s", p.status, p.url, p.body)
	}
	want := admin.ProfileView{Name: name, DeviceType: "8845", Mode: "encrypted", Transport: "TLS", OAuth: true}
	if got := profiles(t, u.env)[name]; got != want {
		t.Errorf("after the form the API has %+v, want %+v", got, want)
	}
	if !auditHas(t, u.env, "profile.set", account+" (token", name+": mode=encrypted transport=TLS oauth=true") {
		t.Errorf("the profile is not audited as profile.set by %s", account)
	}
	// Its edit link fills the form.
	p = u.get("/ui/profiles?edit=" + url.QueryEscape(name))
	if !strings.Contains(p.body, `id="profile-name" name="name" required value="`+name+`"`) || !strings.Contains(p.body, `id="profile-oauth" name="oauth" value="on" checked`) {
		t.Errorf("editing %q does not fill the form:\n%s", name, p.body)
	}

	// Wrong inputs: the API's S-15 and S-16 refusals; nothing is saved.
	for what, f := range map[string]url.Values{
		"OAuth, authenticated": {"name": {"Bad"}, "mode": {"authenticated"}, "transport": {"TLS"}, "oauth": {"on"}},
		"OAuth with digest":    {"name": {"Bad"}, "mode": {"encrypted"}, "transport": {"TLS"}, "oauth": {"on"}, "digest": {"on"}},
		"OAuth, TFTP enc.":     {"name": {"Bad"}, "mode": {"encrypted"}, "transport": {"TLS"}, "oauth": {"on"}, "tftp_encrypted": {"on"}},
	} {
		body := admin.ProfileView{Mode: f.Get("mode"), Transport: f.Get("transport"), OAuth: true, Digest: f.Get("digest") != "", TFTPEncrypted: f.Get("tftp_encrypted") != ""}
		code, msg := apiRefusal(t, u.env, http.MethodPut, "/api/v1/profiles/Bad", body)
		if !strings.HasPrefix(msg, "S-15") && !strings.HasPrefix(msg, "S-16") {
			t.Fatalf("the API's refusal of %s names no rule: %q", what, msg)
		}
		f.Set("csrf", tok)
		p := u.post("/ui/profiles", f)
		if p.status != code || !showsError(p, "profile-error", msg) {
			t.Errorf("%s: HTTP %d (API %d), page lacks the API's refusal %q", what, p.status, code, msg)
		}
		if !strings.Contains(p.body, `value="Bad" aria-describedby="profile-name-help profile-error"`) {
			t.Errorf("%s: the refused form lost its input or its error link", what)
		}
	}
	if _, ok := profiles(t, u.env)["Bad"]; ok {
		t.Errorf("a refused profile was saved")
	}

	// Delete: refused (the API's 409) while a device uses it.
	if code, b := u.env.Admin(t, http.MethodPut, "/api/v1/devices/SEP00AABBCCDD01", map[string]any{"model": "8845", "line": "2001", "security_profile": name}); code != 200 {
		t.Fatalf("device: HTTP %d %s", code, b)
	}
	code, msg := apiRefusal(t, u.env, http.MethodDelete, "/api/v1/profiles/"+url.PathEscape(name), nil)
	p = u.post("/ui/profiles/delete", url.Values{"csrf": {tok}, "name": {name}})
	if p.status != code || !showsError(p, "profiles-list-error", msg) {
		t.Errorf("deleting a profile in use: HTTP %d (API %d), page lacks %q", p.status, code, msg)
	}
	if code, b := u.env.Admin(t, http.MethodDelete, "/api/v1/devices/SEP00AABBCCDD01", nil); code != http.StatusNoContent {
		t.Fatalf("device delete: HTTP %d %s", code, b)
	}
	// Without the CSRF token: 403, still there.
	if p := u.post("/ui/profiles/delete", url.Values{"name": {name}}); p.status != http.StatusForbidden {
		t.Errorf("delete without CSRF token: HTTP %d, want 403", p.status)
	}
	delete(form, "csrf")
	form.Set("name", "Other")
	if p := u.post("/ui/profiles", form); p.status != http.StatusForbidden {
		t.Errorf("add without CSRF token: HTTP %d, want 403", p.status)
	}
	if ps := profiles(t, u.env); len(ps) != 1 {
		t.Fatalf("forms without CSRF token changed the profiles: %v", ps)
	}
	// Delete through the form.
	p = u.post("/ui/profiles/delete", url.Values{"csrf": {tok}, "name": {name}})
	if p.status != 200 || p.url.Path != "/ui/profiles" || len(profiles(t, u.env)) != 0 {
		t.Errorf("delete: HTTP %d at %s, profiles %v", p.status, p.url, profiles(t, u.env))
	}
	if !auditHas(t, u.env, "profile.delete", account+" (token", name) {
		t.Errorf("the delete is not audited as profile.delete by %s", account)
	}
}

func modeStatus(t *testing.T, env *testenv.Env) admin.ModeStatus {
	t.Helper()
	var ms admin.ModeStatus
	apiJSON(t, env, "/api/v1/utils/sipoauth-mode", &ms)
	return ms
}

func TestSIPOAuthModePage(t *testing.T) {
	u := startUI(t, testenv.Options{Bare: true})
	u.login(account, password)
	p := u.get("/ui/sipoauth")
	if p.status != 200 || !strings.Contains(p.body, `<strong id="cluster-mode">disabled</strong>`) || !strings.Contains(p.body, `<strong id="export-controlled">false</strong>`) {
		t.Fatalf("a bare core's SIP OAuth page: HTTP %d\n%s", p.status, p.body)
	}
	tok := csrf(t, p)

	// S-7: enabling without export-controlled functionality is refused by
	// the API; the page shows its refusal and the mode stays off.
	code, msg := apiRefusal(t, u.env, http.MethodPost, "/api/v1/utils/sipoauth-mode", map[string]string{"action": "enable"})
	p = u.post("/ui/sipoauth", url.Values{"csrf": {tok}, "action": {"enable"}})
	if p.status != code || !showsError(p, "sipoauth-error", msg) || !strings.HasPrefix(msg, "S-7") {
		t.Errorf("enable without S-7: HTTP %d (API %d), page lacks the API's refusal %q", p.status, code, msg)
	}
	if ms := modeStatus(t, u.env); ms.ClusterMode != "disabled" {
		t.Fatalf("a refused enable turned the mode %s", ms.ClusterMode)
	}

	// S-7 through the parameters page, then enable (S-13).
	if p := u.post("/ui/params", url.Values{"csrf": {tok}, "name": {"export_controlled_allowed"}, "value": {"true"}}); p.status != 200 {
		t.Fatalf("export_controlled_allowed: HTTP %d", p.status)
	}
	// Without the CSRF token: 403, still off.
	if p := u.post("/ui/sipoauth", url.Values{"action": {"enable"}}); p.status != http.StatusForbidden {
		t.Errorf("enable without CSRF token: HTTP %d, want 403", p.status)
	}
	if ms := modeStatus(t, u.env); ms.ClusterMode != "disabled" {
		t.Fatalf("an enable without CSRF token turned the mode %s", ms.ClusterMode)
	}
	p = u.post("/ui/sipoauth", url.Values{"csrf": {tok}, "action": {"enable"}})
	if p.status != 200 || p.url.Path != "/ui/sipoauth" {
		t.Fatalf("enable: HTTP %d at %s", p.status, p.url)
	}
	ms := modeStatus(t, u.env)
	if ms.ClusterMode != "enabled" || ms.Message == "" {
		t.Fatalf("after enable the API says %+v, want enabled with nodes waiting for a restart", ms)
	}
	if !auditHas(t, u.env, "utils.sipoauth-mode", account+" (token", "enable (cluster mode now enabled)") {
		t.Errorf("enable is not audited as utils.sipoauth-mode by %s", account)
	}
	// S-14: the nodes waiting for a CallManager restart are named.
	if !strings.Contains(p.body, `<strong id="cluster-mode">enabled</strong>`) || !strings.Contains(p.body, `id="waiting">`+html.EscapeString(ms.Message)) ||
		!strings.Contains(p.body, "<strong>waiting for restart</strong> of the CallManager service") {
		t.Errorf("the page does not show the nodes waiting for a restart (%q):\n%s", ms.Message, p.body)
	}
	p = u.post("/ui/service/restart", url.Values{"csrf": {tok}, "from": {"sipoauth"}})
	if p.status != 200 || p.url.Path != "/ui/sipoauth" || !strings.Contains(p.body, `id="in-effect"`) {
		t.Errorf("restart from the SIP OAuth page: HTTP %d at %s\n%s", p.status, p.url, p.body)
	}
	if ms := modeStatus(t, u.env); ms.Message != "" || ms.Nodes[0].RunningMode != "enabled" {
		t.Errorf("after the restart the API says %+v", ms)
	}
	// Disable.
	if p := u.post("/ui/sipoauth", url.Values{"csrf": {tok}, "action": {"disable"}}); p.status != 200 || modeStatus(t, u.env).ClusterMode != "disabled" {
		t.Errorf("disable: HTTP %d, mode %s", p.status, modeStatus(t, u.env).ClusterMode)
	}
}

// The System pages are in the menu and carry no inline script or style.
func TestSystemPagesInMenu(t *testing.T) {
	u := startUI(t, testenv.Options{})
	home := u.login(account, password)
	for _, path := range []string{"/ui/params", "/ui/nodes", "/ui/profiles", "/ui/sipoauth"} {
		if !strings.Contains(home.body, `href="`+path+`"`) {
			t.Errorf("the menu has no link to %s", path)
		}
		p := u.get(path)
		if p.status != 200 || !strings.Contains(p.body, `aria-current="page"`) || !strings.Contains(p.body, `<p class="rule">Implements: S-`) {
			t.Errorf("%s: HTTP %d, or not marked current, or no rule", path, p.status)
		}
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "<style") || strings.Contains(p.body, " style=") {
			t.Errorf("%s has inline script or style", path)
		}
	}
}

// In a real browser, on a bare core: the chapter's System steps through
// the pages' own controls (selects, checkboxes, the two-button
// enable/disable form), with the API's refusals shown, and the pages
// usable at phone width.
func TestBrowserSystemPages(t *testing.T) {
	ctx := browser(t)
	u := startUI(t, testenv.Options{Bare: true})
	dir := screenshotDir(t)
	do(t, ctx, "logging in", chromedp.Navigate(u.base+"/ui/login"), chromedp.WaitVisible(chromedp.ID("account")),
		chromedp.SendKeys(chromedp.ID("account"), account), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main menu"]`)))

	// S-7 first refuses the mode; set it on Enterprise Parameters.
	do(t, ctx, "enable without S-7", chromedp.Click(chromedp.CSS(`a[href="/ui/sipoauth"]`)), chromedp.WaitVisible(chromedp.ID("sipoauth-enable")),
		chromedp.Click(chromedp.ID("sipoauth-enable")), chromedp.WaitVisible(chromedp.ID("sipoauth-error")))
	if msg := get(t, ctx, "refusal", chromedp.Text(chromedp.ID("sipoauth-error"))); !strings.HasPrefix(msg, "S-7: ") {
		t.Errorf("enabling without export-controlled functionality shows %q, want the API's S-7 refusal", msg)
	}
	do(t, ctx, "S-7 and S-10 parameters", chromedp.Click(chromedp.CSS(`a[href="/ui/params"]`)), chromedp.WaitVisible(chromedp.ID("value-export_controlled_allowed")),
		chromedp.SetValue(chromedp.ID("value-export_controlled_allowed"), "true"), chromedp.Click(chromedp.ID("save-export_controlled_allowed")),
		chromedp.WaitVisible(chromedp.Search(`//td[@id="current-export_controlled_allowed"][text()="true"]`)),
		chromedp.SetValue(chromedp.ID("value-oauth_refresh_login_flow"), "enabled"), chromedp.Click(chromedp.ID("save-oauth_refresh_login_flow")),
		chromedp.WaitVisible(chromedp.Search(`//td[@id="current-oauth_refresh_login_flow"][text()="enabled"]`)))
	shot(t, ctx, dir, "params")
	if ps := params(t, u.env); ps["export_controlled_allowed"].Value != "true" || ps["oauth_refresh_login_flow"].Value != "enabled" {
		t.Fatalf("after the browser's forms the API has %+v", ps)
	}

	// S-13 then S-14.
	do(t, ctx, "enable", chromedp.Click(chromedp.CSS(`a[href="/ui/sipoauth"]`)), chromedp.WaitVisible(chromedp.ID("sipoauth-enable")),
		chromedp.Click(chromedp.ID("sipoauth-enable")), chromedp.WaitVisible(chromedp.ID("waiting")))
	shot(t, ctx, dir, "sipoauth-waiting")
	do(t, ctx, "restart", chromedp.Click(chromedp.ID("restart-callmanager")), chromedp.WaitVisible(chromedp.ID("in-effect")))
	if ms := modeStatus(t, u.env); ms.ClusterMode != "enabled" || ms.Message != "" {
		t.Fatalf("after enable and restart in the browser the API says %+v", ms)
	}

	// S-15/S-16: a profile with OAuth and digest is refused; without
	// digest it is saved.
	do(t, ctx, "profile with digest", chromedp.Click(chromedp.CSS(`a[href="/ui/profiles"]`)), chromedp.WaitVisible(chromedp.ID("profile-name")),
		chromedp.SendKeys(chromedp.ID("profile-name"), "OAuth 8845 Profile"), chromedp.SendKeys(chromedp.ID("profile-device-type"), "8845"),
		chromedp.Click(chromedp.ID("profile-digest")), chromedp.Click(chromedp.ID("profile-save")), chromedp.WaitVisible(chromedp.ID("profile-error")))
	if msg := get(t, ctx, "refusal", chromedp.Text(chromedp.ID("profile-error"))); !strings.HasPrefix(msg, "S-16: ") {
		t.Errorf("OAuth with digest shows %q, want the API's S-16 refusal", msg)
	}
	do(t, ctx, "profile without digest", chromedp.Click(chromedp.ID("profile-digest")), chromedp.Click(chromedp.ID("profile-save")),
		chromedp.WaitVisible(chromedp.ID("profile-delete-OAuth-8845-Profile")))
	want := admin.ProfileView{Name: "OAuth 8845 Profile", DeviceType: "8845", Mode: "encrypted", Transport: "TLS", OAuth: true}
	if got := profiles(t, u.env)[want.Name]; got != want {
		t.Errorf("the browser's profile is %+v in the API, want %+v", got, want)
	}
	shot(t, ctx, dir, "profiles")

	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844))
	for _, path := range []string{"/ui/params", "/ui/nodes", "/ui/profiles", "/ui/sipoauth"} {
		do(t, ctx, path, chromedp.Navigate(u.base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
		if get(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`)) {
			t.Errorf("%s scrolls sideways at phone width", path)
		}
	}
	shot(t, ctx, dir, "nodes-phone")
}
