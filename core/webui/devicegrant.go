package webui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/edgeway/edgeway/core/oauth"
)

// Device → Device codes: the approval page of the device grant (RFC 8628
// §3.3). A phone shows a user_code and verification_uri_complete (this
// page with ?user_code=…, as a QR code); the administrator sees which
// provisioned device asked, when and through which edge, and approves or
// denies it through the admin API (POST /api/v1/device-codes/{user_code}/
// approve or /deny), whose checks, throttling of wrong user_codes and
// audit entries apply.

// deviceGrantPages are this file's pages (see allPages).
var deviceGrantPages = []page{
	{Name: "devicecodes", Title: "Device → Device codes", Label: "Device codes", Menu: "Device", Path: "/ui/device",
		Rule: "RFC 8628: a phone onboards with the device grant once an administrator approves its user_code for the provisioned device it was asked for; the same S-17 rules apply through the edge as for activation codes"},
}

// deviceGrantRoutes mounts this file's handlers.
func (u *UI) deviceGrantRoutes(m *http.ServeMux) {
	m.Handle("GET /ui/device", u.session(u.deviceCodesPage))
	m.Handle("POST /ui/device/approve", u.session(u.deviceCodeDecide("approve")))
	m.Handle("POST /ui/device/deny", u.session(u.deviceCodeDecide("deny")))
}

type deviceCodesData struct {
	UserCode string                 // as typed or prefilled
	Request  *oauth.DeviceCodeView  // the request with UserCode
	Pending  []oauth.DeviceCodeView // every request waiting
	Notice   string
	Error    string
	LoadErr  string
}

func (u *UI) deviceCodesPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := deviceCodesData{UserCode: strings.TrimSpace(q.Get("user_code"))}
	switch q.Get("decided") {
	case "approve":
		d.Notice = "Approved: the phone gets its tokens at its next poll (RFC 8628 §3.5)."
	case "deny":
		d.Notice = "Denied: the phone is told access_denied at its next poll (RFC 8628 §3.5)."
	}
	u.renderDeviceCodes(w, r, s, http.StatusOK, d)
}

func (u *UI) renderDeviceCodes(w http.ResponseWriter, r *http.Request, s *session, status int, d deviceCodesData) {
	if d.UserCode != "" && d.Request == nil && d.Error == "" {
		var v oauth.DeviceCodeView
		res := u.call(r, s, http.MethodGet, "/api/v1/device-codes/"+url.PathEscape(d.UserCode), nil)
		if err := res.decode(&v); err != nil {
			d.Error = res.err
			if status == http.StatusOK {
				status = res.status
			}
		} else {
			d.Request = &v
		}
	}
	if err := u.call(r, s, http.MethodGet, "/api/v1/device-codes", nil).decode(&d.Pending); err != nil {
		d.LoadErr = err.Error()
	}
	u.render(w, status, "devicecodes", s, d)
}

// deviceCodeDecide approves or denies the posted user_code.
func (u *UI) deviceCodeDecide(verb string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		code := strings.TrimSpace(r.PostForm.Get("user_code"))
		res := u.call(r, s, http.MethodPost, "/api/v1/device-codes/"+url.PathEscape(code)+"/"+verb, nil)
		if !res.ok() {
			u.renderDeviceCodes(w, r, s, res.status, deviceCodesData{UserCode: code, Error: res.err})
			return
		}
		http.Redirect(w, r, "/ui/device?"+url.Values{"user_code": {code}, "decided": {verb}}.Encode(), http.StatusSeeOther)
	}
}
