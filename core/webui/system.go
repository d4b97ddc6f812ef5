package webui

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/policy"
)

// System: Enterprise Parameters (S-9, S-10, token lifetimes), Cisco Unified CM nodes (S-11), Phone Security Profile (S-15, S-16) and utils sipOAuth-mode (S-13, S-14).

// systemPages are this file's pages (see allPages).
var systemPages = []page{
	{Name: "params", Title: "System → Enterprise Parameters", Label: "Enterprise Parameters", Menu: "System", Path: "/ui/params",
		Rule: "S-9 OAuth Access Token for Devices (Implicit, or Explicit: only activation-code or device-grant tokens register); S-10 OAuth with Refresh Login Flow (Enabled gives a refresh token); S-7 export-controlled functionality allowed (needed to enable SIP OAuth mode); S-13 Cluster SIPOAuth Mode is read-only; the access and refresh token lifetimes"},
	{Name: "nodes", Title: "System → Cisco Unified CM", Label: "Cisco Unified CM", Menu: "System", Path: "/ui/nodes",
		Rule: "S-11: each node's SIP Phone OAuth Port (default 5090, TLS) and SIP Mobile and Remote Access Port (default 5091, mutual TLS, edges only), each in 1024-49151; S-14: a node runs a new SIP OAuth mode only after its CallManager service restarts"},
	{Name: "profiles", Title: "System → Security → Phone Security Profile", Label: "Phone Security Profile", Menu: "System", Path: "/ui/profiles",
		Rule: "S-15: an OAuth profile is Device Security Mode Encrypted, Transport TLS, with Enable OAuth Authentication; S-16: Digest Authentication and TFTP Encrypted Config are not supported with it; S-5: only the OAuth-capable device types"},
	{Name: "sipoauth", Title: "utils sipOAuth-mode", Label: "SIP OAuth mode", Menu: "System", Path: "/ui/sipoauth",
		Rule: "S-13: `utils sipOAuth-mode enable` on the publisher turns the mode on for every node of the cluster (S-7: only with export-controlled functionality allowed); S-14: each node takes it at its CallManager service restart"},
}

// systemRoutes mounts this file's handlers.
func (u *UI) systemRoutes(m *http.ServeMux) {
	m.Handle("GET /ui/params", u.session(u.paramsPage))
	m.Handle("POST /ui/params", u.session(u.paramSet))
	m.Handle("GET /ui/nodes", u.session(u.nodesPage))
	m.Handle("POST /ui/nodes", u.session(u.nodeSet))
	m.Handle("POST /ui/service/restart", u.session(u.serviceRestart))
	m.Handle("GET /ui/profiles", u.session(u.profilesPage))
	m.Handle("POST /ui/profiles", u.session(u.profileSet))
	m.Handle("POST /ui/profiles/delete", u.session(u.profileDelete))
	m.Handle("GET /ui/sipoauth", u.session(u.sipOAuthPage))
	m.Handle("POST /ui/sipoauth", u.session(u.sipOAuthSet))
}

// htmlID makes a name (a node's, a profile's) usable in an element id:
// anything but letters, digits, '-' and '_' becomes '-'.
func htmlID(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, name)
}

// --- System → Enterprise Parameters (S-7, S-9, S-10, S-13, lifetimes) ---

type option struct{ Value, Text string }

// paramInfo is what the page says of a parameter the API lists; the API
// alone decides what it accepts.
type paramInfo struct {
	Label, Rule, Meaning string
	Options              []option // an enumeration: a select
	Duration             bool     // a lifetime: a number and a unit
}

