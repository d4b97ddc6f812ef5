package webui

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/edgeway/edgeway/core/admin"
)

// page is one page of the UI: its template (templates/<Name>.html,
// rendered inside layout.html), its title, the rule it implements (shown
// under its heading) and where the menu lists it.
type page struct {
	Name  string
	Title string
	Rule  string
	Label string // the menu's text; "" is Title
	Menu  string // the menu group; "" keeps it out of the menu
	Path  string // the menu's link
}

// menuGroups is the menu's order, after Unified CM Administration's.
var menuGroups = []string{"System", "Device", "User Management", "Certificates", "Monitoring"}

// basePages are the pages of this file; each area's file adds its own
// list (system.go, device.go, users.go, certs.go), so the menu and the templates
// are all read from allPages.
var basePages = []page{
	{Name: "login", Title: "Log in", Rule: "Admin login: the admin API's password login (POST /api/v1/auth/tokens), throttled and audited like it"},
	{Name: "expressway", Title: "Device → Expressway-C", Label: "Expressway-C", Menu: "Device", Path: "/ui/expressway",
		Rule: "S-12: an edge is admitted only if an Expressway-C entry lists a name its certificate presents; Find lists the names edges presented"},
	{Name: "activation", Title: "Activation codes", Menu: "Device", Path: "/ui/activation",
		Rule: "S-17: an activation code onboards one device once, before it expires; issuing a new code replaces the old one"},
	{Name: "registrations", Title: "Live registrations", Menu: "Monitoring", Path: "/ui/registrations",
		Rule: "Live registrations: the bindings of the location service (RFC 3261 §10, outbound flows RFC 5626) on this cluster"},
	{Name: "audit", Title: "Audit log", Menu: "Monitoring", Path: "/ui/audit",
		Rule: "Audit log: every administrative change, by whom and when (issue 9)"},
}

func allPages() []page {
	return slices.Concat(basePages, systemPages, devicePages, userPages, certPages, deviceGrantPages)
}

// menuGroup is one heading of the menu with its pages.
type menuGroup struct {
	Name  string
	Pages []page
}

func buildMenu(pages []page) []menuGroup {
	var out []menuGroup
	for _, g := range menuGroups {
		mg := menuGroup{Name: g}
		for _, p := range pages {
			if p.Menu == g {
				mg.Pages = append(mg.Pages, p)
			}
		}
		if len(mg.Pages) > 0 {
			out = append(out, mg)
		}
	}
	return out
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"join": strings.Join,
}

func parsePages(pages []page) (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, p := range pages {
		if _, dup := out[p.Name]; dup {
			return nil, fmt.Errorf("webui: two pages named %s", p.Name)
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p.Name+".html")
		if err != nil {
			return nil, fmt.Errorf("webui: template %s: %w", p.Name, err)
		}
		out[p.Name] = t
	}
	return out, nil
}

// pageData is what layout.html gets.
type pageData struct {
	Page, Title, Rule string
	User, CSRF        string
	Menu              []menuGroup
	Data              any
}

