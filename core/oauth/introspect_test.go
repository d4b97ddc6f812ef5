package oauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// fakeEdges answers every certificate with err (nil: the edge "expc").
type fakeEdges struct{ err error }

func (f fakeEdges) Entry(context.Context, *x509.Certificate) (store.ExpresswayEntry, string, error) {
	return store.ExpresswayEntry{}, "expc", f.err
}

type introspectRig struct {
	s     *Server
	st    *store.SQLite
	edges *fakeEdges
	now   time.Time
}

func newIntrospectRig(t *testing.T, admin func(context.Context, string) (string, error)) *introspectRig {
	t.Helper()
	var admins *AdminAuth
	if admin != nil {
		admins = &AdminAuth{Authenticate: admin}
	}
	rig := &introspectRig{st: openSQLite(t), edges: &fakeEdges{}, now: time.Unix(1_800_000_000, 0)}
	s, err := New(context.Background(), Config{Issuer: "https://core.test", Audience: "urn:edgeway:sip",
		AccessTokenTTL: time.Hour, RefreshTokenTTL: 24 * time.Hour, Admins: admins},
		rig.st, rig.edges, slog.New(slog.DiscardHandler), func() time.Time { return rig.now })
	if err != nil {
		t.Fatal(err)
	}
	rig.s = s
	return rig
}

// call posts form to the endpoint, as an edge when edge is set, else
// with auth as the Authorization header.
func (rig *introspectRig) call(t *testing.T, edge bool, auth string, form url.Values) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, IntrospectPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if edge {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
	}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	rig.s.HandleIntrospect(w, r)
	var m map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	return w, m
}

func adminOK(_ context.Context, raw string) (string, error) {
	if raw == "admin-secret" {
		return "admin", nil
	}
	return "", fmt.Errorf("%w: unknown API token", ErrNotAdmin)
}

// RFC 7662 §2.1: only an admitted edge or an admin token may ask; an edge
// whose entry is gone, a bearer that is not an admin token, or no
// credentials are 401 with a challenge; a check that could not run is 503.
func TestIntrospectCallers(t *testing.T) {
	rig := newIntrospectRig(t, adminOK)
	form := url.Values{"token": {"not.a.jwt"}}
	for _, tc := range []struct {
		name    string
		edge    bool
		edgeErr error
		auth    string
		status  int
	}{
		{"edge", true, nil, "", 200},
		{"admin token", false, nil, "Bearer admin-secret", 200},
		{"edge no longer configured (S-12)", true, admission.ErrEdgeNotConfigured, "", 401},
		{"edge check failing", true, errors.New("store down"), "", 503},
		{"no credentials", false, nil, "", 401},
		{"not an admin token", false, nil, "Bearer eyJhbGciOi.x.y", 401},
		{"Basic credentials", false, nil, "Basic YWRtaW46YWRtaW4=", 401},
	} {
		rig.edges.err = tc.edgeErr
		w, m := rig.call(t, tc.edge, tc.auth, form)
		if w.Code != tc.status {
			t.Errorf("%s: HTTP %d %s, want %d", tc.name, w.Code, w.Body, tc.status)
			continue
		}
		if tc.status == 401 {
			if ch := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
				t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge", tc.name, ch)
			}
			if m["error"] != "invalid_client" || !strings.Contains(m["error_description"].(string), "RFC 7662 §2.1") || m["active"] != nil {
				t.Errorf("%s: %v, want invalid_client naming RFC 7662 §2.1 and no answer", tc.name, m)
			}
		}
	}
	rig.edges.err = nil

	unavailable := newIntrospectRig(t, func(context.Context, string) (string, error) {
		return "", errors.New("store down")
	})
	if w, _ := unavailable.call(t, false, "Bearer admin-secret", form); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("admin check unavailable: HTTP %d %v, want 503 with Retry-After", w.Code, w.Header())
	}
	noAdmin := newIntrospectRig(t, nil)
	if w, _ := noAdmin.call(t, false, "Bearer admin-secret", form); w.Code != 401 {
		t.Errorf("no admin check configured: HTTP %d, want 401", w.Code)
	}
	if w, _ := rig.call(t, true, "", url.Values{}); w.Code != 400 {
		t.Errorf("no token: HTTP %d, want 400 invalid_request", w.Code)
	}
}

// RFC 7662 §2.2: expiry, rotation and the typ rule make a token inactive,
// and an inactive answer says nothing else.
func TestIntrospectLifetimes(t *testing.T) {
	rig := newIntrospectRig(t, adminOK)
	ctx := context.Background()
	dev := store.Device{Name: "SEP0011223344AA"}
	// Signed as signAccess does (not called: its parameters change on
	// other branches), with the user claim of a password grant.
	at, err := rig.s.keys.Sign(&token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://core.test",
		Audience: jwt.ClaimStrings{"urn:edgeway:sip"}, Subject: dev.Name, ID: "jti-1",
		IssuedAt: jwt.NewNumericDate(rig.now), ExpiresAt: jwt.NewNumericDate(rig.now.Add(time.Hour))},
		Grant: token.GrantPassword, Origin: token.GrantPassword, User: "jsmith", ClientID: dev.Name})
	if err != nil {
		t.Fatal(err)
	}
	rt, rawRT, err := rig.s.newRefresh("fam-1", dev.Name, "jsmith", token.GrantPassword, false, rig.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.st.PutRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	active := func(what, raw string, want bool) map[string]any {
		t.Helper()
		w, m := rig.call(t, true, "", url.Values{"token": {raw}})
		if w.Code != 200 || m["active"] != want || (!want && len(m) != 1) {
			t.Errorf("%s: HTTP %d %v, want active %v", what, w.Code, m, want)
		}
		return m
	}
	m := active("live access token", at, true)
	if m["username"] != "jsmith" || m["client_id"] != dev.Name || m["token_type"] != "Bearer" || m["exp"] != float64(rig.now.Add(time.Hour).Unix()) {
		t.Errorf("live access token: %v", m)
	}
	m = active("live refresh token", rawRT, true)
	if m["username"] != "jsmith" || m["client_id"] != dev.Name || m["token_type"] != "refresh_token" || m["exp"] != float64(rig.now.Add(24*time.Hour).Unix()) {
		t.Errorf("live refresh token: %v", m)
	}

	// A JWT of another type, and an untyped one issued after this node
	// started, signed by the server's own key.
	c := &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://core.test", Audience: jwt.ClaimStrings{"urn:edgeway:sip"},
		Subject: dev.Name, ID: "other", IssuedAt: jwt.NewNumericDate(rig.now), ExpiresAt: jwt.NewNumericDate(rig.now.Add(time.Hour))}}
	ks := rig.s.keys.keys
	for _, typ := range []string{"JWT", ""} {
		raw, err := ks.SignTyped(typ, c)
		if err != nil {
			t.Fatal(err)
		}
		active("typ "+typ, raw, false)
	}

	rig.now = rig.now.Add(2 * time.Hour)
	active("expired access token", at, false)
	active("refresh token, access token's life later", rawRT, true)
	rig.now = rig.now.Add(24 * time.Hour)
	active("expired refresh token", rawRT, false)
}