var paramInfos = map[string]paramInfo{
	policy.ParamAccessTokenForDevices: {Label: "OAuth Access Token for Devices", Rule: "S-9",
		Meaning: "Explicit: only tokens obtained through activation codes are accepted for SIP OAuth registration.",
		Options: []option{{"implicit", "Implicit: already registered devices"}, {"explicit", "Explicit: activation code device onboarding required"}}},
	policy.ParamRefreshLoginFlow: {Label: "OAuth with Refresh Login Flow", Rule: "S-10",
		Meaning: "Enabled: clients get an access token and a refresh token.",
		Options: []option{{"enabled", "Enabled"}, {"disabled", "Disabled"}}},
	policy.ParamAccessTokenTTL: {Label: "Access token lifetime", Rule: "at least 1 minute",
		Meaning: "How long an access token (the SIP REGISTER's bearer token) is valid.", Duration: true},
	policy.ParamRefreshTokenTTL: {Label: "Refresh token lifetime", Rule: "at least 1 hour",
		Meaning: "How long a refresh token is valid before the device must onboard again. A refresh after half of it renews the refresh token to a full lifetime; one before half keeps its expiry (R-3).", Duration: true},
	policy.ParamExportControlled: {Label: "Export-controlled functionality allowed", Rule: "S-7",
		Meaning: "The cluster is registered with export-controlled functionality (encryption) allowed; SIP OAuth mode cannot be enabled without it.",
		Options: []option{{"true", "True: allowed"}, {"false", "False: not allowed"}}},
	policy.ParamClusterSIPOAuthMode: {Label: "Cluster SIPOAuth Mode", Rule: "S-13",
		Meaning: "Read-only: set by utils sipOAuth-mode enable|disable on the publisher."},
}

// durationUnits are the units the lifetime forms offer (time.ParseDuration's).
var durationUnits = []option{{"s", "seconds"}, {"m", "minutes"}, {"h", "hours"}}

type paramRow struct {
	admin.ParamView
	paramInfo
	ID        string
	Number    string // a lifetime's value in Unit
	Unit      string
	Units     []option
	Error     string
	FormValue string // a refused form's value, shown again
}

type paramsData struct {
	Rows      []paramRow
	Error     string // a refusal for a parameter the page does not list
	LoadError string
}

func (u *UI) paramsPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderParams(w, r, s, http.StatusOK, "", "", "", "")
}

// splitDuration shows a lifetime as a whole number of the largest unit
// that divides it ("1h0m0s" is 1 hours, "90m" 90 minutes).
func splitDuration(v string) (string, string) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return v, "m"
	}
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10), "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10), "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10), "s"
}

func (u *UI) renderParams(w http.ResponseWriter, r *http.Request, s *session, status int, errName, errText, number, unit string) {
	var d paramsData
	var ps []admin.ParamView
	if err := u.call(r, s, http.MethodGet, "/api/v1/params", nil).decode(&ps); err != nil {
		d.LoadError = err.Error()
	}
	for _, p := range ps {
		info, ok := paramInfos[p.Name]
		if !ok {
			info = paramInfo{Label: p.Name}
		}
		row := paramRow{ParamView: p, paramInfo: info, ID: htmlID(p.Name), FormValue: p.Value}
		if info.Duration {
			row.Number, row.Unit = splitDuration(p.Value)
			row.Units = durationUnits
		}
		if p.Name == errName {
			row.Error, row.FormValue = errText, number
			if info.Duration {
				row.Number, row.Unit = number, unit
			}
		}
		d.Rows = append(d.Rows, row)
	}
	if errText != "" && !slices.ContainsFunc(d.Rows, func(r paramRow) bool { return r.Error != "" }) {
		d.Error = errText
	}
	u.render(w, status, "params", s, d)
}

// paramSet is one parameter's form: PUT /api/v1/params/{name}. A
// lifetime's number and unit are sent as one duration ("30" "m" is 30m).
func (u *UI) paramSet(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	name := f.Get("name")
	value, unit := strings.TrimSpace(f.Get("value")), f.Get("unit")
	body := value
	if unit != "" {
		switch unit {
		case "s", "m", "h":
		default:
			unit = "m"
		}
		body = value + unit
	}
	res := u.call(r, s, http.MethodPut, "/api/v1/params/"+url.PathEscape(name), map[string]string{"value": body})
	if !res.ok() {
		u.renderParams(w, r, s, res.status, name, res.err, value, unit)
		return
	}
	http.Redirect(w, r, "/ui/params#param-"+htmlID(name), http.StatusSeeOther)
}

// --- System → Cisco Unified CM (S-11, S-14) ---

type nodeRow struct {
	admin.NodeView
	ID          string
	Error       string
	Phone, MRA  string // a refused form's values, shown again
	PortsInUse  string // what the node listens on now
	ClusterMode string
}

type nodesData struct {
	Rows         []nodeRow
	ClusterMode  string
	Waiting      []string // nodes whose running mode is not the cluster's (S-14)
	Restarted    bool
	Error        string // a refusal for a node the page does not list
	RestartError string
	LoadError    string
}

func (u *UI) nodesPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderNodes(w, r, s, http.StatusOK, nodesData{Restarted: r.URL.Query().Get("restarted") == "1"}, "", "", "", "")
}

