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
	"time"

	"github.com/edgeway/edgeway/internal/testenv"
)

// introspect posts form to base+/oauth2/introspect with client, adding
// auth as the Authorization header, and decodes the answer.
func introspect(t *testing.T, client *http.Client, base, auth string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/introspect", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, res.Header, m
}

// RFC 7662 at the core: the edge (by its mutual-TLS certificate, S-12) and
// an operator's tool (by an admin API token) learn whether a token is
// active; no one else may ask, and phones cannot reach it through the
// edge. A phone's live access and refresh tokens are active; once their
// family is revoked (RFC 7009 at the edge) both are inactive, as are
// unknown, malformed and wrongly typed tokens.
func TestIntrospection(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ph := registered(t, env, phoneA, true)
	tok := ph.Tokens()

	edgeCert, err := tls.LoadX509KeyPair(env.Layout.PKI.EdgeMTLSCert, env.Layout.PKI.EdgeMTLSKey)
	if err != nil {
		t.Fatal(err)
	}
	edgeTr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.CA, Certificates: []tls.Certificate{edgeCert}, MinVersion: tls.VersionTLS12}}
	t.Cleanup(edgeTr.CloseIdleConnections)
	asEdge := &http.Client{Transport: edgeTr}
	plain := env.HTTPClient()
	admin := "Bearer " + env.AdminToken
	core := env.Info.CoreHTTPS

	type caller struct {
		name   string
		client *http.Client
		auth   string
	}
	callers := []caller{{"edge certificate", asEdge, ""}, {"admin token", plain, admin}}
	for _, cl := range callers {
		code, _, m := introspect(t, cl.client, core, cl.auth, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}})
		if code != 200 || m["active"] != true || m["client_id"] != phoneA || m["sub"] != phoneA || m["token_type"] != "Bearer" ||
			m["iss"] != env.Layout.Core.Issuer || m["jti"] == nil || m["exp"] == nil || m["iat"] == nil || m["aud"] == nil {
			t.Errorf("%s, live access token: HTTP %d %v; want active, client_id/sub %s, token_type Bearer, iss, jti, exp, iat, aud", cl.name, code, m, phoneA)
		}
		code, _, m = introspect(t, cl.client, core, cl.auth, url.Values{"token": {tok.RefreshToken}})
		if code != 200 || m["active"] != true || m["client_id"] != phoneA || m["token_type"] != "refresh_token" || m["exp"] == nil || m["iat"] == nil {
			t.Errorf("%s, live refresh token: HTTP %d %v; want active, client_id %s, token_type refresh_token, exp, iat", cl.name, code, m, phoneA)
		}
	}
	// typ JWT (the legacy format) issued after the core started (iat has
	// whole seconds), and a type that is never an access token.
	wrongTyp := env.SignTypedWithCoreKey(t, "JWT", env.Claims(phoneA, time.Now().Add(2*time.Second)))
	otherTyp := env.SignTypedWithCoreKey(t, "secevent+jwt", env.Claims(phoneA, time.Now().Add(-time.Minute)))
	for _, inactive := range []struct{ name, tok string }{
		{"unknown refresh token", "ewr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"malformed", "not.a.jwt"},
		{"typ JWT issued after the upgrade, signed by the core's key (RFC 9068 §4)", wrongTyp},
		{"typ secevent+jwt, signed by the core's key (RFC 9068 §4)", otherTyp},
	} {
		code, _, m := introspect(t, asEdge, core, "", url.Values{"token": {inactive.tok}})
		if code != 200 || len(m) != 1 || m["active"] != false {
			t.Errorf("%s: HTTP %d %v, want exactly {\"active\": false} (RFC 7662 §2.2)", inactive.name, code, m)
		}
	}

	// RFC 7662 §2.1: callers must authenticate.
	for _, bad := range []struct {
		name, auth string
	}{
		{"no credentials", ""},
		{"a phone's own access token", "Bearer " + tok.AccessToken},
		{"a phone's refresh token", "Bearer " + tok.RefreshToken},
	} {
		code, h, m := introspect(t, plain, core, bad.auth, url.Values{"token": {tok.AccessToken}})
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer ") || m["active"] != nil ||
			!strings.Contains(m["error_description"].(string), "RFC 7662 §2.1") {
			t.Errorf("%s: HTTP %d %v (WWW-Authenticate %q); want 401 with a challenge naming RFC 7662 §2.1 and no answer about the token",
				bad.name, code, m, h.Get("WWW-Authenticate"))
		}
	}
	// Not reachable through the edge, whatever the credentials.
	for _, cl := range []caller{{"phone", plain, ""}, {"admin token", plain, admin}} {
		if code, _, m := introspect(t, cl.client, env.Info.EdgeHTTPS, cl.auth, url.Values{"token": {tok.AccessToken}}); code != http.StatusNotFound {
			t.Errorf("%s at the edge: HTTP %d %v, want 404", cl.name, code, m)
		}
	}

	// Revoking the family (R-2, by an administrator) makes both tokens
	// inactive at once: neither was revoked or used itself.
	fam, _ := jwtPart(t, tok.AccessToken, 1)["fam"].(string)
	if code, b := env.Admin(t, http.MethodDelete, "/api/v1/families/"+fam, nil); code < 200 || code > 299 {
		t.Fatalf("revoking family %q: HTTP %d %s", fam, code, b)
	}
	inactive := func(what string, raws ...string) {
		t.Helper()
		for _, cl := range callers {
			for _, raw := range raws {
				code, _, m := introspect(t, cl.client, core, cl.auth, url.Values{"token": {raw}})
				if code != 200 || len(m) != 1 || m["active"] != false {
					t.Errorf("%s, %s: HTTP %d %v, want {\"active\": false}", cl.name, what, code, m)
				}
			}
		}
	}
	inactive("token of a revoked family", tok.AccessToken, tok.RefreshToken)
	if res, err := ph.Register(context.Background(), 600); err != nil || res.StatusCode != 401 {
		t.Errorf("REGISTER with the revoked family's token: %v %v, want 401 (introspection agrees with the registrar)", res, err)
	}

	// A second phone's refresh token revoked by the phone itself (RFC 7009
	// through the edge), and its access token once used up by a refresh.
	phB := registered(t, env, phoneB, true)
	b1 := phB.Tokens()
	if _, err := phB.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	b2 := phB.Tokens()
	inactive("refresh token already rotated", b1.RefreshToken)
	for _, cl := range callers {
		if code, _, m := introspect(t, cl.client, core, cl.auth, url.Values{"token": {b2.RefreshToken}, "token_type_hint": {"access_token"}}); code != 200 || m["active"] != true {
			t.Errorf("%s, the successor refresh token (with a wrong hint, RFC 7662 §2.1): HTTP %d %v, want active", cl.name, code, m)
		}
	}
	revoke(t, env, env.Info.EdgeHTTPS, b2.RefreshToken)
	inactive("refresh token revoked (RFC 7009)", b2.RefreshToken, b2.AccessToken)
}
