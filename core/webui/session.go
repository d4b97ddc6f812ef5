package webui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/internal/store"
)

// session is a logged-in administrator: the login API token held in the
// cookie, as the API knows it.
type session struct {
	raw   string
	token store.APIToken
	csrf  string
}

type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// maxForm bounds a form post (the largest is an Expressway-C entry).
const maxForm = 64 << 10

// MaxUpload bounds an upload form's multipart/form-data body (a PEM
// certificate bundle, a CSV of devices); only the handlers mounted with
// upload read multipart bodies at all.
const MaxUpload = 1 << 20

// session checks the cookie's token as requireAdmin checks a bearer token
// (an unknown, revoked or expired one sends the browser to the login
// page) and, on a POST, the CSRF token: a form without the session's
// gets 403 and changes nothing. A plain form is bounded by maxForm; a
// larger one gets 413 and changes nothing.
func (u *UI) session(h sessionHandler) http.Handler { return u.sessionForm(h, false) }

// upload is session for a form with a file: its multipart/form-data body
// (up to MaxUpload, held in memory) is read, and its CSRF field checked,
// before h runs; a larger one is refused 413 and changes nothing.
func (u *UI) upload(h sessionHandler) http.Handler { return u.sessionForm(h, true) }

func (u *UI) sessionForm(h sessionHandler, multipart bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(CookieName)
		if err != nil || c.Value == "" {
			u.toLogin(w, r, "")
			return
		}
		t, terr := u.be.Authenticate(r.Context(), c.Value)
		if terr != nil {
			clearCookie(w)
			u.toLogin(w, r, terr.Err.Error())
			return
		}
		s := &session{raw: c.Value, token: t, csrf: u.csrfToken(c.Value)}
		if r.Method != http.MethodGet {
			if err := readForm(w, r, multipart); err != nil {
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					u.log.Warn("web UI: form larger than its bound refused", "path", r.URL.Path, "owner", t.Owner, "limit", tooBig.Limit)
					http.Error(w, fmt.Sprintf("413 request entity too large: the form is larger than %s, the web UI's bound for it; nothing was changed", sizeText(tooBig.Limit)), http.StatusRequestEntityTooLarge)
					return
				}
				http.Error(w, "the form could not be read", http.StatusBadRequest)
				return
			}
			if r.MultipartForm != nil {
				defer r.MultipartForm.RemoveAll()
			}
			if !u.csrfOK(c.Value, r.PostForm.Get("csrf")) {
				u.log.Warn("web UI: form without a valid CSRF token refused", "path", r.URL.Path, "owner", t.Owner)
				http.Error(w, "403 forbidden: the form's CSRF token is missing or wrong; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, s)
	})
}

// readForm reads a POST's form into r.PostForm: a plain form up to
// maxForm; with multipart (upload forms) a multipart/form-data body up to
// MaxUpload, all of it in memory (its files in r.MultipartForm). A
// multipart body posted to a plain form is not read, so its CSRF field is
// missing and the post is refused.
func readForm(w http.ResponseWriter, r *http.Request, multipart bool) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if multipart && ct == "multipart/form-data" {
		r.Body = http.MaxBytesReader(w, r.Body, MaxUpload)
		// The memory bound is the body's, so parts stay in memory (any
		// temp file is removed by RemoveAll after the handler).
		return r.ParseMultipartForm(MaxUpload)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	return r.ParseForm()
}

func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// toLogin sends a browser without a valid session to the login page.
func (u *UI) toLogin(w http.ResponseWriter, r *http.Request, why string) {
	q := url.Values{}
	if why != "" {
		q.Set("why", why)
	}
	target := "/ui/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// sameOrigin tells a post from these pages. A browser that sends
// Sec-Fetch-Site must say same-origin; one that does not is judged by
// Origin, which must name this host (the pages' Referrer-Policy
// no-referrer makes browsers send "Origin: null" on their own forms, so
// null is accepted only with Sec-Fetch-Site same-origin). A client that
// sends neither is no browser another site could drive.
func sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" {
		return sfs == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	ou, err := url.Parse(o)
	return err == nil && ou.Scheme == "https" && strings.EqualFold(ou.Host, r.Host)
}

func clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

type loginData struct {
	User  string
	Error string
	Why   string
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, http.StatusOK, "login", nil, loginData{Why: r.URL.Query().Get("why")})
}

// login is the login form: the API's password login, whose refusals it
// shows as they are; success sets the session cookie to the new login
// API token (LoginTokenTTL).
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		// Login CSRF: another site must not log the browser in to an
		// account of its choosing (there is no session to bind a token
		// to yet, so the browser's own Origin and Sec-Fetch-Site say it).
		http.Error(w, "403 forbidden: the login form was posted from another site", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	user, pass := strings.TrimSpace(r.PostForm.Get("account")), r.PostForm.Get("password")
	l, lerr := u.be.PasswordLogin(r, user, pass, "web UI login", admin.LoginTokenTTL)
	if lerr != nil {
		if ra := lerr.Headers["Retry-After"]; ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		u.render(w, lerr.Status, "login", nil, loginData{User: user, Error: lerr.Err.Error()})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: l.Raw, Path: Prefix, Expires: l.Token.ExpiresAt,
		MaxAge: int(time.Until(l.Token.ExpiresAt) / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/expressway", http.StatusSeeOther)
}

// logout revokes the session's token through the API (audited as
// auth.token-revoke) and clears the cookie.
func (u *UI) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if res := u.call(r, s, http.MethodDelete, "/api/v1/auth/tokens/"+url.PathEscape(s.token.ID), nil); res.status != http.StatusNoContent {
		u.log.Warn("web UI: logout could not revoke the session token", "status", res.status, "err", res.err)
	}
	clearCookie(w)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// apiResult is the admin API's answer to a page's request.
type apiResult struct {
	status int
	body   []byte
	err    string // the API's {"error": ...}, if it refused
}

func (a apiResult) ok() bool { return a.status >= 200 && a.status < 300 }

// decode reads a successful answer into v.
func (a apiResult) decode(v any) error {
	if !a.ok() {
		return fmt.Errorf("admin API: HTTP %d: %s", a.status, a.err)
	}
	return json.Unmarshal(a.body, v)
}

// call serves one admin API request in process with the session's token
// as its bearer token: the API's own checks, answers and audit entries.
func (u *UI) call(r *http.Request, s *session, method, path string, body any) apiResult {
	if body == nil {
		return u.callBody(r, s, method, path, "", nil)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return apiResult{status: 500, err: err.Error()}
	}
	return u.callBody(r, s, method, path, "application/json", b)
}

// callBody is call with a body of any type (a PEM bundle; none when
// contentType is ""): the API sees the browser's connection, its TLS
// state and address (an edge is refused, S-12), and the session's token.
func (u *UI) callBody(r *http.Request, s *session, method, path, contentType string, body []byte) apiResult {
	var rd io.Reader
	if contentType != "" {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return apiResult{status: 500, err: err.Error()}
	}
	req.RemoteAddr, req.TLS, req.Host = r.RemoteAddr, r.TLS, r.Host
	req.Header.Set("Authorization", "Bearer "+s.raw)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := newRecorder()
	u.api.ServeHTTP(rec, req)
	res := apiResult{status: rec.status, body: rec.buf.Bytes()}
	if !res.ok() {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(res.body, &e) == nil && e.Error != "" {
			res.err = e.Error
		} else {
			res.err = fmt.Sprintf("HTTP %d", res.status)
		}
	}
	return res
}

// recorder is the http.ResponseWriter an in-process API call writes to.
type recorder struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.buf.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
