package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

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
