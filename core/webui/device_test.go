package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/testenv"
)

// device reads a device through the API: its view and the HTTP status.
func (u *ui) device(name string) (admin.DeviceView, int) {
	u.t.Helper()
	code, b := u.env.Admin(u.t, http.MethodGet, "/api/v1/devices/"+url.PathEscape(name), nil)
	var v admin.DeviceView
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil {
			u.t.Fatal(err)
		}
	}
	return v, code
}

// phoneForm is the Phone Configuration form's fields for v.
func phoneForm(tok string, v admin.DeviceView) url.Values {
	f := url.Values{"csrf": {tok}, "model": {v.Model}, "line": {v.Line}, "owner": {v.Owner}, "profile": {v.SecurityProfile}, "mra_domain": {v.MRAServiceDomain}}
	if v.AllowMRA {
		f.Set("allow_mra", "on")
	}
	return f
}

// auditCount counts the entries of an action by actor.
func auditCount(t *testing.T, env *testenv.Env, action, actor string) int {
	t.Helper()
	n := 0
	for _, e := range auditEntries(t, env) {
		if e.Action == action && strings.HasPrefix(e.Actor, actor) {
			n++
		}
	}
	return n
}

// Device → Phone: a phone added and then changed through the Phone
// Configuration form is the API's (GET /api/v1/devices/{name}) and is
// audited as device.set by the administrator; the list finds it by name,
// line and owner, 50 rows a page.
func TestPhoneAddedAndEditedThroughTheForm(t *testing.T) {
	u := startUI(t, testenv.Options{})
	home := u.login(account, password)
	tok := csrf(t, home)
	const name = "SEPAABBCCDDEE01"

	add := u.get("/ui/phones/new")
	if add.status != 200 || !strings.Contains(add.body, `<option value="`+quickstart.ProfileName+`"`) || !strings.Contains(add.body, `id="name"`) {
		t.Fatalf("the new phone page: HTTP %d, without the profile select from GET /api/v1/profiles or the name field:\n%s", add.status, add.body)
	}
	want := admin.DeviceView{Name: name, Model: "8845", Line: "3001", Owner: "carol", SecurityProfile: quickstart.ProfileName,
		AllowMRA: true, MRAServiceDomain: "mra.example.org"}
	f := phoneForm(tok, want)
	f.Set("name", name)
	p := u.post("/ui/phones", f)
	if p.status != 200 || p.url.Path != "/ui/phones/"+name || !strings.Contains(p.body, `id="phone-status">Saved`) {
		t.Fatalf("adding a phone: HTTP %d at %s:\n%s", p.status, p.url, p.body)
	}
	if got, code := u.device(name); code != 200 || got != want {
		t.Fatalf("the API has %+v (HTTP %d), want %+v", got, code, want)
	}
	if !auditHas(t, u.env, "device.set", account+" (token", name+": model=8845 line=3001") {
		t.Errorf("adding the phone is not audited as device.set by %s", account)
	}
	for _, s := range []string{`id="device-name">` + name, `value="3001"`, `value="carol"`, `value="mra.example.org"`, `id="allow-mra" name="allow_mra" value="on" checked`,
		`<option value="` + quickstart.ProfileName + `" selected>`, `href="/ui/activation?device=` + name + `" id="generate-code"`} {
		if !strings.Contains(p.body, s) {
			t.Errorf("the phone's page lacks %q", s)
		}
	}

	// Adding it again would replace it (PUT): the page refuses.
	f.Set("line", "3009")
	if p := u.post("/ui/phones", f); p.status != http.StatusConflict || !strings.Contains(p.body, `id="phone-error"`) {
		t.Errorf("adding %s again: HTTP %d, want 409 with the error shown", name, p.status)
	}
	if got, _ := u.device(name); got.Line != "3001" {
		t.Errorf("a refused second add changed the phone: line %s", got.Line)
	}

	// Edit: a new line, activation via MRA off.
	want.Line, want.AllowMRA, want.MRAServiceDomain = "3002", false, ""
	if p := u.post("/ui/phones/"+name, phoneForm(tok, want)); p.status != 200 || p.url.Path != "/ui/phones/"+name || strings.Contains(p.body, `checked`) {
		t.Fatalf("saving the phone: HTTP %d at %s:\n%s", p.status, p.url, p.body)
	}
	if got, _ := u.device(name); got != want {
		t.Fatalf("after Save the API has %+v, want %+v", got, want)
	}
	if !auditHas(t, u.env, "device.set", account+" (token", name+": model=8845 line=3002") {
		t.Errorf("the edit is not audited as device.set by %s", account)
	}

	// Find: by line, by owner, by name; the phone's row links to its page.
	for _, q := range []string{"line=3002", "owner=CAR", "name=aabbccdd"} {
		p := u.get("/ui/phones?" + q)
		if !strings.Contains(p.body, `<a href="/ui/phones/`+name+`">`) || strings.Contains(p.body, "SEP001122334401") || !strings.Contains(p.body, "Phones: 1;") {
			t.Errorf("phones?%s: want only %s:\n%s", q, name, p.body)
		}
	}
	// Paging: 60 more phones, 50 a page.
	for i := range 60 {
		if err := u.env.Store.PutDevice(context.Background(), store.Device{Name: fmt.Sprintf("SEPPAGE%04d", i), Model: "8845",
			Line: strconv.Itoa(5000 + i), SecurityProfile: quickstart.ProfileName}); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(p page) int { return strings.Count(p.body, `<a href="/ui/phones/SEPPAGE`) }
	if p := u.get("/ui/phones?name=seppage"); rows(p) != 50 || !strings.Contains(p.body, `href="/ui/phones?name=seppage&amp;page=2" rel="next"`) {
		t.Errorf("page 1: %d rows, want 50 and a link to page 2 keeping the filter", rows(p))
	}
	if p := u.get("/ui/phones?name=seppage&page=2"); rows(p) != 10 || !strings.Contains(p.body, "Phones: 60; page 2 of 2") {
		t.Errorf("page 2: %d rows, want the last 10", rows(p))
	}

	// Delete through its form: the API no longer has it, audited.
	if p := u.post("/ui/phones/"+name+"/delete", url.Values{"csrf": {tok}}); p.status != 200 || p.url.Path != "/ui/phones" || !strings.Contains(p.body, "Deleted "+name) {
		t.Fatalf("delete: HTTP %d at %s", p.status, p.url)
	}
	if _, code := u.device(name); code != http.StatusNotFound {
		t.Errorf("after delete the API answers HTTP %d for %s, want 404", code, name)
	}
	if !auditHas(t, u.env, "device.delete", account+" (token", name) {
		t.Errorf("the delete is not audited as device.delete by %s", account)
	}
	if p := u.get("/ui/phones/" + name); p.status != http.StatusNotFound || !strings.Contains(p.body, `id="load-error"`) || strings.Contains(p.body, `id="phone-form"`) {
		t.Errorf("the deleted phone's page: HTTP %d, want the API's 404 and no form", p.status)
	}
}

// Save refused: the page shows the API's own refusal text (S-17 for
// activation via MRA without a service domain, S-5 for a model that may
// not use an OAuth profile, a profile that does not exist, a line taken)
// with the API's status, keeps what was typed, and nothing changes.
func TestPhoneSaveShowsTheAPIsRefusal(t *testing.T) {
	u := startUI(t, testenv.Options{})
	tok := csrf(t, u.login(account, password))
	const name = "SEP001122334401"
	before, _ := u.device(name)
	mra := before
	mra.MRAServiceDomain = ""
	model := before
	model.Model = "7960"
	noProfile := before
	noProfile.SecurityProfile = "No Such Profile"
	lineTaken := before
	lineTaken.Line = "1002" // SEP001122334402's
	for _, c := range []struct {
		what, rule string
		v          admin.DeviceView
	}{
		{"activation via MRA without a service domain", "S-17: ", mra},
		{"a model S-5 does not list, on an OAuth profile", "S-5: ", model},
		{"a profile that does not exist", `security profile "No Such Profile"`, noProfile},
		{"a line another phone has", "line 1002 already belongs to SEP001122334402", lineTaken},
	} {
		code, refusal := apiRefusal(t, u.env, http.MethodPut, "/api/v1/devices/"+name, c.v)
		if !strings.Contains(refusal, c.rule) {
			t.Fatalf("%s: the API's refusal %q does not say %q", c.what, refusal, c.rule)
		}
		p := u.post("/ui/phones/"+name, phoneForm(tok, c.v))
		if p.status != code {
			t.Errorf("%s: HTTP %d, the API answers %d", c.what, p.status, code)
		}
		if !strings.Contains(p.body, `<p id="phone-error" class="error" role="alert">`+html.EscapeString(refusal)+`</p>`) {
			t.Errorf("%s: the page does not show the API's refusal %q next to the form:\n%s", c.what, refusal, p.body)
		}
		if !strings.Contains(p.body, `aria-describedby="phone-error"`) || !strings.Contains(p.body, `value="`+c.v.Model+`"`) || !strings.Contains(p.body, `value="`+c.v.Line+`"`) {
			t.Errorf("%s: the refused form lost its input or its aria-describedby link", c.what)
		}
		if after, _ := u.device(name); after != before {
			t.Errorf("%s: a refused Save changed the phone: %+v, was %+v", c.what, after, before)
		}
	}
	// A new phone refused (S-17) is not created.
	v := admin.DeviceView{Model: "8845", Line: "3100", SecurityProfile: quickstart.ProfileName, AllowMRA: true}
	f := phoneForm(tok, v)
	f.Set("name", "SEPNEWREFUSED")
	if p := u.post("/ui/phones", f); p.status != http.StatusBadRequest || !strings.Contains(p.body, "S-17: Allow Activation Code via MRA needs an Activation Code MRA Service Domain") ||
		!strings.Contains(p.body, `id="name" name="name" value="SEPNEWREFUSED"`) {
		t.Errorf("a new phone without its MRA service domain: HTTP %d, want 400 with S-17 and the name kept:\n%s", p.status, p.body)
	}
	if _, code := u.device("SEPNEWREFUSED"); code != http.StatusNotFound {
		t.Errorf("a refused new phone exists (HTTP %d)", code)
	}
	// A saved phone whose profile is not OAuth-enabled: the API saves it
	// (no OAuth needed on premises), the page says why it cannot onboard.
	if code, b := u.env.Admin(t, http.MethodPut, "/api/v1/profiles/Plain", admin.ProfileView{Mode: "non-secure", Transport: "TCP"}); code != 200 {
		t.Fatalf("profile: HTTP %d %s", code, b)
	}
	plain := before
	plain.SecurityProfile = "Plain"
	if p := u.post("/ui/phones/"+name, phoneForm(tok, plain)); p.status != 200 || !strings.Contains(p.body, `S-19: profile &#34;Plain&#34; is not an OAuth-enabled SIP profile`) {
		t.Errorf("a phone on a profile without OAuth: HTTP %d, want it saved with the S-19 notice:\n%s", p.status, p.body)
	}
}

var removedRE = regexp.MustCompile(`: (\d+) binding\(s\) removed`)

// removedAudited is the number of bindings the last audit entry of action
// for device says the API removed.
func removedAudited(t *testing.T, env *testenv.Env, action, device string) int {
	t.Helper()
	code, b := env.Admin(t, http.MethodGet, "/api/v1/audit", nil)
	if code != 200 {
		t.Fatalf("audit: HTTP %d %s", code, b)
	}
	var es []admin.AuditView
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatal(err)
	}
	for _, e := range es { // newest first
		if e.Action == action && strings.HasPrefix(e.Actor, account+" (token") && strings.HasPrefix(e.Detail, device+":") {
			m := removedRE.FindStringSubmatch(e.Detail)
			if m == nil {
				t.Fatalf("audit detail %q", e.Detail)
			}
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	t.Fatalf("no %s of %s by %s in the audit log", action, device, account)
	return 0
}

// Apply Config and Reset (S-19, S-15): the page says what the API did —
// the registered phone's bindings dropped, as many as the API removed and
// audited — and, after a Save, that the registered phone has not yet
// applied it.
func TestPhoneApplyConfigAndResetAsTheAPIAnswers(t *testing.T) {
	u := startUI(t, testenv.Options{})
	tok := csrf(t, u.login(account, password))
	const name = "SEP001122334402"
	ph := u.env.Phone(name, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ph.Onboard(ctx, u.env.Devices[name].ActivationCode); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("REGISTER: %v %v", res, err)
	}
	bound := func() int {
		n := 0
		for _, g := range u.env.Registrations(t) {
			if g.Device == name {
				n++
			}
		}
		return n
	}
	if bound() == 0 {
		t.Fatal("the phone has no binding after REGISTER")
	}
	if p := u.get("/ui/phones?name=" + name); !strings.Contains(p.body, "registered (") {
		t.Errorf("the list does not show the phone registered")
	}

	// Save with the phone registered: saved, not applied.
	v, _ := u.device(name)
	v.Owner = "dave"
	p := u.post("/ui/phones/"+name, phoneForm(tok, v))
	if !strings.Contains(p.body, "Saved, not applied: the phone still has") {
		t.Errorf("Save of a registered phone does not say it is not applied yet:\n%s", p.body)
	}

	p = u.post("/ui/phones/"+name+"/apply-config", url.Values{"csrf": {tok}})
	n := removedAudited(t, u.env, "device.apply-config", name)
	if n == 0 {
		t.Errorf("Apply Config removed no binding of a registered phone")
	}
	if p.status != 200 || p.url.Path != "/ui/phones/"+name || !strings.Contains(p.body, fmt.Sprintf(`id="phone-status">Apply Config: %d live registration(s) dropped`, n)) {
		t.Errorf("Apply Config: HTTP %d at %s, want the page to say %d registration(s) dropped:\n%s", p.status, p.url, n, p.body)
	}
	if b := bound(); b != 0 {
		t.Errorf("after Apply Config the API lists %d binding(s) of the phone", b)
	}

	p = u.post("/ui/phones/"+name+"/reset", url.Values{"csrf": {tok}})
	if n := removedAudited(t, u.env, "device.reset", name); n != 0 || !strings.Contains(p.body, `id="phone-status">Reset: 0 live registration(s) dropped`) {
		t.Errorf("Reset of an unregistered phone: audited %d removed; page:\n%s", n, p.body)
	}

	// Of a phone that does not exist: the API's 404 and its text.
	code, refusal := apiRefusal(t, u.env, http.MethodPost, "/api/v1/devices/SEPNOSUCH/apply-config", nil)
	if p := u.post("/ui/phones/SEPNOSUCH/apply-config", url.Values{"csrf": {tok}}); p.status != code ||
		!strings.Contains(p.body, `<p id="action-error" class="error" role="alert">`+html.EscapeString(refusal)+`</p>`) {
		t.Errorf("Apply Config of an unknown phone: HTTP %d (API %d), page lacks %q:\n%s", p.status, code, refusal, p.body)
	}
}

// Device → Expressway-C → Edit (S-12): the entry's form saves through PUT
// /api/v1/expressway/{id}, audited; a wrong input gets the API's S-12
// refusal and changes nothing.
func TestExpresswayEditThroughTheForm(t *testing.T) {
	u := startUI(t, testenv.Options{})
	home := u.login(account, password)
	tok := csrf(t, home)
	before := u.expressways()
	if len(before) == 0 {
		t.Fatal("quickstart provisioned no Expressway-C entry")
	}
	e := before[0]
	id := itoa(e.ID)
	if !strings.Contains(home.body, `<a href="/ui/expressway/`+id+`" id="edit-`+id+`"`) {
		t.Errorf("the list has no Edit link for entry %s", id)
	}
	p := u.get("/ui/expressway/" + id)
	if p.status != 200 || !strings.Contains(p.body, `id="address" name="address" value="`+e.Address+`"`) || !strings.Contains(p.body, e.Names[0]) {
		t.Fatalf("the edit page: HTTP %d, without the entry's values:\n%s", p.status, p.body)
	}

	f := url.Values{"csrf": {tok}, "address": {"expc-edited.example.com"}, "names": {quickstart.ExpresswayName + ", expc2.example.com"},
		"domains": {"other.example"}, "description": {"edited in the web UI"}}
	if p := u.post("/ui/expressway/"+id, f); p.status != 200 || p.url.Path != "/ui/expressway/"+id || !strings.Contains(p.body, `id="edit-status">Saved`) {
		t.Fatalf("saving: HTTP %d at %s:\n%s", p.status, p.url, p.body)
	}
	var got admin.ExpresswayEntryView
	for _, x := range u.expressways() {
		if x.ID == e.ID {
			got = x
		}
	}
	if got.Address != "expc-edited.example.com" || strings.Join(got.Names, ",") != quickstart.ExpresswayName+",expc2.example.com" ||
		strings.Join(got.Domains, ",") != "other.example" || got.Description != "edited in the web UI" {
		t.Fatalf("after Save the API has %+v", got)
	}
	if !auditHas(t, u.env, "expressway.edit", account+" (token", "id="+id+" address=expc-edited.example.com") {
		t.Errorf("the edit is not audited as expressway.edit by %s", account)
	}

	// No names: the API's S-12 refusal, the input kept, nothing changed.
	code, refusal := apiRefusal(t, u.env, http.MethodPut, "/api/v1/expressway/"+id, admin.ExpresswayEntryView{Address: "x.example.com"})
	if !strings.HasPrefix(refusal, "S-12: ") {
		t.Fatalf("the API's refusal %q does not name S-12", refusal)
	}
	p = u.post("/ui/expressway/"+id, url.Values{"csrf": {tok}, "address": {"x.example.com"}, "names": {" "}})
	if p.status != code || !strings.Contains(p.body, `<p id="edit-error" class="error" role="alert">`+html.EscapeString(refusal)+`</p>`) ||
		!strings.Contains(p.body, `value="x.example.com" aria-describedby="edit-error"`) {
		t.Errorf("saving without names: HTTP %d (API %d), want the API's refusal next to the form:\n%s", p.status, code, p.body)
	}
	for _, x := range u.expressways() {
		if x.ID == e.ID && x.Address != got.Address {
			t.Errorf("a refused edit changed the entry: %+v", x)
		}
	}
	// An entry that does not exist.
	if p := u.get("/ui/expressway/999999"); p.status != http.StatusNotFound || strings.Contains(p.body, `id="edit-expressway"`) {
		t.Errorf("the edit page of no entry: HTTP %d, want 404 without a form", p.status)
	}
	code, refusal = apiRefusal(t, u.env, http.MethodPut, "/api/v1/expressway/999999", admin.ExpresswayEntryView{Address: "x.example.com", Names: []string{"x.example.com"}})
	if p := u.post("/ui/expressway/999999", url.Values{"csrf": {tok}, "address": {"x.example.com"}, "names": {"x.example.com"}}); p.status != code || !strings.Contains(p.body, html.EscapeString(refusal)) {
		t.Errorf("saving an entry that does not exist: HTTP %d (API %d), page lacks %q", p.status, code, refusal)
	}
}

// Every form of these pages without the session's CSRF token gets 403 and
// changes nothing: no device or entry changed, nothing audited.
func TestDeviceFormsWithoutCSRFRefused(t *testing.T) {
	u := startUI(t, testenv.Options{})
	u.login(account, password)
	const name = "SEP001122334401"
	before, _ := u.device(name)
	entries := u.expressways()
	id := itoa(entries[0].ID)
	changed := before
	changed.Line = "3333"
	for _, tok := range []string{"", strings.Repeat("0", 64)} {
		newPhone := phoneForm(tok, changed)
		newPhone.Set("name", "SEPCSRF")
		for path, f := range map[string]url.Values{
			"/ui/phones":                           newPhone,
			"/ui/phones/" + name:                   phoneForm(tok, changed),
			"/ui/phones/" + name + "/apply-config": {"csrf": {tok}},
			"/ui/phones/" + name + "/reset":        {"csrf": {tok}},
			"/ui/phones/" + name + "/delete":       {"csrf": {tok}},
			"/ui/expressway/" + id:                 {"csrf": {tok}, "address": {"csrf.example.com"}, "names": {"csrf.example.com"}},
		} {
			if tok == "" {
				f.Del("csrf")
			}
			if p := u.post(path, f); p.status != http.StatusForbidden {
				t.Errorf("POST %s with CSRF token %q: HTTP %d, want 403", path, tok, p.status)
			}
		}
	}
	if after, code := u.device(name); code != 200 || after != before {
		t.Errorf("CSRF-less forms changed the phone: %+v (HTTP %d), was %+v", after, code, before)
	}
	if _, code := u.device("SEPCSRF"); code != http.StatusNotFound {
		t.Errorf("a CSRF-less form created a phone")
	}
	if after := u.expressways(); after[0].Address != entries[0].Address {
		t.Errorf("a CSRF-less form changed the Expressway-C entry: %+v", after[0])
	}
	for _, a := range []string{"device.set", "device.apply-config", "device.reset", "device.delete", "expressway.edit"} {
		if n := auditCount(t, u.env, a, account); n != 0 {
			t.Errorf("%d %s audited by %s after CSRF-less forms", n, a, account)
		}
	}
}

// In a real browser: Device → Phone → Add new, the S-17 refusal shown
// next to the form, then saved and applied; the Expressway-C entry
// edited from its row's Edit link; the Phone page usable at phone width.
func TestBrowserPhoneAndExpresswayEdit(t *testing.T) {
	ctx := browser(t)
	u := startUI(t, testenv.Options{})
	dir := screenshotDir(t)
	const name = "SEPB0B0B0B0B001"
	do(t, ctx, "logging in", chromedp.Navigate(u.base+"/ui/login"), chromedp.WaitVisible(chromedp.ID("account")),
		chromedp.SendKeys(chromedp.ID("account"), account), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")), chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main menu"]`)))

	do(t, ctx, "adding a phone without its MRA service domain",
		chromedp.Click(chromedp.CSS(`a[href="/ui/phones"]`)), chromedp.WaitVisible(chromedp.ID("add-phone")),
		chromedp.Click(chromedp.ID("add-phone")), chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name), chromedp.SendKeys(chromedp.ID("model"), "8845"),
		chromedp.SendKeys(chromedp.ID("line"), "4001"), chromedp.SetValue(chromedp.ID("profile"), quickstart.ProfileName),
		chromedp.Click(chromedp.ID("allow-mra")), chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("phone-error")))
	if e := get(t, ctx, "refusal", chromedp.Text(chromedp.ID("phone-error"))); e != "S-17: Allow Activation Code via MRA needs an Activation Code MRA Service Domain" {
		t.Errorf("refusal shown: %q", e)
	}
	do(t, ctx, "saving with the domain, then Apply Config",
		chromedp.SendKeys(chromedp.ID("mra-domain"), quickstart.Domain), chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("apply-config")), chromedp.Click(chromedp.ID("apply-config")),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="phone-status" and starts-with(., "Apply Config: 0 ")]`)))
	if v, code := u.device(name); code != 200 || !v.AllowMRA || v.MRAServiceDomain != quickstart.Domain || v.Line != "4001" {
		t.Errorf("the phone saved in the browser: %+v (HTTP %d)", v, code)
	}
	shot(t, ctx, dir, "phone")
	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("save")))
	if get(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`)) {
		t.Errorf("the Phone page scrolls sideways at phone width")
	}
	do(t, ctx, "desktop width", chromedp.EmulateViewport(1200, 900))

	e := u.expressways()[0]
	do(t, ctx, "editing the Expressway-C entry",
		chromedp.Click(chromedp.CSS(`a[href="/ui/expressway"]`)), chromedp.WaitVisible(chromedp.ID("edit-"+itoa(e.ID))),
		chromedp.Click(chromedp.ID("edit-"+itoa(e.ID))), chromedp.WaitVisible(chromedp.ID("description")),
		chromedp.SetValue(chromedp.ID("description"), "edited in the browser"), chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("edit-status")))
	if got := u.expressways()[0]; got.Description != "edited in the browser" || got.Address != e.Address {
		t.Errorf("the entry edited in the browser: %+v", got)
	}
}
