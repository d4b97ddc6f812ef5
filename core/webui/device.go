package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/policy"
)

// Device: Phone (S-17, S-19) and the Expressway-C entry's edit page (S-12).

// devicePages are this file's pages (see allPages).
var devicePages = []page{
	{Name: "phones", Title: "Device → Phone", Label: "Phone", Menu: "Device", Path: "/ui/phones",
		Rule: "Find and List Phones: each phone's line, owner and Device Security Profile; a phone onboarded over MRA needs Allow Activation Code via MRA with its service domain (S-17) and an OAuth-enabled SIP profile (S-19)"},
	{Name: "phone", Title: "Phone Configuration",
		Rule: "S-17: Allow Activation Code via MRA needs an Activation Code MRA Service Domain; S-19: the Device Security Profile must be an OAuth-enabled SIP profile (S-15), then Save and Apply Config; S-5: only the listed models may use OAuth"},
	{Name: "expressway-edit", Title: "Expressway-C Configuration",
		Rule: "S-12: an entry's address (IP, hostname or FQDN), description and X.509 subject names / SANs; an edge is admitted only while an entry lists a name its certificate presents; an Expressway-C in another domain needs that domain added"},
}

// deviceRoutes mounts this file's handlers.
func (u *UI) deviceRoutes(m *http.ServeMux) {
	m.Handle("GET /ui/phones", u.session(u.phonesPage))
	m.Handle("GET /ui/phones/new", u.session(u.phoneNewPage))
	m.Handle("POST /ui/phones", u.session(u.phoneCreate))
	m.Handle("GET /ui/phones/{name}", u.session(u.phonePage))
	m.Handle("POST /ui/phones/{name}", u.session(u.phoneSave))
	m.Handle("POST /ui/phones/{name}/apply-config", u.session(u.phoneAction("apply-config")))
	m.Handle("POST /ui/phones/{name}/reset", u.session(u.phoneAction("reset")))
	m.Handle("POST /ui/phones/{name}/delete", u.session(u.phoneDelete))
	m.Handle("GET /ui/expressway/{id}", u.session(u.expresswayEditPage))
	m.Handle("POST /ui/expressway/{id}", u.session(u.expresswayEdit))
}

// oauthModels are S-5's device types, offered as the model field's
// suggestions (the API takes any model; OAuth only for these).
var oauthModels = []string{"7811", "7821", "7832", "7841", "7861", "8811", "8832", "8832NR", "8841", "8845",
	"8851", "8851NR", "8861", "8865", "8865NR", "CSF", "TCT", "BOT", "TAB", "UDT"}

// --- Device → Phone: Find and List Phones ---

type phoneRow struct {
	admin.DeviceView
	Bindings int // live registrations
}

type phonesData struct {
	Rows              []phoneRow
	Name, Line, Owner string // the filter
	Deleted           string
	Paging            paging
	LoadError         string
}

// contains is a case-blind substring match; an empty want matches all.
func contains(have, want string) bool {
	return want == "" || strings.Contains(strings.ToLower(have), strings.ToLower(want))
}

func (u *UI) phonesPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := phonesData{Name: strings.TrimSpace(q.Get("name")), Line: strings.TrimSpace(q.Get("line")), Owner: strings.TrimSpace(q.Get("owner")),
		Deleted: q.Get("deleted")}
	var devs []admin.DeviceView
	if err := u.call(r, s, http.MethodGet, "/api/v1/devices", nil).decode(&devs); err != nil {
		d.LoadError = err.Error()
	}
	bound, err := u.bindingsByDevice(r, s)
	if err != nil && d.LoadError == "" {
		d.LoadError = err.Error()
	}
	var rows []phoneRow
	for _, v := range devs {
		if contains(v.Name, d.Name) && contains(v.Line, d.Line) && contains(v.Owner, d.Owner) {
			rows = append(rows, phoneRow{DeviceView: v, Bindings: len(bound[v.Name])})
		}
	}
	d.Rows, d.Paging = pageOf(rows, r, "/ui/phones", url.Values{"name": {d.Name}, "line": {d.Line}, "owner": {d.Owner}})
	u.render(w, http.StatusOK, "phones", s, d)
}

// bindingsByDevice reads the live registrations, by device.
func (u *UI) bindingsByDevice(r *http.Request, s *session) (map[string][]admin.RegistrationView, error) {
	var regs []admin.RegistrationView
	if err := u.call(r, s, http.MethodGet, "/api/v1/registrations", nil).decode(&regs); err != nil {
		return nil, err
	}
	out := map[string][]admin.RegistrationView{}
	for _, g := range regs {
		out[g.Device] = append(out[g.Device], g)
	}
	return out, nil
}

// --- Device → Phone → Phone Configuration (S-17, S-19) ---

