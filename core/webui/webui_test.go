package webui_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/webui"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/testenv"
)

const (
	account  = "alice"
	password = "correct horse battery staple"
)

// ui is a browser without a browser: a cookie jar and the dev CA, against
// a real core and edge on loopback (testenv).
type ui struct {
	t    *testing.T
	env  *testenv.Env
	base string
	c    *http.Client
}

// startUI starts core and edge and creates the admin account alice
// through the API with the bootstrap token.
func startUI(t *testing.T, o testenv.Options) *ui {
	t.Helper()
	return uiOn(t, testenv.Start(t, o))
}

// uiOn creates the admin account alice on a running env.
func uiOn(t *testing.T, env *testenv.Env) *ui {
	t.Helper()
	if code, b := env.Admin(t, http.MethodPut, "/api/v1/accounts/"+account, map[string]string{"password": password}); code != http.StatusNoContent {
		t.Fatalf("creating the admin account: HTTP %d %s", code, b)
	}
	return &ui{t: t, env: env, base: env.Info.CoreHTTPS, c: newClient(t, env)}
}

func newClient(t *testing.T, env *testenv.Env) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.CA, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Jar: jar}
}

type page struct {
	status int
	header http.Header
	body   string
	url    *url.URL
}

func (u *ui) do(req *http.Request) page {
	u.t.Helper()
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(b), url: resp.Request.URL}
}

func (u *ui) get(path string) page {
	u.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u.base+path, nil)
	return u.do(req)
}

func (u *ui) post(path string, form url.Values) page {
	u.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return u.do(req)
}

func (u *ui) login(user, pass string) page {
	u.t.Helper()
	return u.post("/ui/login", url.Values{"account": {user}, "password": {pass}})
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf is the CSRF token a page's forms carry.
func csrf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token on %s:\n%s", p.url, p.body)
	}
	return m[1]
}

func (u *ui) expressways() []admin.ExpresswayEntryView {
	u.t.Helper()
	code, b := u.env.Admin(u.t, http.MethodGet, "/api/v1/expressway", nil)
	if code != 200 {
		u.t.Fatalf("expressway list: HTTP %d %s", code, b)
	}
	var out []admin.ExpresswayEntryView
	if err := json.Unmarshal(b, &out); err != nil {
		u.t.Fatal(err)
	}
	return out
}

func (u *ui) sessionCookie() *http.Cookie {
	base, _ := url.Parse(u.base + webui.Prefix)
	for _, c := range u.c.Jar.Cookies(base) {
		if c.Name == webui.CookieName {
			return c
		}
	}
	return nil
}

// The login form is the API's password login: the session cookie is a
// login API token, Secure, HttpOnly, SameSite=Strict, scoped to /ui/, and
// the login is audited as the API audits one.
func TestLoginSetsSecureSessionCookie(t *testing.T) {
	u := startUI(t, testenv.Options{})
	// Look at the answer itself, not the page it redirects to.
	u.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	p := u.login(account, password)
	if p.status != http.StatusSeeOther {
		t.Fatalf("login: HTTP %d, want 303:\n%s", p.status, p.body)
	}
	var c *http.Cookie
	for _, sc := range (&http.Response{Header: p.header}).Cookies() {
		if sc.Name == webui.CookieName {
			c = sc
		}
	}
	if c == nil {
		t.Fatalf("login set no %s cookie: %v", webui.CookieName, p.header.Values("Set-Cookie"))
	}
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" {
		t.Errorf("session cookie %q: Secure %v HttpOnly %v SameSite %v Path %q; want Secure, HttpOnly, Strict, /ui/",
			p.header.Get("Set-Cookie"), c.Secure, c.HttpOnly, c.SameSite, c.Path)
	}
	// The cookie is a login API token of alice, as POST /api/v1/auth/tokens makes.
	tok, err := u.env.Store.APITokenByHash(context.Background(), sha(c.Value), time.Now())
	if err != nil {
		t.Fatalf("the cookie is no API token the store knows: %v", err)
	}
	if !tok.Login || tok.Owner != account || tok.Parent != "" {
		t.Errorf("session token %+v: want a login token of %s", tok, account)
	}
	if ttl := tok.ExpiresAt.Sub(tok.CreatedAt); ttl < admin.LoginTokenTTL-time.Second || ttl > admin.LoginTokenTTL {
		t.Errorf("session token lives %v, want LoginTokenTTL %v", ttl, admin.LoginTokenTTL)
	}
	// The token works on the API too: it is the API's own credential.
	if code, b := u.env.AdminAs(t, c.Value, http.MethodGet, "/api/v1/expressway", nil); code != 200 {
		t.Errorf("the session token on the API: HTTP %d %s", code, b)
	}
	if !auditHas(t, u.env, "auth.token-create", account+" (password login)", tok.ID) {
		t.Errorf("the web login is not audited as auth.token-create by %q", account+" (password login)")
	}
}