// render writes a page; templates are executed into a buffer first so a
// failure is a clean 500.
func (u *UI) render(w http.ResponseWriter, status int, page string, s *session, data any) {
	p := u.byName[page]
	pd := pageData{Page: page, Title: p.Title, Rule: p.Rule, Data: data}
	if s != nil {
		pd.User, pd.CSRF, pd.Menu = s.token.Owner, s.csrf, u.menu
	}
	var b bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&b, "layout", pd); err != nil {
		u.log.Error("web UI: rendering", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// --- Device → Expressway-C (S-12) ---

type expresswayData struct {
	Entries              []admin.ExpresswayEntryView
	Found                []admin.FoundName
	Address, Names, Desc string
	Error, LoadError     string
}

func (u *UI) expresswayPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderExpressway(w, r, s, http.StatusOK, expresswayData{})
}

func (u *UI) renderExpressway(w http.ResponseWriter, r *http.Request, s *session, status int, d expresswayData) {
	if err := u.call(r, s, http.MethodGet, "/api/v1/expressway", nil).decode(&d.Entries); err != nil {
		d.LoadError = err.Error()
	}
	if err := u.call(r, s, http.MethodGet, "/api/v1/expressway/find", nil).decode(&d.Found); err != nil && d.LoadError == "" {
		d.LoadError = err.Error()
	}
	u.render(w, status, "expressway", s, d)
}

// splitNames reads the names field: names separated by commas, spaces or
// lines. An empty field is no names, which the API refuses (S-12).
func splitNames(v string) []string {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(f) == 0 {
		return nil
	}
	return f
}

func (u *UI) expresswayAdd(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	v := admin.ExpresswayEntryView{Address: strings.TrimSpace(f.Get("address")), Names: splitNames(f.Get("names")), Description: strings.TrimSpace(f.Get("description"))}
	res := u.call(r, s, http.MethodPost, "/api/v1/expressway", v)
	if !res.ok() {
		u.renderExpressway(w, r, s, res.status, expresswayData{Address: f.Get("address"), Names: f.Get("names"), Desc: f.Get("description"), Error: res.err})
		return
	}
	http.Redirect(w, r, "/ui/expressway", http.StatusSeeOther)
}

func (u *UI) expresswayDelete(w http.ResponseWriter, r *http.Request, s *session) {
	res := u.call(r, s, http.MethodDelete, "/api/v1/expressway/"+url.PathEscape(r.PathValue("id")), nil)
	if !res.ok() {
		u.renderExpressway(w, r, s, res.status, expresswayData{Error: res.err})
		return
	}
	http.Redirect(w, r, "/ui/expressway", http.StatusSeeOther)
}

// --- Activation codes (S-17) ---

type activationData struct {
	Devices   []admin.DeviceView
	Codes     []admin.CodeView
	Device    string
	Issued    *admin.IssuedCode
	QR        template.URL // data:image/png;base64,… of the issued code
	Error     string
	LoadError string
}

func (u *UI) activationPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderActivation(w, r, s, http.StatusOK, activationData{Device: r.URL.Query().Get("device")})
}

func (u *UI) renderActivation(w http.ResponseWriter, r *http.Request, s *session, status int, d activationData) {
	if err := u.call(r, s, http.MethodGet, "/api/v1/devices", nil).decode(&d.Devices); err != nil {
		d.LoadError = err.Error()
	}
	if err := u.call(r, s, http.MethodGet, "/api/v1/activation", nil).decode(&d.Codes); err != nil && d.LoadError == "" {
		d.LoadError = err.Error()
	}
	u.render(w, status, "activation", s, d)
}

// qrDataURL is code as a QR code PNG in a data: URL (CSP img-src data:).
func qrDataURL(code string) (template.URL, error) {
	png, err := qrcode.Encode(code, qrcode.Medium, 256)
	if err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), nil
}

func (u *UI) activationIssue(w http.ResponseWriter, r *http.Request, s *session) {
	dev := strings.TrimSpace(r.PostForm.Get("device"))
	res := u.call(r, s, http.MethodPost, "/api/v1/activation", map[string]string{"device": dev})
	d := activationData{Device: dev}
	if !res.ok() {
		d.Error = res.err
		u.renderActivation(w, r, s, res.status, d)
		return
	}
	var is admin.IssuedCode
	if err := res.decode(&is); err != nil {
		d.Error = err.Error()
		u.renderActivation(w, r, s, http.StatusInternalServerError, d)
		return
	}
	qr, err := qrDataURL(is.ActivationCode)
	if err != nil {
		d.Error = "the code was issued but its QR code could not be drawn: " + err.Error()
	}
	d.Issued, d.QR = &is, qr
	// Shown once: the page with the code is the answer to the POST.
	u.renderActivation(w, r, s, http.StatusCreated, d)
}