type phoneData struct {
	New      bool
	Device   admin.DeviceView // the form's values
	Profiles []admin.ProfileView
	Models   []string
	Bindings []admin.RegistrationView
	Hints    []string // why this phone could get no OAuth token (S-5, S-19)

	Saved     bool
	Done      string // "apply-config" or "reset", after one
	Removed   int    // the bindings it removed, as the API answered
	Error     string // the API's refusal of Save
	ActError  string // the API's refusal of Apply Config, Reset or Delete
	LoadError string
	Missing   bool // the phone could not be read: no form
}

func (u *UI) phoneNewPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderPhone(w, r, s, http.StatusOK, phoneData{New: true})
}

func (u *UI) phonePage(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	d := phoneData{Device: admin.DeviceView{Name: name}}
	res := u.call(r, s, http.MethodGet, "/api/v1/devices/"+url.PathEscape(name), nil)
	if err := res.decode(&d.Device); err != nil {
		d.LoadError, d.Missing = fmt.Sprintf("device %s: %s", name, res.err), true
		u.render(w, res.status, "phone", s, d)
		return
	}
	q := r.URL.Query()
	d.Saved = q.Get("saved") == "1"
	if a := q.Get("done"); a == "apply-config" || a == "reset" {
		d.Done = a
		d.Removed, _ = strconv.Atoi(q.Get("removed"))
	}
	u.renderPhone(w, r, s, http.StatusOK, d)
}

// renderPhone fills in what the form offers (the profiles, S-5's models)
// and, for a stored phone, its live registrations and what would keep it
// from getting an OAuth token.
func (u *UI) renderPhone(w http.ResponseWriter, r *http.Request, s *session, status int, d phoneData) {
	d.Models = oauthModels
	if err := u.call(r, s, http.MethodGet, "/api/v1/profiles", nil).decode(&d.Profiles); err != nil {
		d.LoadError = err.Error()
	}
	if !d.New {
		bound, err := u.bindingsByDevice(r, s)
		if err != nil && d.LoadError == "" {
			d.LoadError = err.Error()
		}
		d.Bindings = bound[d.Device.Name]
		if d.Error == "" {
			d.Hints = oauthHints(d.Device, d.Profiles)
		}
	}
	u.render(w, status, "phone", s, d)
}

// oauthHints says why a saved phone could get no OAuth token, as the OAuth
// server would refuse it (policy.CheckDeviceOAuth): the API saves such a
// phone (it may register without OAuth), so these are notices, not
// refusals.
func oauthHints(d admin.DeviceView, profiles []admin.ProfileView) []string {
	var out []string
	if !policy.OAuthCapable(d.Model) {
		out = append(out, fmt.Sprintf("S-5: model %s cannot use SIP OAuth: this phone gets no token, by activation code or otherwise.", d.Model))
	}
	for _, p := range profiles {
		if p.Name == d.SecurityProfile && !(p.OAuth && strings.EqualFold(p.Mode, "encrypted") && strings.EqualFold(p.Transport, "TLS")) {
			out = append(out, fmt.Sprintf("S-19: profile %q is not an OAuth-enabled SIP profile (S-15: Encrypted, TLS, Enable OAuth Authentication): this phone cannot onboard with an activation code.", p.Name))
		}
	}
	return out
}

// phoneForm reads the Phone Configuration form.
func phoneForm(f url.Values, name string) admin.DeviceView {
	return admin.DeviceView{Name: name, Model: strings.TrimSpace(f.Get("model")), Line: strings.TrimSpace(f.Get("line")),
		Owner: strings.TrimSpace(f.Get("owner")), SecurityProfile: f.Get("profile"),
		AllowMRA: f.Get("allow_mra") != "", MRAServiceDomain: strings.TrimSpace(f.Get("mra_domain"))}
}

// phoneCreate is Save on a new phone: PUT /api/v1/devices/{name} would
// replace a phone of that name, so the page refuses a name in use.
func (u *UI) phoneCreate(w http.ResponseWriter, r *http.Request, s *session) {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	v := phoneForm(r.PostForm, name)
	d := phoneData{New: true, Device: v}
	if name == "" {
		d.Error = "a new phone needs a device name: 1-64 letters, digits, '-' or '_' (e.g. SEP followed by its MAC address)"
		u.renderPhone(w, r, s, http.StatusBadRequest, d)
		return
	}
	switch res := u.call(r, s, http.MethodGet, "/api/v1/devices/"+url.PathEscape(name), nil); {
	case res.ok():
		d.Error = fmt.Sprintf("device %s already exists: open it from the list to change it", name)
		u.renderPhone(w, r, s, http.StatusConflict, d)
		return
	case res.status != http.StatusNotFound:
		d.Error = res.err
		u.renderPhone(w, r, s, res.status, d)
		return
	}
	u.putPhone(w, r, s, d)
}

func (u *UI) phoneSave(w http.ResponseWriter, r *http.Request, s *session) {
	u.putPhone(w, r, s, phoneData{Device: phoneForm(r.PostForm, r.PathValue("name"))})
}