func sha(raw string) []byte { s := sha256.Sum256([]byte(raw)); return s[:] }

// auditEntries are the audit log's entries as the API lists them.
func auditEntries(t *testing.T, env *testenv.Env) []admin.AuditView {
	t.Helper()
	code, b := env.Admin(t, http.MethodGet, "/api/v1/audit", nil)
	if code != 200 {
		t.Fatalf("audit: HTTP %d %s", code, b)
	}
	var es []admin.AuditView
	if err := json.Unmarshal(b, &es); err != nil {
		t.Fatal(err)
	}
	return es
}

func auditHas(t *testing.T, env *testenv.Env, action, actor, detail string) bool {
	t.Helper()
	for _, e := range auditEntries(t, env) {
		if e.Action == action && strings.HasPrefix(e.Actor, actor) && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

// A wrong password gets the API's own refusal, on the login page, and
// no cookie.
func TestLoginRefusalIsTheAPIs(t *testing.T) {
	u := startUI(t, testenv.Options{})
	req, _ := http.NewRequest(http.MethodPost, u.base+"/api/v1/auth/tokens", nil)
	req.SetBasicAuth(account, "wrong password!")
	api := u.do(req)
	var apiErr struct{ Error string }
	if err := json.Unmarshal([]byte(api.body), &apiErr); err != nil || api.status != http.StatusUnauthorized {
		t.Fatalf("API login with a wrong password: HTTP %d %s", api.status, api.body)
	}
	p := u.login(account, "wrong password!")
	if p.status != api.status {
		t.Errorf("web login with a wrong password: HTTP %d, the API answers %d", p.status, api.status)
	}
	if !strings.Contains(p.body, `id="login-error"`) || !strings.Contains(p.body, html.EscapeString(apiErr.Error)) {
		t.Errorf("the login page does not show the API's refusal %q:\n%s", apiErr.Error, p.body)
	}
	if !strings.Contains(p.body, `aria-describedby="login-error"`) {
		t.Errorf("the error is not linked to the inputs with aria-describedby")
	}
	if u.sessionCookie() != nil {
		t.Errorf("a refused login set a session cookie")
	}
}

// CSRF: a state-changing form without the session's token, or with a
// wrong one, gets 403 and changes nothing; with it, the same form works.
func TestFormWithoutCSRFIsRefused(t *testing.T) {
	u := startUI(t, testenv.Options{})
	home := u.login(account, password)
	if home.status != 200 || home.url.Path != "/ui/expressway" {
		t.Fatalf("after login: HTTP %d at %s", home.status, home.url)
	}
	before := u.expressways()
	entry := url.Values{"address": {"expc2.example.com"}, "names": {"expc2.example.com"}, "description": {"csrf test"}}
	for name, tok := range map[string]string{"no token": "", "wrong token": strings.Repeat("0", 64), "another session's": csrfOfOtherSession(t, u)} {
		f := url.Values{}
		for k, v := range entry {
			f[k] = v
		}
		if tok != "" {
			f.Set("csrf", tok)
		}
		if p := u.post("/ui/expressway", f); p.status != http.StatusForbidden {
			t.Errorf("add with %s: HTTP %d, want 403", name, p.status)
		}
		if len(before) > 0 {
			if p := u.post("/ui/expressway/"+itoa(before[0].ID)+"/delete", url.Values{"csrf": {tok}}); p.status != http.StatusForbidden {
				t.Errorf("delete with %s: HTTP %d, want 403", name, p.status)
			}
		}
		if p := u.post("/ui/logout", url.Values{"csrf": {tok}}); p.status != http.StatusForbidden {
			t.Errorf("logout with %s: HTTP %d, want 403", name, p.status)
		}
	}
	if after := u.expressways(); len(after) != len(before) {
		t.Fatalf("forms without a valid CSRF token changed the Expressway-C list: %d entries, were %d", len(after), len(before))
	}
	// The same form with the page's token is accepted.
	entry.Set("csrf", csrf(t, home))
	if p := u.post("/ui/expressway", entry); p.status != 200 || !strings.Contains(p.body, "expc2.example.com") {
		t.Fatalf("add with the CSRF token: HTTP %d\n%s", p.status, p.body)
	}
	if after := u.expressways(); len(after) != len(before)+1 {
		t.Fatalf("after a valid add: %d entries, want %d", len(after), len(before)+1)
	}
}

// csrfOfOtherSession logs bob in and returns his pages' CSRF token.
func csrfOfOtherSession(t *testing.T, u *ui) string {
	t.Helper()
	if code, b := u.env.Admin(t, http.MethodPut, "/api/v1/accounts/bob", map[string]string{"password": password}); code != http.StatusNoContent {
		t.Fatalf("account bob: HTTP %d %s", code, b)
	}
	other := &ui{t: t, env: u.env, base: u.base, c: newClient(t, u.env)}
	return csrf(t, other.login("bob", password))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A wrong input gets the API's own refusal, naming the rule (S-12), next
// to the form, and nothing is added.
func TestWrongInputShowsTheAPIsRefusal(t *testing.T) {
	u := startUI(t, testenv.Options{})
	home := u.login(account, password)
	before := u.expressways()
	code, b := u.env.Admin(t, http.MethodPost, "/api/v1/expressway", map[string]any{"address": "expc3.example.com"})
	var apiErr struct{ Error string }
	if err := json.Unmarshal(b, &apiErr); err != nil || code != http.StatusBadRequest || !strings.HasPrefix(apiErr.Error, "S-12: ") {
		t.Fatalf("API add without names: HTTP %d %s", code, b)
	}
	p := u.post("/ui/expressway", url.Values{"csrf": {csrf(t, home)}, "address": {"expc3.example.com"}, "names": {"  "}})
	if p.status != code {
		t.Errorf("web add without names: HTTP %d, the API answers %d", p.status, code)
	}
	if !strings.Contains(p.body, `<p id="add-error" class="error" role="alert">`+html.EscapeString(apiErr.Error)+`</p>`) {
		t.Errorf("the page does not show the API's refusal %q next to the form:\n%s", apiErr.Error, p.body)
	}
	if !strings.Contains(p.body, `aria-describedby="add-error"`) || !strings.Contains(p.body, `value="expc3.example.com"`) {
		t.Errorf("the refused form lost its input or its aria-describedby link")
	}
	if after := u.expressways(); len(after) != len(before) {
		t.Errorf("a refused add changed the list: %d entries, were %d", len(after), len(before))
	}
	// Issuing a code for a device that does not exist: the API's 404 text.
	code, b = u.env.Admin(t, http.MethodPost, "/api/v1/activation", map[string]string{"device": "SEPNOSUCH"})
	_ = json.Unmarshal(b, &apiErr)
	p = u.post("/ui/activation", url.Values{"csrf": {csrf(t, home)}, "device": {"SEPNOSUCH"}})
	if p.status != code || !strings.Contains(p.body, html.EscapeString(apiErr.Error)) {
		t.Errorf("issuing for an unknown device: HTTP %d (API %d), page lacks %q", p.status, code, apiErr.Error)
	}
}

// Every /ui/ response carries the CSP and the other security headers.
func TestSecurityHeadersOnEveryPage(t *testing.T) {
	u := startUI(t, testenv.Options{})
	check := func(what string, p page) {
		t.Helper()
		for h, want := range map[string]string{
			"Content-Security-Policy": webui.CSP, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
			"X-Frame-Options": "DENY", "Strict-Transport-Security": webui.HSTS,
		} {
			if got := p.header.Get(h); got != want {
				t.Errorf("%s (%s, HTTP %d): %s = %q, want %q", what, p.url.Path, p.status, h, got, want)
			}
		}
	}
	check("login page", u.get("/ui/login"))
	check("refused login", u.login(account, "nope"))
	check("stylesheet", u.get("/ui/static/style.css"))
	home := u.login(account, password)
	check("after login", home)
	// Every page of the menu, as the menu lists them.
	menu := menuLinks(t, home)
	if len(menu) < 4 {
		t.Fatalf("the menu lists %d pages: %v", len(menu), menu)
	}
	for _, path := range append(menu, "/ui/registrations?page=3&aor=x", "/ui/nope") {
		check(path, u.get(path))
	}
	check("CSRF refusal", u.post("/ui/expressway", url.Values{}))
	// No inline script or style anywhere on the pages.
	for _, path := range append(menu, "/ui/login") {
		body := u.get(path).body
		if strings.Contains(body, "<script>") || strings.Contains(body, "<style") || strings.Contains(body, " style=") || strings.Contains(body, " onclick=") {
			t.Errorf("%s has inline script or style", path)
		}
	}
	if p := u.get("/"); p.url.Path != "/ui/expressway" {
		t.Errorf("/ leads to %s, want the UI", p.url.Path)
	}
}

var menuRE = regexp.MustCompile(`<li><a href="(/ui/[^"]*)"`)

// menuLinks are the pages the menu of p links to.
func menuLinks(t *testing.T, p page) []string {
	t.Helper()
	var out []string
	for _, m := range menuRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

// The login form is throttled as the API's password login is: after the
// wrong guesses the API allows, the page answers 429 with Retry-After
// and the API's words, and the right password is refused too until then.
func TestLoginThrottledLikeTheAPI(t *testing.T) {
	u := startUI(t, testenv.Options{})
	var last page
	for i := 0; i < 20 && last.status != http.StatusTooManyRequests; i++ {
		last = u.login(account, "wrong password!")
	}
	if last.status != http.StatusTooManyRequests {
		t.Fatalf("20 wrong passwords through the form: last HTTP %d, want 429", last.status)
	}
	if last.header.Get("Retry-After") == "" || !strings.Contains(last.body, `id="login-error"`) {
		t.Errorf("the 429 page lacks Retry-After (%q) or the error text:\n%s", last.header.Get("Retry-After"), last.body)
	}
	if p := u.login(account, password); p.status != http.StatusTooManyRequests || u.sessionCookie() != nil {
		t.Errorf("the right password while throttled: HTTP %d, cookie %v; want 429 and no session", p.status, u.sessionCookie())
	}
	// The API sees the same throttle: it is one budget, not two.
	req, _ := http.NewRequest(http.MethodPost, u.base+"/api/v1/auth/tokens", nil)
	req.SetBasicAuth(account, password)
	if p := u.do(req); p.status != http.StatusTooManyRequests {
		t.Errorf("the API's login after the form's throttle: HTTP %d, want 429", p.status)
	}
}

// A session ends at logout (its token revoked through the API) and at its
// token's expiry: either way the pages send the browser to the login page.
func TestSessionEndsAtLogoutAndExpiry(t *testing.T) {
	u := startUI(t, testenv.Options{})
	if p := u.get("/ui/registrations"); p.url.Path != "/ui/login" {
		t.Fatalf("without a session: at %s, want the login page", p.url.Path)
	}
	home := u.login(account, password)
	old := u.sessionCookie()
	if old == nil {
		t.Fatal("no session cookie after login")
	}
	if p := u.post("/ui/logout", url.Values{"csrf": {csrf(t, home)}}); p.url.Path != "/ui/login" {
		t.Fatalf("logout leads to %s", p.url.Path)
	}
	if code, _ := u.env.AdminAs(t, old.Value, http.MethodGet, "/api/v1/expressway", nil); code != http.StatusUnauthorized {
		t.Errorf("the logged-out session's token on the API: HTTP %d, want 401 (revoked)", code)
	}
	// The old cookie, presented again, is refused.
	base, _ := url.Parse(u.base + webui.Prefix)
	u.c.Jar.SetCookies(base, []*http.Cookie{{Name: webui.CookieName, Value: old.Value, Path: "/ui/", Secure: true}})
	p := u.get("/ui/expressway")
	if p.url.Path != "/ui/login" || !strings.Contains(p.body, "unknown or revoked API token") {
		t.Errorf("a logged-out session's cookie: at %s, want the login page saying the token is revoked:\n%s", p.url.Path, p.body)
	}
	if !auditHas(t, u.env, "auth.token-revoke", account, "") {
		t.Errorf("logout is not audited as auth.token-revoke")
	}

	// An expired login token.
	const raw = "ewa_expired-session-token-for-the-web-ui-test"
	now := time.Now()
	if err := u.env.Store.PutAPIToken(context.Background(), store.APIToken{ID: "expired1", Hash: sha(raw), Name: "web UI login", Owner: account,
		Login: true, CreatedAt: now.Add(-13 * time.Hour), ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	u.c.Jar.SetCookies(base, []*http.Cookie{{Name: webui.CookieName, Value: raw, Path: "/ui/", Secure: true}})
	p = u.get("/ui/audit")
	if p.url.Path != "/ui/login" || !strings.Contains(p.body, "expired") {
		t.Errorf("an expired session: at %s, want the login page saying it expired:\n%s", p.url.Path, p.body)
	}
	if p := u.post("/ui/expressway", url.Values{"address": {"x"}, "names": {"x"}}); p.url.Path != "/ui/login" {
		t.Errorf("a POST with an expired session: at %s, want the login page", p.url.Path)
	}
}

// The audit log pages 50 entries at a time (?page=N, kept in range) and
// filters them, keeping the filter in the page links.
func TestAuditPagingAndFilter(t *testing.T) {
	u := startUI(t, testenv.Options{})
	ctx := context.Background()
	for i := range 120 {
		if err := u.env.Store.Audit(ctx, store.AuditEntry{At: time.Now(), Actor: "paging test", Action: "test.paging", Detail: "n=" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	u.login(account, password)
	rows := func(p page) int { return strings.Count(p.body, "<td>test.paging</td>") }
	p := u.get("/ui/audit?q=test.paging")
	if n := rows(p); n != webui.PageSize || !strings.Contains(p.body, "Entries: 120, newest first; page 1 of 3") {
		t.Fatalf("page 1: %d rows, want %d of 120 on 3 pages:\n%s", n, webui.PageSize, p.body)
	}
	if !strings.Contains(p.body, `href="/ui/audit?page=2&amp;q=test.paging" rel="next"`) || strings.Contains(p.body, `rel="prev"`) {
		t.Errorf("page 1's links do not lead to page 2 with the filter kept")
	}
	if p := u.get("/ui/audit?q=test.paging&page=3"); rows(p) != 20 || strings.Contains(p.body, `rel="next"`) {
		t.Errorf("page 3: %d rows, want the last 20 and no next link", rows(p))
	}
	if p := u.get("/ui/audit?q=test.paging&page=99"); !strings.Contains(p.body, "page 3 of 3") {
		t.Errorf("page 99 is not kept to the last page")
	}
	if p := u.get("/ui/audit?q=n%3D7"); rows(p) != 11 { // n=7, n=70..79
		t.Errorf("filter n=7: %d rows, want 11", rows(p))
	}
	// The registrations page filters the same way (by device here; none).
	if p := u.get("/ui/registrations?device=SEPNOSUCH&page=2"); !strings.Contains(p.body, "Bindings: 0; page 1 of 1") {
		t.Errorf("registrations filtered to an unknown device:\n%s", p.body)
	}
}

// A login form posted from another site is refused (login CSRF), and the
// pages are not reachable through the edge (only the OAuth endpoints are
// proxied, S-12).
func TestLoginFromAnotherSiteAndThroughTheEdgeRefused(t *testing.T) {
	u := startUI(t, testenv.Options{})
	for _, h := range []map[string]string{{"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site", "Origin": "null"}} {
		req, _ := http.NewRequest(http.MethodPost, u.base+"/ui/login", strings.NewReader(url.Values{"account": {account}, "password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		if p := u.do(req); p.status != http.StatusForbidden || u.sessionCookie() != nil {
			t.Errorf("login posted with %v: HTTP %d, cookie %v; want 403 and none", h, p.status, u.sessionCookie())
		}
	}
	// The same login from the page's own origin works.
	req, _ := http.NewRequest(http.MethodPost, u.base+"/ui/login", strings.NewReader(url.Values{"account": {account}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if p := u.do(req); p.status != 200 || u.sessionCookie() == nil {
		t.Fatalf("same-origin login: HTTP %d, cookie %v", p.status, u.sessionCookie())
	}
	edge := &ui{t: t, env: u.env, base: u.env.Info.EdgeHTTPS, c: newClient(t, u.env)}
	for _, path := range []string{"/ui/login", "/ui/expressway", "/"} {
		if p := edge.get(path); p.status != http.StatusNotFound || strings.Contains(p.body, "Edgeway administration") {
			t.Errorf("GET %s through the edge: HTTP %d, want 404", path, p.status)
		}
	}
}

// Delete (an Expressway-C entry) and revoke (an activation code) are
// POSTs with the CSRF token, carried out and audited by the API.
func TestDeleteAndRevokeThroughForms(t *testing.T) {
	u := startUI(t, testenv.Options{})
	home := u.login(account, password)
	tok := csrf(t, home)
	before := u.expressways()
	if len(before) == 0 {
		t.Fatal("quickstart provisioned no Expressway-C entry")
	}
	id := before[0].ID
	if p := u.post("/ui/expressway/"+itoa(id)+"/delete", url.Values{"csrf": {tok}}); p.status != 200 || p.url.Path != "/ui/expressway" {
		t.Fatalf("delete: HTTP %d at %s", p.status, p.url)
	}
	if after := u.expressways(); len(after) != len(before)-1 {
		t.Fatalf("after delete: %d entries, want %d", len(after), len(before)-1)
	}
	if !auditHas(t, u.env, "expressway.delete", account+" (token", "id="+itoa(id)) {
		t.Errorf("the delete is not audited by %s as the API audits it", account)
	}
	// Deleting it again: the API's 404, shown on the page.
	if p := u.post("/ui/expressway/"+itoa(id)+"/delete", url.Values{"csrf": {tok}}); p.status != http.StatusNotFound || !strings.Contains(p.body, `class="error"`) {
		t.Errorf("deleting a deleted entry: HTTP %d, want the API's 404 on the page", p.status)
	}

	code, b := u.env.Admin(t, http.MethodGet, "/api/v1/activation?device=SEP001122334402", nil)
	var codes []admin.CodeView
	if err := json.Unmarshal(b, &codes); err != nil || code != 200 || len(codes) == 0 {
		t.Fatalf("codes: HTTP %d %s", code, b)
	}
	if p := u.post("/ui/activation/"+url.PathEscape(codes[0].ID)+"/revoke", url.Values{"csrf": {tok}}); p.status != 200 || p.url.Path != "/ui/activation" {
		t.Fatalf("revoke: HTTP %d at %s", p.status, p.url)
	}
	_, b = u.env.Admin(t, http.MethodGet, "/api/v1/activation?device=SEP001122334402", nil)
	_ = json.Unmarshal(b, &codes)
	if codes[0].State != "revoked" {
		t.Errorf("after revoke through the page the code is %q", codes[0].State)
	}
}

// Text stored through the API is shown escaped: an Expressway-C entry
// whose description is markup, and an audit entry quoting it, cannot run
// script or add elements on the pages (html/template's escaping).
func TestStoredMarkupIsEscaped(t *testing.T) {
	u := startUI(t, testenv.Options{})
	const evil = `<script src="/ui/static/x.js"></script><img src=x onerror=alert(1)>`
	if code, b := u.env.Admin(t, http.MethodPost, "/api/v1/expressway", map[string]any{
		"address": "expc-x.example.com", "names": []string{"expc-x.example.com"}, "description": evil}); code != http.StatusCreated {
		t.Fatalf("adding the entry through the API: HTTP %d %s", code, b)
	}
	u.login(account, password)
	for _, path := range []string{"/ui/expressway", "/ui/audit"} {
		p := u.get(path)
		if p.status != http.StatusOK {
			t.Fatalf("%s: HTTP %d", path, p.status)
		}
		if strings.Contains(p.body, "<script src=") || strings.Contains(p.body, "<img src=x") {
			t.Errorf("%s shows the stored markup unescaped", path)
		}
		if path == "/ui/expressway" && !strings.Contains(p.body, html.EscapeString(evil)) {
			t.Errorf("%s does not show the description as text", path)
		}
	}
}

var (
	controlRE = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	attrRE    = regexp.MustCompile(`\b(id|type|aria-label|aria-labelledby)="([^"]*)"`)
)

// Every form control on every page the menu lists (and the forms that
// need a row to show: a phone, an Expressway-C entry) has a label: a
// <label for> naming its id, or an aria-label, so that screen readers
// say what each field is and a click on the label focuses it.
func TestEveryFormControlHasALabel(t *testing.T) {
	u := startUI(t, testenv.Options{})
	home := u.login(account, password)
	pages := append(menuLinks(t, home), "/ui/phones/new", "/ui/phones/SEP001122334401", "/ui/login")
	for _, e := range u.expressways() {
		pages = append(pages, "/ui/expressway/"+itoa(e.ID))
	}
	for _, path := range pages {
		p := u.get(path)
		if p.status != http.StatusOK {
			t.Errorf("%s: HTTP %d", path, p.status)
			continue
		}
		for _, c := range controlRE.FindAllString(p.body, -1) {
			attrs := map[string]string{}
			for _, a := range attrRE.FindAllStringSubmatch(c, -1) {
				attrs[a[1]] = a[2]
			}
			switch attrs["type"] {
			case "hidden", "submit", "button":
				continue
			}
			if attrs["aria-label"] != "" || attrs["aria-labelledby"] != "" {
				continue
			}
			if id := attrs["id"]; id == "" || !strings.Contains(p.body, `<label for="`+id+`"`) {
				t.Errorf("%s: a control without a label: %s", path, c)
			}
		}
	}
}
