package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/internal/token"
)

// revokeAs posts an RFC 7009 revocation to base with the given bearer
// ("" for none) and returns the status, the OAuth error code and the
// response.
func revokeAs(t *testing.T, c *http.Client, base, bearer string, form url.Values) (int, string, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/revoke", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return res.StatusCode, e.Error, res
}

// claimsOf reads an access token's claims without checking them.
func claimsOf(t *testing.T, at string) *token.Claims {
	t.Helper()
	var c token.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(at, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// auditActions counts the audit entries of action and returns their details.
func auditDetails(t *testing.T, env *testenv.Env, action string) []string {
	t.Helper()
	es, err := env.Store.ListAudit(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Action == action {
			out = append(out, e.Detail)
		}
	}
	return out
}

// R-2, RFC 7009: an administrator revokes a phone's tokens by value on
// the core's /oauth2/revoke with an admin API token. A refresh token takes
// its family with it: the phone's refresh is refused (invalid_grant) and
// its access token no longer registers (401 invalid_token). An access
// token takes its jti and its family: the same. Each is audited as
// oauth.revoke with the family and jti, never the token. An unknown token
// is 200 (§2.2) and audits nothing; a hint of another type is 400
// unsupported_token_type (§2.2.1).
func TestAdminRevokesTokenByValue(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	hc := env.HTTPClient()
	phA, phB := registered(t, env, phoneA, true), registered(t, env, phoneB, true)
	tokA, tokB := phA.Tokens(), phB.Tokens()

	code, _, res := revokeAs(t, hc, env.Info.CoreHTTPS, env.AdminToken, url.Values{"token": {tokA.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if code != 200 || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("admin revokes a phone's refresh token: HTTP %d (Cache-Control %q), want 200 no-store", code, res.Header.Get("Cache-Control"))
	}
	_, err := phA.Refresh(ctx)
	expectOAuthError(t, "refresh after an admin revoked it", err, 400, "invalid_grant", "revoked")
	expectRefusal(t, phA, "access token of a family an admin revoked", "Bearer "+tokA.AccessToken, 401, "invalid_token")
	famA := claimsOf(t, tokA.AccessToken).Family
	if ds := auditDetails(t, env, oauth.ActionOAuthRevoke); len(ds) != 1 || !strings.Contains(ds[0], famA) || strings.Contains(ds[0], tokA.RefreshToken) {
		t.Fatalf("audit of the revocation: %q, want one oauth.revoke naming family %s and not the token", ds, famA)
	}

	// An access token: its jti and its family (the client's own
	// revocation takes only the jti).
	cB := claimsOf(t, tokB.AccessToken)
	if code, _, _ := revokeAs(t, hc, env.Info.CoreHTTPS, env.AdminToken, url.Values{"token": {tokB.AccessToken}, "token_type_hint": {"access_token"}}); code != 200 {
		t.Fatalf("admin revokes a phone's access token: HTTP %d", code)
	}
	expectRefusal(t, phB, "access token an admin revoked", "Bearer "+tokB.AccessToken, 401, "invalid_token")
	_, err = phB.Refresh(ctx)
	expectOAuthError(t, "refresh of the family of an access token an admin revoked", err, 400, "invalid_grant", "revoked")
	if ds := auditDetails(t, env, oauth.ActionOAuthRevoke); len(ds) != 2 || !strings.Contains(ds[0], cB.ID) || !strings.Contains(ds[0], cB.Family) || strings.Contains(ds[0], tokB.AccessToken) {
		t.Fatalf("audit: %q, want a second oauth.revoke naming jti %s and family %s", ds, cB.ID, cB.Family)
	}

	// RFC 7009 §2.2: unknown, malformed or revoked already: 200, nothing audited.
	for _, tok := range []string{"ewr_not-a-token", "not.a.jwt", tokA.RefreshToken} {
		if code, _, _ := revokeAs(t, hc, env.Info.CoreHTTPS, env.AdminToken, url.Values{"token": {tok}}); code != 200 {
			t.Errorf("admin revokes %q: HTTP %d, want 200 (RFC 7009 §2.2)", tok, code)
		}
	}
	if ds := auditDetails(t, env, oauth.ActionOAuthRevoke); len(ds) != 2 {
		t.Errorf("audit after revoking nothing: %q, want the 2 entries as before", ds)
	}
	// RFC 7009 §2.2.1: a token type this server does not revoke.
	for _, bearer := range []string{env.AdminToken, ""} {
		if code, e, _ := revokeAs(t, hc, env.Info.CoreHTTPS, bearer, url.Values{"token": {"x"}, "token_type_hint": {"id_token"}}); code != 400 || e != "unsupported_token_type" {
			t.Errorf("token_type_hint id_token (admin %v): HTTP %d %s, want 400 unsupported_token_type", bearer != "", code, e)
		}
	}
}

// R-2, RFC 7009 §2.1, RFC 6749 §5.2: only an admin API token lets a
// request revoke another's tokens. A phone's access token, an unknown
// admin token or a revoked one as the bearer is 401 invalid_client and
// revokes nothing — the request is not taken as a client's own
// revocation either. Through the edge an admin token does nothing: the
// edge refuses a revocation with credentials (and drops Authorization
// from what it forwards), and the core refuses an administrator's
// revocation that comes over an edge's mutual TLS.
func TestAdminRevokeNeedsAdminOnCore(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	hc := env.HTTPClient()
	phA, phB := registered(t, env, phoneA, true), registered(t, env, phoneB, true)
	tokA := phA.Tokens()

	// A second admin token, revoked.
	var created struct{ ID, Token string }
	if code, b := env.Admin(t, http.MethodPost, "/api/v1/auth/tokens/new", map[string]string{"name": "soon revoked"}); code != 201 || json.Unmarshal(b, &created) != nil {
		t.Fatalf("creating an API token: HTTP %d %s", code, b)
	}
	if code, b := env.Admin(t, http.MethodDelete, "/api/v1/auth/tokens/"+created.ID, nil); code != 204 {
		t.Fatalf("revoking the API token: HTTP %d %s", code, b)
	}

	for _, tc := range []struct{ name, bearer, base string }{
		{"a phone's own access token", phB.Tokens().AccessToken, env.Info.CoreHTTPS},
		{"not an admin token", "ewa_not-a-token", env.Info.CoreHTTPS},
		{"a revoked admin token", created.Token, env.Info.CoreHTTPS},
		{"an admin token through the edge", env.AdminToken, env.Info.EdgeHTTPS},
	} {
		for _, tok := range []string{tokA.AccessToken, tokA.RefreshToken} {
			code, e, res := revokeAs(t, hc, tc.base, tc.bearer, url.Values{"token": {tok}})
			if code != 401 || e != "invalid_client" || res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: HTTP %d %s (WWW-Authenticate %q), want 401 invalid_client with a challenge", tc.name, code, e, res.Header.Get("WWW-Authenticate"))
			}
		}
	}

	// The core itself refuses an admin token over an edge's connection.
	edgeCert, err := tls.LoadX509KeyPair(env.Layout.PKI.EdgeMTLSCert, env.Layout.PKI.EdgeMTLSKey)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.CA, Certificates: []tls.Certificate{edgeCert}}}
	defer tr.CloseIdleConnections()
	if code, e, _ := revokeAs(t, &http.Client{Transport: tr}, env.Info.CoreHTTPS, env.AdminToken, url.Values{"token": {tokA.AccessToken}}); code != 401 || e != "invalid_client" {
		t.Errorf("an admin token over an edge's mutual TLS: HTTP %d %s, want 401 invalid_client", code, e)
	}

	// Nothing was revoked, nothing audited.
	if ds := auditDetails(t, env, oauth.ActionOAuthRevoke); len(ds) != 0 {
		t.Errorf("audit: %q, want no oauth.revoke", ds)
	}
	if res, err := phA.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("the phone registering after refused revocations: %v %v", res, err)
	}
	if _, err := phA.Refresh(ctx); err != nil {
		t.Fatalf("the phone refreshing after refused revocations: %v", err)
	}
}
