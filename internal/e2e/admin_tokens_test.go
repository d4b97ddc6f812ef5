package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
)

// login is a password login to the admin API: the token it issues and its id.
func login(t *testing.T, env *testenv.Env, user, pass string) (token, id string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.Info.CoreHTTPS+"/api/v1/auth/tokens", strings.NewReader(`{"name":"test login"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	res, err := env.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v struct{ ID, Token string }
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil || res.StatusCode != http.StatusCreated || v.Token == "" {
		t.Fatalf("login %s: %d %v", user, res.StatusCode, err)
	}
	return v.Token, v.ID
}

// A leaked admin API token must not become a lasting foothold: a token
// created through the API cannot create tokens or accounts, nor change an
// account's password; it dies with the token that created it; and a
// password change, made only with the account's own login token, revokes
// the account's other tokens.
func TestAdminTokenLineage(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	const pass1, pass2 = "first password, long", "second password, longer"
	as := func(tok, method, path string, body any, want int) []byte {
		t.Helper()
		code, b := env.AdminAs(t, tok, method, path, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		return b
	}
	newToken := func(tok, name string, want int) string {
		t.Helper()
		var v struct{ Token string }
		if b := as(tok, "POST", "/api/v1/auth/tokens/new", map[string]string{"name": name}, want); want == http.StatusCreated {
			if err := json.Unmarshal(b, &v); err != nil || v.Token == "" {
				t.Fatalf("token %s: %s %v", name, b, err)
			}
		}
		return v.Token
	}
	as(env.AdminToken, "PUT", "/api/v1/accounts/alice", map[string]string{"password": pass1}, http.StatusNoContent)
	as(env.AdminToken, "PUT", "/api/v1/accounts/bad%20name", map[string]string{"password": pass1}, http.StatusBadRequest)
	aliceLogin, _ := login(t, env, "alice", pass1)
	script := newToken(aliceLogin, "provisioning script", http.StatusCreated)
	as(script, "GET", "/api/v1/devices", nil, http.StatusOK)

	// What a leaked script token cannot do.
	newToken(script, "persistence", http.StatusForbidden)
	as(script, "PUT", "/api/v1/accounts/mallory", map[string]string{"password": pass1}, http.StatusForbidden)
	as(script, "PUT", "/api/v1/accounts/alice", map[string]string{"password": pass2}, http.StatusForbidden)
	// Nor the bootstrap token, nor another account's login: only alice's own.
	as(env.AdminToken, "PUT", "/api/v1/accounts/alice", map[string]string{"password": pass2}, http.StatusForbidden)
	as(env.AdminToken, "PUT", "/api/v1/accounts/bob", map[string]string{"password": pass1}, http.StatusNoContent)
	bobLogin, _ := login(t, env, "bob", pass1)
	as(bobLogin, "PUT", "/api/v1/accounts/alice", map[string]string{"password": pass2}, http.StatusForbidden)

	// Revoking a login token revokes what it made.
	secondLogin, secondID := login(t, env, "alice", pass1)
	script2 := newToken(secondLogin, "another script", http.StatusCreated)
	as(env.AdminToken, "DELETE", "/api/v1/auth/tokens/"+secondID, nil, http.StatusNoContent)
	as(script2, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)
	as(secondLogin, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)

	// alice changes her own password with her login token: her other
	// tokens (the script) stop working, the one she used goes on.
	as(aliceLogin, "PUT", "/api/v1/accounts/alice", map[string]string{"password": pass2}, http.StatusNoContent)
	as(script, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)
	as(aliceLogin, "GET", "/api/v1/devices", nil, http.StatusOK)
	as(bobLogin, "GET", "/api/v1/devices", nil, http.StatusOK)
	login(t, env, "alice", pass2)
}

// Issue 9 item 13: a script token may revoke only its own lineage; a login
// token only its own account's tokens; the bootstrap token any.
func TestAdminTokenRevokeScope(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	const pass = "a password, long enough"
	as := func(tok, method, path string, body any, want int) []byte {
		t.Helper()
		code, b := env.AdminAs(t, tok, method, path, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		return b
	}
	newToken := func(tok, name string) (raw, id string) {
		t.Helper()
		var v struct{ ID, Token string }
		if err := json.Unmarshal(as(tok, "POST", "/api/v1/auth/tokens/new", map[string]string{"name": name}, http.StatusCreated), &v); err != nil {
			t.Fatal(err)
		}
		return v.Token, v.ID
	}
	as(env.AdminToken, "PUT", "/api/v1/accounts/alice", map[string]string{"password": pass}, http.StatusNoContent)
	as(env.AdminToken, "PUT", "/api/v1/accounts/bob", map[string]string{"password": pass}, http.StatusNoContent)
	aliceLogin, aliceID := login(t, env, "alice", pass)
	bobLogin, bobID := login(t, env, "bob", pass)
	script, scriptID := newToken(aliceLogin, "alice's script")
	script2, script2ID := newToken(aliceLogin, "alice's other script")
	bobScript, bobScriptID := newToken(bobLogin, "bob's script")

	// The script token: not another account's login, not its own parent,
	// not a sibling.
	as(script, "DELETE", "/api/v1/auth/tokens/"+bobID, nil, http.StatusForbidden)
	as(script, "DELETE", "/api/v1/auth/tokens/"+aliceID, nil, http.StatusForbidden)
	as(script, "DELETE", "/api/v1/auth/tokens/"+script2ID, nil, http.StatusForbidden)
	as(script, "DELETE", "/api/v1/auth/tokens/"+bobScriptID, nil, http.StatusForbidden)
	as(bobLogin, "GET", "/api/v1/devices", nil, http.StatusOK)
	as(aliceLogin, "GET", "/api/v1/devices", nil, http.StatusOK)
	// alice's login: not bob's tokens.
	as(aliceLogin, "DELETE", "/api/v1/auth/tokens/"+bobScriptID, nil, http.StatusForbidden)
	as(aliceLogin, "DELETE", "/api/v1/auth/tokens/"+bobID, nil, http.StatusForbidden)
	as(bobScript, "GET", "/api/v1/devices", nil, http.StatusOK)
	as(aliceLogin, "DELETE", "/api/v1/auth/tokens/no-such-token", nil, http.StatusNotFound)

	// What each may do.
	as(script2, "DELETE", "/api/v1/auth/tokens/"+script2ID, nil, http.StatusNoContent) // itself
	as(script2, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)
	as(aliceLogin, "DELETE", "/api/v1/auth/tokens/"+scriptID, nil, http.StatusNoContent) // own account's
	as(script, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)
	as(env.AdminToken, "DELETE", "/api/v1/auth/tokens/"+bobID, nil, http.StatusNoContent) // the bootstrap token: any
	as(bobScript, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)
}

// Issue 9 item 13: login and script tokens expire (defaults 12 h and 90
// days, --ttl to choose), never beyond the token that made them; the
// listing shows when; an expired token is 401 saying so. The bootstrap
// token expires after 30 days.
func TestAdminTokenExpiry(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	env := testenv.Start(t, testenv.Options{CoreOptions: []core.Option{core.WithClock(clk.Now)}})
	const pass = "a password, long enough"
	start := clk.Now()
	as := func(tok, method, path string, body any, want int) []byte {
		t.Helper()
		code, b := env.AdminAs(t, tok, method, path, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		return b
	}
	create := func(tok string, body map[string]string) core.APITokenView {
		t.Helper()
		var v core.APITokenView
		if err := json.Unmarshal(as(tok, "POST", "/api/v1/auth/tokens/new", body, http.StatusCreated), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	near := func(what string, got *time.Time, want time.Time) {
		t.Helper()
		if got == nil || got.Sub(want).Abs() > time.Second {
			t.Errorf("%s expires %v, want %v", what, got, want)
		}
	}
	as(env.AdminToken, "PUT", "/api/v1/accounts/alice", map[string]string{"password": pass}, http.StatusNoContent)
	aliceLogin, aliceID := login(t, env, "alice", pass)

	long := create(env.AdminToken, map[string]string{"name": "ci"})
	near("script token of the bootstrap token (default 90 days, clamped to the bootstrap's 30)", long.ExpiresAt, start.Add(core.BootstrapTokenTTL))
	if !long.Clamped {
		t.Error("a 90-day token under a 30-day parent is not marked clamped")
	}
	short := create(env.AdminToken, map[string]string{"name": "one day", "ttl": "24h"})
	near("--ttl 24h", short.ExpiresAt, start.Add(24*time.Hour))
	fromLogin := create(aliceLogin, map[string]string{"name": "from a login"})
	near("script token of a login (clamped to the login's 12 h)", fromLogin.ExpiresAt, start.Add(core.LoginTokenTTL))
	as(env.AdminToken, "POST", "/api/v1/auth/tokens/new", map[string]string{"name": "too long", "ttl": "9000h"}, http.StatusBadRequest)
	as(env.AdminToken, "POST", "/api/v1/auth/tokens/new", map[string]string{"name": "too short", "ttl": "1s"}, http.StatusBadRequest)

	var list []core.APITokenView
	if err := json.Unmarshal(as(env.AdminToken, "GET", "/api/v1/auth/tokens", nil, http.StatusOK), &list); err != nil {
		t.Fatal(err)
	}
	for _, v := range list {
		if v.ID == aliceID {
			near("login token (listing)", v.ExpiresAt, start.Add(core.LoginTokenTTL))
		}
		if v.ExpiresAt == nil {
			t.Errorf("token %s %q listed without an expiry", v.ID, v.Name)
		}
	}

	clk.Advance(core.LoginTokenTTL - time.Second)
	as(aliceLogin, "GET", "/api/v1/devices", nil, http.StatusOK)
	clk.Advance(time.Second)
	code, body := env.AdminAs(t, aliceLogin, "GET", "/api/v1/devices", nil)
	if code != http.StatusUnauthorized || !strings.Contains(string(body), "expired") {
		t.Fatalf("login token after 12 h: %d %s, want 401 saying it expired", code, body)
	}
	as(fromLogin.Token, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)
	as(short.Token, "GET", "/api/v1/devices", nil, http.StatusOK)
	clk.Advance(12 * time.Hour)
	as(short.Token, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)

	clk.Advance(core.BootstrapTokenTTL - 24*time.Hour - time.Second)
	as(long.Token, "GET", "/api/v1/devices", nil, http.StatusOK)
	as(env.AdminToken, "GET", "/api/v1/devices", nil, http.StatusOK)
	clk.Advance(time.Second)
	as(env.AdminToken, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)
	as(long.Token, "GET", "/api/v1/devices", nil, http.StatusUnauthorized)
	// A new login still works, with a lifetime of its own choosing.
	req, _ := http.NewRequest(http.MethodPost, env.Info.CoreHTTPS+"/api/v1/auth/tokens", strings.NewReader(`{"name":"long login","ttl":"720h"}`))
	req.SetBasicAuth("alice", pass)
	res, err := env.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v core.APITokenView
	_ = json.NewDecoder(res.Body).Decode(&v)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("login --ttl 720h: %d", res.StatusCode)
	}
	near("login --ttl 720h", v.ExpiresAt, clk.Now().Add(720*time.Hour))
}