func (u *UI) renderNodes(w http.ResponseWriter, r *http.Request, s *session, status int, d nodesData, errNode, errText, phone, mra string) {
	var ms admin.ModeStatus
	if err := u.call(r, s, http.MethodGet, "/api/v1/utils/sipoauth-mode", nil).decode(&ms); err != nil {
		d.LoadError = err.Error()
	}
	d.ClusterMode = ms.ClusterMode
	for _, n := range ms.Nodes {
		row := nodeRow{NodeView: n, ID: htmlID(n.Name), Phone: strconv.Itoa(n.PhoneOAuthPort), MRA: strconv.Itoa(n.MRAPort), ClusterMode: ms.ClusterMode}
		if n.ListeningMRAPort != 0 {
			row.PortsInUse = strconv.Itoa(n.ListeningPhoneOAuthPort) + " / " + strconv.Itoa(n.ListeningMRAPort)
		}
		if n.Name == errNode {
			row.Error, row.Phone, row.MRA = errText, phone, mra
		}
		if n.RestartNeeded {
			d.Waiting = append(d.Waiting, n.Name)
		}
		d.Rows = append(d.Rows, row)
	}
	if errText != "" && !slices.ContainsFunc(d.Rows, func(r nodeRow) bool { return r.Error != "" }) {
		d.Error = errText
	}
	u.render(w, status, "nodes", s, d)
}

// nodeSet is a node's form: PUT /api/v1/nodes/{name} with both ports. A
// field that is no number is refused here, naming S-11, before the API.
func (u *UI) nodeSet(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	name := f.Get("name")
	phone, mra := strings.TrimSpace(f.Get("phone_oauth_port")), strings.TrimSpace(f.Get("mra_port"))
	body := map[string]int{}
	for _, p := range []struct{ key, label, v string }{{"phone_oauth_port", "SIP Phone OAuth Port", phone}, {"mra_port", "SIP Mobile and Remote Access Port", mra}} {
		n, err := strconv.Atoi(p.v)
		if err != nil {
			u.renderNodes(w, r, s, http.StatusBadRequest, nodesData{}, name, "S-11: "+p.label+" "+strconv.Quote(p.v)+" is not a port number (1024-49151)", phone, mra)
			return
		}
		body[p.key] = n
	}
	res := u.call(r, s, http.MethodPut, "/api/v1/nodes/"+url.PathEscape(name), body)
	if !res.ok() {
		u.renderNodes(w, r, s, res.status, nodesData{}, name, res.err, phone, mra)
		return
	}
	http.Redirect(w, r, "/ui/nodes#node-"+htmlID(name), http.StatusSeeOther)
}

// serviceRestart is `service restart callmanager` on the node serving
// this page (S-14); the form says which page it came from.
func (u *UI) serviceRestart(w http.ResponseWriter, r *http.Request, s *session) {
	from := "nodes"
	if r.PostForm.Get("from") == "sipoauth" {
		from = "sipoauth"
	}
	res := u.call(r, s, http.MethodPost, "/api/v1/service/restart", map[string]string{"service": "callmanager"})
	if !res.ok() {
		if from == "sipoauth" {
			u.renderSIPOAuth(w, r, s, res.status, sipOAuthData{RestartError: res.err})
		} else {
			u.renderNodes(w, r, s, res.status, nodesData{RestartError: res.err}, "", "", "", "")
		}
		return
	}
	http.Redirect(w, r, "/ui/"+from+"?restarted=1", http.StatusSeeOther)
}

// --- System → Security → Phone Security Profile (S-5, S-15, S-16) ---

type profileRow struct {
	admin.ProfileView
	ID string
}

type profilesData struct {
	Rows      []profileRow
	Form      admin.ProfileView
	Editing   bool
	Modes     []string
	Transport []string
	Types     []string
	Error     string // the form's refusal
	ListError string // a delete's refusal
	LoadError string
}

// oauthTypes are the device types S-5 lets use OAuth, offered in the
// form's list (the API decides).
var oauthTypes = []string{"UDT", "TCT", "BOT", "CSF", "TAB", "7811", "7821", "7832", "7841", "7861", "8811", "8832", "8832NR", "8841", "8845", "8851", "8851NR", "8861", "8865", "8865NR"}