// putPhone is Save (S-19): the API checks the phone against its profile,
// S-5 and S-17, and stores it at once.
func (u *UI) putPhone(w http.ResponseWriter, r *http.Request, s *session, d phoneData) {
	res := u.call(r, s, http.MethodPut, "/api/v1/devices/"+url.PathEscape(d.Device.Name), d.Device)
	if !res.ok() {
		d.Error = res.err
		u.renderPhone(w, r, s, res.status, d)
		return
	}
	http.Redirect(w, r, "/ui/phones/"+url.PathEscape(d.Device.Name)+"?saved=1", http.StatusSeeOther)
}

// phoneAction is Apply Config or Reset (S-15, S-19): the API drops the
// phone's bindings, so it registers again, downloading its config first.
func (u *UI) phoneAction(action string) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		name := r.PathValue("name")
		res := u.call(r, s, http.MethodPost, "/api/v1/devices/"+url.PathEscape(name)+"/"+action, nil)
		var out struct {
			Removed int `json:"bindings_removed"`
		}
		if err := res.decode(&out); err != nil {
			u.phoneRefused(w, r, s, name, res)
			return
		}
		q := url.Values{"done": {action}, "removed": {strconv.Itoa(out.Removed)}}
		http.Redirect(w, r, "/ui/phones/"+url.PathEscape(name)+"?"+q.Encode(), http.StatusSeeOther)
	}
}

// phoneDelete deletes the phone: the API drops its bindings and revokes
// its refresh tokens first.
func (u *UI) phoneDelete(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	res := u.call(r, s, http.MethodDelete, "/api/v1/devices/"+url.PathEscape(name), nil)
	if !res.ok() {
		u.phoneRefused(w, r, s, name, res)
		return
	}
	http.Redirect(w, r, "/ui/phones?"+url.Values{"deleted": {name}}.Encode(), http.StatusSeeOther)
}

// phoneRefused shows the phone's page with the API's refusal of an action.
func (u *UI) phoneRefused(w http.ResponseWriter, r *http.Request, s *session, name string, res apiResult) {
	d := phoneData{Device: admin.DeviceView{Name: name}, ActError: res.err}
	if got := u.call(r, s, http.MethodGet, "/api/v1/devices/"+url.PathEscape(name), nil); got.decode(&d.Device) != nil {
		// The phone is gone (or unreadable): the refusal alone.
		u.render(w, res.status, "phone", s, phoneData{Device: d.Device, ActError: res.err, Missing: true})
		return
	}
	u.renderPhone(w, r, s, res.status, d)
}

// --- Device → Expressway-C → edit (S-12) ---

type expresswayEditData struct {
	ID                            string
	Address, Names, Domains, Desc string
	Saved                         bool
	Error, LoadError              string
}

func (u *UI) expresswayEditPage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	d := expresswayEditData{ID: id, Saved: r.URL.Query().Get("saved") == "1"}
	var all []admin.ExpresswayEntryView
	if err := u.call(r, s, http.MethodGet, "/api/v1/expressway", nil).decode(&all); err != nil {
		d.LoadError = err.Error()
		u.render(w, http.StatusInternalServerError, "expressway-edit", s, d)
		return
	}
	for _, e := range all {
		if strconv.FormatInt(e.ID, 10) == id {
			d.Address, d.Names, d.Domains, d.Desc = e.Address, strings.Join(e.Names, ", "), strings.Join(e.Domains, ", "), e.Description
			u.render(w, http.StatusOK, "expressway-edit", s, d)
			return
		}
	}
	d.ID, d.LoadError = "", fmt.Sprintf("there is no Expressway-C entry %q", id)
	u.render(w, http.StatusNotFound, "expressway-edit", s, d)
}

// expresswayEdit saves the entry through PUT /api/v1/expressway/{id}
// (S-12): the API checks it, and re-checks connected edges against the
// entries at once.
func (u *UI) expresswayEdit(w http.ResponseWriter, r *http.Request, s *session) {
	id, f := r.PathValue("id"), r.PostForm
	v := admin.ExpresswayEntryView{Address: strings.TrimSpace(f.Get("address")), Names: splitNames(f.Get("names")),
		Domains: splitNames(f.Get("domains")), Description: strings.TrimSpace(f.Get("description"))}
	res := u.call(r, s, http.MethodPut, "/api/v1/expressway/"+url.PathEscape(id), v)
	if !res.ok() {
		u.render(w, res.status, "expressway-edit", s, expresswayEditData{ID: id, Address: f.Get("address"), Names: f.Get("names"),
			Domains: f.Get("domains"), Desc: f.Get("description"), Error: res.err})
		return
	}
	http.Redirect(w, r, "/ui/expressway/"+url.PathEscape(id)+"?saved=1", http.StatusSeeOther)
}
