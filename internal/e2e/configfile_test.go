package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/internal/traversal"
)

// configEnv starts core and edge with the edge pointed at the core's
// config port (the test listeners are not on 6971).
func configEnv(t *testing.T, opts ...core.Option) *testenv.Env {
	t.Helper()
	return testenv.Start(t, testenv.Options{
		CoreOptions: opts,
		Configure:   func(l *quickstart.Layout) { l.Edge.CoreConfigURL = "https://" + l.Core.ConfigAddr },
	})
}

// getFile is a raw config download: status, headers and body.
func getFile(t *testing.T, env *testenv.Env, url, accessToken string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := env.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func parseDeviceConfig(t *testing.T, what string, b []byte) core.DeviceConfig {
	t.Helper()
	var c core.DeviceConfig
	if err := xml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: config XML: %v\n%s", what, err, b)
	}
	return c
}

// expectBearer401 checks a config refusal is 401 with a Bearer challenge
// for the SIP domain, carrying bearerErr ("" = none, RFC 6750 §3.1).
func expectBearer401(t *testing.T, what string, status int, h http.Header, bearerErr string) {
	t.Helper()
	ch := h.Get("WWW-Authenticate")
	if status != http.StatusUnauthorized || !strings.HasPrefix(ch, `Bearer realm="edgeway.test"`) {
		t.Errorf("%s: HTTP %d %q, want 401 with a Bearer realm challenge", what, status, ch)
		return
	}
	if bearerErr == "" && strings.Contains(ch, "error=") {
		t.Errorf("%s: challenge %q must not carry an error code", what, ch)
	}
	if bearerErr != "" && !strings.Contains(ch, `error="`+bearerErr+`"`) {
		t.Errorf("%s: challenge %q, want error=%q", what, ch, bearerErr)
	}
}