func (u *UI) profilesPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := profilesData{Form: admin.ProfileView{Mode: "encrypted", Transport: "TLS", OAuth: true}}
	edit := r.URL.Query().Get("edit")
	u.renderProfiles(w, r, s, http.StatusOK, d, edit)
}

func (u *UI) renderProfiles(w http.ResponseWriter, r *http.Request, s *session, status int, d profilesData, edit string) {
	var ps []admin.ProfileView
	if err := u.call(r, s, http.MethodGet, "/api/v1/profiles", nil).decode(&ps); err != nil {
		d.LoadError = err.Error()
	}
	for _, p := range ps {
		d.Rows = append(d.Rows, profileRow{ProfileView: p, ID: htmlID(p.Name)})
		if edit != "" && p.Name == edit {
			d.Form, d.Editing = p, true
		}
	}
	d.Modes = []string{"non-secure", "authenticated", "encrypted"}
	d.Transport = []string{"TCP", "UDP", "TLS", "TCP+UDP"}
	d.Types = oauthTypes
	u.render(w, status, "profiles", s, d)
}

// profileSet is the add/edit form: PUT /api/v1/profiles/{name}, whose
// refusals (S-15, S-16, S-5) are shown as they are.
func (u *UI) profileSet(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	p := admin.ProfileView{Name: strings.TrimSpace(f.Get("name")), DeviceType: strings.TrimSpace(f.Get("device_type")),
		Mode: f.Get("mode"), Transport: f.Get("transport"),
		OAuth: f.Get("oauth") != "", Digest: f.Get("digest") != "", TFTPEncrypted: f.Get("tftp_encrypted") != "",
		RequireBoundTokens: f.Get("require_bound_tokens") != ""}
	if p.Name == "" {
		u.renderProfiles(w, r, s, http.StatusBadRequest, profilesData{Form: p, Error: "a security profile needs a name"}, "")
		return
	}
	res := u.call(r, s, http.MethodPut, "/api/v1/profiles/"+url.PathEscape(p.Name), p)
	if !res.ok() {
		u.renderProfiles(w, r, s, res.status, profilesData{Form: p, Error: res.err}, "")
		return
	}
	http.Redirect(w, r, "/ui/profiles", http.StatusSeeOther)
}

func (u *UI) profileDelete(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PostForm.Get("name")
	res := u.call(r, s, http.MethodDelete, "/api/v1/profiles/"+url.PathEscape(name), nil)
	if !res.ok() {
		u.renderProfiles(w, r, s, res.status, profilesData{Form: admin.ProfileView{Mode: "encrypted", Transport: "TLS", OAuth: true}, ListError: res.err}, "")
		return
	}
	http.Redirect(w, r, "/ui/profiles", http.StatusSeeOther)
}

// --- utils sipOAuth-mode (S-7, S-13, S-14) ---

type sipOAuthData struct {
	Status           admin.ModeStatus
	ExportControlled string // S-7's parameter
	Restarted        bool
	Error            string
	RestartError     string
	LoadError        string
}

func (u *UI) sipOAuthPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderSIPOAuth(w, r, s, http.StatusOK, sipOAuthData{Restarted: r.URL.Query().Get("restarted") == "1"})
}

func (u *UI) renderSIPOAuth(w http.ResponseWriter, r *http.Request, s *session, status int, d sipOAuthData) {
	if err := u.call(r, s, http.MethodGet, "/api/v1/utils/sipoauth-mode", nil).decode(&d.Status); err != nil {
		d.LoadError = err.Error()
	}
	var ps []admin.ParamView
	if err := u.call(r, s, http.MethodGet, "/api/v1/params", nil).decode(&ps); err == nil {
		for _, p := range ps {
			if p.Name == policy.ParamExportControlled {
				d.ExportControlled = p.Value
			}
		}
	}
	u.render(w, status, "sipoauth", s, d)
}

// sipOAuthSet is `utils sipOAuth-mode enable|disable`: the API refuses it
// on a subscriber (S-13) and without export-controlled functionality (S-7).
func (u *UI) sipOAuthSet(w http.ResponseWriter, r *http.Request, s *session) {
	res := u.call(r, s, http.MethodPost, "/api/v1/utils/sipoauth-mode", map[string]string{"action": r.PostForm.Get("action")})
	if !res.ok() {
		u.renderSIPOAuth(w, r, s, res.status, sipOAuthData{Error: res.err})
		return
	}
	http.Redirect(w, r, "/ui/sipoauth", http.StatusSeeOther)
}