func (u *UI) activationRevoke(w http.ResponseWriter, r *http.Request, s *session) {
	res := u.call(r, s, http.MethodDelete, "/api/v1/activation/"+url.PathEscape(r.PathValue("id")), nil)
	if !res.ok() {
		u.renderActivation(w, r, s, res.status, activationData{Error: res.err})
		return
	}
	http.Redirect(w, r, "/ui/activation", http.StatusSeeOther)
}

// --- paging ---

// PageSize is the rows a listing shows per page.
const PageSize = 50

type paging struct {
	Page, Pages, Total int
	Prev, Next         string // links, "" when there is none
}

// pageOf cuts rows to the ?page=N asked for (1-based), keeping q in the
// links.
func pageOf[T any](rows []T, r *http.Request, base string, q url.Values) ([]T, paging) {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		n = 1
	}
	pages := max(1, (len(rows)+PageSize-1)/PageSize)
	n = min(n, pages)
	p := paging{Page: n, Pages: pages, Total: len(rows)}
	link := func(k int) string {
		v := url.Values{}
		for key, vals := range q {
			if len(vals) > 0 && vals[0] != "" {
				v.Set(key, vals[0])
			}
		}
		v.Set("page", strconv.Itoa(k))
		return base + "?" + v.Encode()
	}
	if n > 1 {
		p.Prev = link(n - 1)
	}
	if n < pages {
		p.Next = link(n + 1)
	}
	lo, hi := (n-1)*PageSize, min(n*PageSize, len(rows))
	return rows[lo:hi], p
}

// --- Live registrations ---

type registrationsData struct {
	Rows      []admin.RegistrationView
	AOR       string
	Device    string
	Paging    paging
	LoadError string
}

func (u *UI) registrationsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := registrationsData{AOR: strings.TrimSpace(q.Get("aor")), Device: strings.TrimSpace(q.Get("device"))}
	// A whole AOR (sip:…) is the API's own filter; a line number or part
	// of an AOR is matched here.
	path, exact := "/api/v1/registrations", strings.HasPrefix(d.AOR, "sip:") || strings.HasPrefix(d.AOR, "sips:")
	if exact {
		path += "?" + url.Values{"aor": {d.AOR}}.Encode()
	}
	var all []admin.RegistrationView
	res := u.call(r, s, http.MethodGet, path, nil)
	if err := res.decode(&all); err != nil {
		d.LoadError = err.Error()
	}
	if d.Device != "" || (d.AOR != "" && !exact) {
		kept := all[:0]
		for _, g := range all {
			if (d.Device == "" || strings.EqualFold(g.Device, d.Device)) && (exact || strings.Contains(g.AOR, d.AOR)) {
				kept = append(kept, g)
			}
		}
		all = kept
	}
	d.Rows, d.Paging = pageOf(all, r, "/ui/registrations", url.Values{"aor": {d.AOR}, "device": {d.Device}})
	u.render(w, http.StatusOK, "registrations", s, d)
}

// --- Audit log ---

type auditData struct {
	Rows      []admin.AuditView
	Q         string
	Paging    paging
	LoadError string
}

// auditLimit is how many of the newest entries the page reads (the API's
// maximum).
const auditLimit = 10000

func (u *UI) auditPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := auditData{Q: strings.TrimSpace(r.URL.Query().Get("q"))}
	var all []admin.AuditView
	if err := u.call(r, s, http.MethodGet, "/api/v1/audit?limit="+strconv.Itoa(auditLimit), nil).decode(&all); err != nil {
		d.LoadError = err.Error()
	}
	if d.Q != "" {
		q := strings.ToLower(d.Q)
		kept := all[:0]
		for _, e := range all {
			if strings.Contains(strings.ToLower(e.Actor+" "+e.Action+" "+e.Detail), q) {
				kept = append(kept, e)
			}
		}
		all = kept
	}
	d.Rows, d.Paging = pageOf(all, r, "/ui/audit", url.Values{"q": {d.Q}})
	u.render(w, http.StatusOK, "audit", s, d)
}