// Issue 3, acceptance 3 (S-2, S-4, S-16, S-20): a phone downloads its
// config file over HTTPS with its own token — through the edge in MRA
// mode, from the core's 6971 on premises — and the file names the SIP
// server to use; every other token, and every other path, is refused.
func TestConfigDownload(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	env := configEnv(t, core.WithClock(clk.Now))
	ctx := context.Background()
	phA, phB := env.Phone(phoneA, true), env.Phone(phoneB, true)
	tokA, err := phA.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := phB.Onboard(ctx, env.Devices[phoneB].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	onPremA := env.Phone(phoneA, false)
	onPremA.SetTokens(tokA)
	edgeFileA := env.Info.EdgeHTTPS + "/" + phoneA + ".cnf.xml"
	coreFileA := env.Info.CoreConfig + "/" + phoneA + ".cnf.xml"

	// Own token → 200 and the right file, in MRA mode and on premises.
	for _, tc := range []struct {
		name          string
		fetch         func(context.Context) ([]byte, int, error)
		mra           bool
		sip, tokenURL string
	}{
		{"through the edge (MRA, S-20)", phA.FetchConfig, true, env.Info.EdgeSIP, env.Info.EdgeHTTPS + "/oauth2/token"},
		{"on premises (core 6971)", onPremA.FetchConfig, false, env.Info.CorePhoneOAuth, env.Layout.Core.Issuer + "/oauth2/token"},
	} {
		body, status, err := tc.fetch(ctx)
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: HTTP %d %v %s", tc.name, status, err, body)
		}
		c := parseDeviceConfig(t, tc.name, body)
		if c.Name != phoneA || c.Model != "8845" || c.MRA != tc.mra {
			t.Errorf("%s: device %q model %q mra %v", tc.name, c.Name, c.Model, c.MRA)
		}
		if len(c.Lines) != 1 || c.Lines[0].Number != "1001" || c.Lines[0].Domain != "edgeway.test" {
			t.Errorf("%s: lines %+v, want 1001@edgeway.test", tc.name, c.Lines)
		}
		if got := c.SIPServer.Address(); got != tc.sip || c.SIPServer.Transport != "TLS" {
			t.Errorf("%s: SIP server %s/%s, want %s/TLS", tc.name, got, c.SIPServer.Transport, tc.sip)
		}
		if c.TokenEndpoint != tc.tokenURL {
			t.Errorf("%s: token endpoint %q, want %q", tc.name, c.TokenEndpoint, tc.tokenURL)
		}
		sp := c.SecurityProfile
		if sp.Mode != "encrypted" || sp.Transport != "TLS" || !sp.OAuth {
			t.Errorf("%s: security profile %+v, want encrypted/TLS/OAuth (S-15)", tc.name, sp)
		}
		if c.TURN.Server != "" {
			t.Errorf("%s: TURN %q, want it left for the edge", tc.name, c.TURN.Server)
		}
		if bytes.Contains(body, []byte(tokA.AccessToken)) || bytes.Contains(body, []byte(tokA.RefreshToken)) {
			t.Errorf("%s: the file carries a token (S-16: nothing secret)", tc.name)
		}
	}

	// A phone cannot tell the core it came through an edge: Edgeway-Edge-*
	// headers sent straight to 6971 change nothing; through the edge, the
	// edge's own values replace the phone's.
	for _, tc := range []struct{ name, url, sip string }{
		{"straight to the core", coreFileA, env.Info.CorePhoneOAuth},
		{"through the edge", edgeFileA, env.Info.EdgeSIP},
	} {
		status, _, body := getFile(t, env, tc.url, tokA.AccessToken,
			traversal.EdgeSIPHeader, "evil.example.com:5061", traversal.EdgeURLHeader, "https://evil.example.com",
			traversal.ClientAddressHeader, "192.0.2.66")
		if status != http.StatusOK {
			t.Fatalf("spoofed headers %s: HTTP %d %s", tc.name, status, body)
		}
		c := parseDeviceConfig(t, tc.name, body)
		if c.SIPServer.Address() != tc.sip || strings.Contains(c.TokenEndpoint, "evil") {
			t.Errorf("spoofed headers %s: SIP server %s, token endpoint %s; want %s", tc.name, c.SIPServer.Address(), c.TokenEndpoint, tc.sip)
		}
	}

	// Another device's token → 403 (S-2), at the edge and at the core.
	for _, url := range []string{edgeFileA, coreFileA} {
		if status, _, _ := getFile(t, env, url, tokB.AccessToken); status != http.StatusForbidden {
			t.Errorf("B's token for A's file at %s: HTTP %d, want 403", url, status)
		}
	}

	// No token → 401 with a plain challenge; a forged one → invalid_token.
	for _, url := range []string{edgeFileA, coreFileA} {
		status, h, _ := getFile(t, env, url, "")
		expectBearer401(t, "no token at "+url, status, h, "")
		status, h, _ = getFile(t, env, url, "not.a.jwt")
		expectBearer401(t, "garbage token at "+url, status, h, "invalid_token")
	}
	noToken := env.Phone(phoneA, true)
	if _, status, err := noToken.FetchConfig(ctx); err != nil || status != http.StatusUnauthorized {
		t.Errorf("phone without a token: HTTP %d %v, want 401", status, err)
	}

	// S-8: the Phone-Edge-Trust bundle to any valid device token, through
	// the edge; it parses and holds the dev CA. Not without a token.
	caPEM, err := os.ReadFile(env.Layout.PKI.CACert)
	if err != nil {
		t.Fatal(err)
	}
	caBlock, _ := pem.Decode(caPEM)
	for _, base := range []string{env.Info.EdgeHTTPS, env.Info.CoreConfig} {
		url := base + "/phone-edge-trust.pem"
		status, h, body := getFile(t, env, url, tokB.AccessToken)
		if status != http.StatusOK {
			t.Fatalf("trust bundle at %s: HTTP %d %s", url, status, body)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("trust bundle: Cache-Control %q", h.Get("Cache-Control"))
		}
		found := false
		for rest := body; ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatalf("trust bundle at %s: %v", url, err)
			}
			found = found || bytes.Equal(c.Raw, caBlock.Bytes)
		}
		if !found {
			t.Errorf("trust bundle at %s does not hold the dev CA", url)
		}
		status, h, _ = getFile(t, env, url, "")
		expectBearer401(t, "trust bundle without a token at "+url, status, h, "")
	}

	// Through the edge, only the allow-list exists: everything else is 404
	// and never reaches the core (even with a valid token or the admin's).
	for _, p := range []string{
		"/api/v1/registrations",
		"/../phone-edge-trust.pem",
		"/../" + phoneA + ".cnf.xml",
		"/x/SEP1.cnf.xml",
		"/x/" + phoneA + ".cnf.xml",
		"/SEP%2F1.cnf.xml",
		"/x%2F" + phoneA + ".cnf.xml",
		"/" + phoneA + ".cnf.xml/",
		"/" + phoneA + ".xml",
		"/tomcat-trust.pem",
		"/",
	} {
		for _, tok := range []string{tokA.AccessToken, env.AdminToken} {
			if status, _, body := getFile(t, env, env.Info.EdgeHTTPS+p, tok); status != http.StatusNotFound {
				t.Errorf("edge GET %s: HTTP %d, want 404 (%.80s)", p, status, body)
			}
		}
	}

	// Revoked (RFC 7009, R-2) → 401 invalid_token.
	revoke(t, env, env.Info.EdgeHTTPS, tokB.AccessToken)
	status, h, _ := getFile(t, env, env.Info.EdgeHTTPS+"/"+phoneB+".cnf.xml", tokB.AccessToken)
	expectBearer401(t, "revoked token", status, h, "invalid_token")
	if _, status, _ := phB.FetchConfig(ctx); status != http.StatusUnauthorized {
		t.Errorf("revoked token: phone got HTTP %d", status)
	}

	// Expired: past the token's 60 minutes → 401 invalid_token.
	clk.Advance(61 * time.Minute)
	for _, url := range []string{edgeFileA, coreFileA} {
		status, h, _ := getFile(t, env, url, tokA.AccessToken)
		expectBearer401(t, "expired token at "+url, status, h, "invalid_token")
	}
	if _, status, _ := phA.FetchConfig(ctx); status != http.StatusUnauthorized {
		t.Errorf("expired token: phone got HTTP %d", status)
	}
}
