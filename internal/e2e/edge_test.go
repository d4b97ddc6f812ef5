package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/mtls"
)

// The edge's public HTTPS is an allow-list: the OAuth endpoints and the
// JWKS reach the core; the admin API and anything else do not exist there.
func TestEdgeHTTPSAllowList(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	client := env.HTTPClient()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/.well-known/jwks.json", 200},
		{http.MethodGet, "/api/v1/registrations", 404},
		{http.MethodPost, "/api/v1/keys/rotate", 404},
		{http.MethodGet, "/", 404},
		{http.MethodGet, "/oauth2/token", 405},
		{http.MethodGet, "/../api/v1/registrations", 404},
	} {
		req, _ := http.NewRequest(tc.method, env.Info.EdgeHTTPS+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+env.AdminToken) // even with the admin token
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("edge %s %s: HTTP %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// S-12 with a whole edge: an edge whose mTLS certificate chains to
// tomcat-trust but names no Expressway-C entry cannot onboard or register
// anyone; the core lists its name in Find as not configured.
func TestUnconfiguredEdgeIsRefused(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		ca, err := mtls.LoadCA(l.PKI.CACert, l.PKI.CAKey)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := ca.Issue(mtls.CertRequest{CommonName: "expc-rogue.edgeway.test", Names: []string{"expc-rogue.edgeway.test"}, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		l.Edge.TLS.MTLSCert, l.Edge.TLS.MTLSKey = filepath.Join(l.Dir, "rogue.pem"), filepath.Join(l.Dir, "rogue-key.pem")
		if err := os.WriteFile(l.Edge.TLS.MTLSCert, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(l.Edge.TLS.MTLSKey, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	_, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	expectOAuthError(t, "onboarding through an unconfigured edge", err, http.StatusServiceUnavailable, "temporarily_unavailable", "")

	// A token obtained elsewhere (on premises) does not help either: the
	// edge cannot reach 5091.
	onPrem := env.Phone(phoneA, false)
	tok, err := onPrem.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	ph.SetTokens(tok)
	res, err := ph.Register(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode < 500 {
		t.Fatalf("REGISTER through an unconfigured edge: %d %s, want a 5xx", res.StatusCode, res.Reason)
	}
	if n := len(env.Registrations(t)); n != 0 {
		t.Fatalf("bindings = %d, want 0", n)
	}
	code, body := env.Admin(t, http.MethodGet, "/api/v1/expressway/find", nil)
	if code != 200 {
		t.Fatal(code)
	}
	found := false
	for _, f := range decode[[]core.FoundName](t, body) {
		if f.Name == "expc-rogue.edgeway.test" {
			found = true
			if f.Configured {
				t.Errorf("rogue name shown as configured")
			}
		}
	}
	if !found {
		t.Errorf("Find does not list the rogue edge's name: %s", body)
	}
}

// Issue 9 item 14: a 10 MB form is refused 413 by whoever receives it —
// the edge before it contacts the core, the core on its own OAuth and
// admin endpoints — with a JSON error, never 400, 500 or 503.
func TestOversizedBodies(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	client := env.HTTPClient()
	big := bytes.Repeat([]byte("a"), 10<<20)
	form := append([]byte("grant_type=refresh_token&refresh_token=ewr_"), big...)
	for _, tc := range []struct {
		name, url, contentType, auth string
		body                         []byte
	}{
		{"edge token", env.Info.EdgeHTTPS + "/oauth2/token", "application/x-www-form-urlencoded", "", form},
		{"edge revoke", env.Info.EdgeHTTPS + "/oauth2/revoke", "application/x-www-form-urlencoded", "", form},
		{"core token", env.Info.CoreHTTPS + "/oauth2/token", "application/x-www-form-urlencoded", "", form},
		{"core revoke", env.Info.CoreHTTPS + "/oauth2/revoke", "application/x-www-form-urlencoded", "", form},
		{"core admin API", env.Info.CoreHTTPS + "/api/v1/trust/phone-edge-trust", "application/x-pem-file", "Bearer " + env.AdminToken, big},
	} {
		for _, chunked := range []bool{false, true} {
			var body io.Reader = bytes.NewReader(tc.body)
			if chunked {
				body = io.MultiReader(body)
			}
			req, _ := http.NewRequest(http.MethodPost, tc.url, body)
			req.Header.Set("Content-Type", tc.contentType)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s (chunked %v): %v", tc.name, chunked, err)
			}
			var e map[string]string
			derr := json.NewDecoder(res.Body).Decode(&e)
			res.Body.Close()
			if res.StatusCode != http.StatusRequestEntityTooLarge || derr != nil || e["error"] == "" {
				t.Errorf("%s (chunked %v): HTTP %d %v %v, want 413 with a JSON error", tc.name, chunked, res.StatusCode, e, derr)
			}
		}
	}
	// The edge still works afterwards.
	ph := env.Phone(phoneA, true)
	if _, err := ph.Onboard(context.Background(), env.Devices[phoneA].ActivationCode); err != nil {
		t.Fatalf("onboarding after the oversized requests: %v", err)
	}
}
