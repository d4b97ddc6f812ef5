// Package webui is the core's web administration: server-rendered pages
// under /ui/ on the admin HTTPS address. Every page reads and writes
// through the admin API itself, in process, with the session's API token
// as its bearer token, so that every validation, refusal and audit entry
// is the API's own.
//
// Authentication is the API's: the login form goes through the same
// password check as POST /api/v1/auth/tokens (admin.API.PasswordLogin),
// and the session is the login API token it makes, held in the
// edgeway_session cookie (Secure, HttpOnly, SameSite=Strict, Path=/ui/).
// Every state change is a POST carrying a CSRF token, an HMAC-SHA256 of
// the session token under a per-process key.
package webui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/internal/store"
)

// CookieName is the session cookie: a login API token.
const CookieName = "edgeway_session"

// Prefix is where the UI is mounted.
const Prefix = "/ui/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every /ui/ response: no inline
// script or style, forms post only here, never framed.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// HSTS is the Strict-Transport-Security of every /ui/ response.
const HSTS = "max-age=31536000"

// Backend is what the UI needs of the admin API.
type Backend interface {
	// PasswordLogin is the API's password login (POST /api/v1/auth/tokens).
	PasswordLogin(r *http.Request, user, pass, name string, ttl time.Duration) (admin.Login, *admin.LoginError)
	// Authenticate checks an API token as every API request is checked.
	Authenticate(ctx context.Context, raw string) (store.APIToken, *admin.TokenError)
	// Handler is the admin API under /api/ behind a bearer token.
	Handler() http.Handler
}

// UI is the web administration.
type UI struct {
	be      Backend
	api     http.Handler
	csrfKey []byte
	pages   map[string]*template.Template
	byName  map[string]page
	menu    []menuGroup
	log     *slog.Logger
}

// New builds the UI over the admin API. Its CSRF key is drawn now: a
// restart invalidates open forms, not sessions.
func New(be Backend, log *slog.Logger) (*UI, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	all := allPages()
	pages, err := parsePages(all)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]page, len(all))
	for _, p := range all {
		byName[p.Name] = p
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UI{be: be, api: be.Handler(), csrfKey: key, pages: pages, byName: byName, menu: buildMenu(all), log: log}, nil
}

// Routes mounts the UI at /ui/ on mux, and sends "/" there.
func (u *UI) Routes(mux *http.ServeMux) {
	mux.Handle(Prefix, u.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(Prefix, http.StatusSeeOther))
}

// Handler serves everything under /ui/ with the security headers.
func (u *UI) Handler() http.Handler {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /ui/login", u.loginPage)
	m.HandleFunc("POST /ui/login", u.login)
	m.Handle("POST /ui/logout", u.session(u.logout))
	m.Handle("GET /ui/{$}", u.session(func(w http.ResponseWriter, r *http.Request, s *session) {
		http.Redirect(w, r, "/ui/expressway", http.StatusSeeOther)
	}))
	m.Handle("GET /ui/expressway", u.session(u.expresswayPage))
	m.Handle("POST /ui/expressway", u.session(u.expresswayAdd))
	m.Handle("POST /ui/expressway/{id}/delete", u.session(u.expresswayDelete))
	m.Handle("GET /ui/activation", u.session(u.activationPage))
	m.Handle("POST /ui/activation", u.session(u.activationIssue))
	m.Handle("POST /ui/activation/{id}/revoke", u.session(u.activationRevoke))
	m.Handle("GET /ui/registrations", u.session(u.registrationsPage))
	m.Handle("GET /ui/audit", u.session(u.auditPage))
	u.systemRoutes(m)
	u.deviceRoutes(m)
	u.userRoutes(m)
	u.certRoutes(m)
	u.deviceGrantRoutes(m)
	return securityHeaders(m)
}

// securityHeaders sets the headers every /ui/ response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		// The admin address is HTTPS only: a browser that has been here
		// once never tries it in the clear (RFC 6797).
		h.Set("Strict-Transport-Security", HSTS)
		next.ServeHTTP(w, r)
	})
}

// csrfToken is the CSRF token of a session: HMAC-SHA256 of its API token.
func (u *UI) csrfToken(sessionToken string) string {
	m := hmac.New(sha256.New, u.csrfKey)
	m.Write([]byte(sessionToken))
	return hex.EncodeToString(m.Sum(nil))
}

// csrfOK compares a form's CSRF token with the session's in constant time.
func (u *UI) csrfOK(sessionToken, got string) bool {
	want := u.csrfToken(sessionToken)
	return hmac.Equal([]byte(want), []byte(got))
}
