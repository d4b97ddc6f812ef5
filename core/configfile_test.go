package core_test

import (
	"crypto/tls"
	"encoding/xml"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/internal/traversal"
)

const (
	devA = "SEP001122334401" // line 1001
	devB = "SEP001122334402"
)

func TestConfigFileDevice(t *testing.T) {
	long := strings.Repeat("A", 64)
	for _, tc := range []struct {
		path, device string
		ok           bool
	}{
		{"/SEP001122334401.cnf.xml", "SEP001122334401", true},
		{"/CSF_demo-1.cnf.xml", "CSF_demo-1", true},
		{"/" + long + ".cnf.xml", long, true},
		{"/" + long + "A.cnf.xml", "", false}, // 65 characters
		{"/.cnf.xml", "", false},
		{"SEP1.cnf.xml", "", false},
		{"/a/SEP1.cnf.xml", "", false},
		{"/../SEP1.cnf.xml", "", false},
		{"/SEP1.cnf.xml/", "", false},
		{"/SEP1.cnf.xml.bak", "", false},
		{"/SEP 1.cnf.xml", "", false},
		{"/SEP.1.cnf.xml", "", false},
		{"/SEP1.CNF.XML", "", false},
		{"/phone-edge-trust.pem", "", false},
	} {
		d, ok := core.ConfigFileDevice(tc.path)
		if d != tc.device || ok != tc.ok {
			t.Errorf("ConfigFileDevice(%q) = %q, %v; want %q, %v", tc.path, d, ok, tc.device, tc.ok)
		}
	}
}

type configResponse struct {
	status int
	header http.Header
	body   []byte
}

func configGet(t *testing.T, client *http.Client, method, url, auth string, hdr map[string]string) configResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return configResponse{resp.StatusCode, resp.Header, b}
}

func parseConfig(t *testing.T, b []byte) core.DeviceConfig {
	t.Helper()
	var c core.DeviceConfig
	if err := xml.Unmarshal(b, &c); err != nil {
		t.Fatalf("config XML: %v\n%s", err, b)
	}
	return c
}

// S-2, S-4, S-16: the core's config port serves a device's file to that
// device's own token only, and says what each refusal is.
func TestConfigDownloadOnPremises(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	client := env.HTTPClient()
	base := env.Info.CoreConfig
	now := time.Now()
	tokA := env.SignWithCoreKey(t, env.Claims(devA, now))
	tokB := env.SignWithCoreKey(t, env.Claims(devB, now))
	ghost := env.SignWithCoreKey(t, env.Claims("SEP00000000FFFF", now))
	expired := env.SignWithCoreKey(t, env.Claims(devA, now.Add(-2*time.Hour)))
	fileA := base + "/" + devA + ".cnf.xml"

	r := configGet(t, client, http.MethodGet, fileA, "Bearer "+tokA, nil)
	if r.status != 200 {
		t.Fatalf("own token: HTTP %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/xml" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if !strings.HasPrefix(string(r.body), "<?xml") {
		t.Errorf("no XML declaration: %s", r.body)
	}
	c := parseConfig(t, r.body)
	lay := env.Layout.Core
	want := core.DeviceConfig{
		XMLName: xml.Name{Local: "device"}, Name: devA, Model: "8845", MRA: false,
		SecurityProfile: core.DeviceConfigSecurity{Name: "Edgeway OAuth Phone Profile", Mode: "encrypted", Transport: "TLS", OAuth: true},
		SIPServer:       core.DeviceConfigSIP{Host: lay.AdvertisedHost, Port: lay.PhoneOAuthPort, Transport: "TLS"},
		TokenEndpoint:   lay.Issuer + "/oauth2/token",
		Lines:           []core.DeviceConfigLine{{Index: 1, Number: "1001", Domain: "edgeway.test"}},
	}
	c.TURN = core.DeviceConfigTURN{}
	if got := c; got.Name != want.Name || got.Model != want.Model || got.MRA != want.MRA || got.SecurityProfile != want.SecurityProfile ||
		got.SIPServer != want.SIPServer || got.TokenEndpoint != want.TokenEndpoint || len(got.Lines) != 1 || got.Lines[0] != want.Lines[0] {
		t.Errorf("config:\n got %+v\nwant %+v", got, want)
	}
	if got := c.SIPServer.Address(); got != env.Info.CorePhoneOAuth {
		t.Errorf("SIP server %s, want the core's Phone OAuth port %s", got, env.Info.CorePhoneOAuth)
	}
	if !regexp.MustCompile(`<turn>\s*<!--[^<>]*-->\s*</turn>`).Match(r.body) {
		t.Errorf("no empty <turn> element with its comment: %s", r.body)
	}
	for _, secret := range []string{tokA, "PRIVATE KEY", "activation"} {
		if strings.Contains(string(r.body), secret) {
			t.Errorf("config file carries %q (S-16: nothing secret)", secret)
		}
	}

	for _, tc := range []struct {
		name, method, url, auth string
		status                  int
		bearerErr               string // "" = challenge without error; "-" = no challenge
	}{
		{"no token", http.MethodGet, fileA, "", 401, ""},
		{"Basic scheme", http.MethodGet, fileA, "Basic ZGVtbzpkZW1v", 401, ""},
		{"garbage token", http.MethodGet, fileA, "Bearer not.a.jwt", 401, "invalid_token"},
		{"expired token", http.MethodGet, fileA, "Bearer " + expired, 401, "invalid_token"},
		{"another device's token (S-2)", http.MethodGet, fileA, "Bearer " + tokB, 403, "insufficient_scope"},
		{"token of an unknown device, its own file", http.MethodGet, base + "/SEP00000000FFFF.cnf.xml", "Bearer " + ghost, 404, "-"},
		{"token of an unknown device, trust bundle", http.MethodGet, base + "/phone-edge-trust.pem", "Bearer " + ghost, 401, "invalid_token"},
		{"trust bundle without token", http.MethodGet, base + "/phone-edge-trust.pem", "", 401, ""},
		{"POST", http.MethodPost, fileA, "Bearer " + tokA, 405, "-"},
		{"HEAD", http.MethodHead, fileA, "Bearer " + tokA, 405, "-"},
		{"root", http.MethodGet, base + "/", "Bearer " + tokA, 404, "-"},
		{"admin API", http.MethodGet, base + "/api/v1/registrations", "Bearer " + env.AdminToken, 404, "-"},
		{"dot segment", http.MethodGet, base + "/../" + devA + ".cnf.xml", "Bearer " + tokA, 404, "-"},
		{"nested", http.MethodGet, base + "/x/" + devA + ".cnf.xml", "Bearer " + tokA, 404, "-"},
		{"encoded slash", http.MethodGet, base + "/x%2F" + devA + ".cnf.xml", "Bearer " + tokA, 404, "-"},
		{"encoded letter", http.MethodGet, base + "/%53EP001122334401.cnf.xml", "Bearer " + tokA, 404, "-"},
		{"query", http.MethodGet, fileA + "?x=1", "Bearer " + tokA, 200, "-"},
	} {
		r := configGet(t, client, tc.method, tc.url, tc.auth, nil)
		if r.status != tc.status {
			t.Errorf("%s: HTTP %d, want %d (%s)", tc.name, r.status, tc.status, r.body)
			continue
		}
		ch := r.header.Get("WWW-Authenticate")
		switch tc.bearerErr {
		case "-":
			if ch != "" {
				t.Errorf("%s: unexpected challenge %q", tc.name, ch)
			}
		case "":
			if ch != `Bearer realm="edgeway.test"` {
				t.Errorf("%s: challenge %q, want a plain Bearer realm", tc.name, ch)
			}
		default:
			if !strings.HasPrefix(ch, `Bearer realm="edgeway.test"`) || !strings.Contains(ch, `error="`+tc.bearerErr+`"`) {
				t.Errorf("%s: challenge %q, want error=%q", tc.name, ch, tc.bearerErr)
			}
		}
		if strings.Contains(string(r.body), tokA) {
			t.Errorf("%s: response echoes the token", tc.name)
		}
	}

	// S-8: the Phone-Edge-Trust bundle to any valid device token.
	for _, tok := range []string{tokA, tokB} {
		r := configGet(t, client, http.MethodGet, base+"/phone-edge-trust.pem", "Bearer "+tok, nil)
		if r.status != 200 || !strings.Contains(string(r.body), "-----BEGIN CERTIFICATE-----") {
			t.Errorf("trust bundle: HTTP %d %.80s", r.status, r.body)
		}
	}
}

// A request that presents an admitted edge's certificate is MRA (S-20):
// the edge's public addresses go into the file. The same headers from a
// phone (no certificate) change nothing, and an edge that sends no usable
// address gets 502, never an on-premises file.
func TestConfigDownloadThroughEdgeCertificate(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	tokA := env.SignWithCoreKey(t, env.Claims(devA, time.Now()))
	fileA := env.Info.CoreConfig + "/" + devA + ".cnf.xml"
	cert, err := tls.LoadX509KeyPair(env.Layout.PKI.EdgeMTLSCert, env.Layout.PKI.EdgeMTLSKey)
	if err != nil {
		t.Fatal(err)
	}
	asEdge := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.CA, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	edgeHeaders := map[string]string{
		traversal.EdgeSIPHeader: "expe-1.example.com:5061",
		traversal.EdgeURLHeader: "https://expe-1.example.com:8443/",
	}

	r := configGet(t, asEdge, http.MethodGet, fileA, "Bearer "+tokA, edgeHeaders)
	if r.status != 200 {
		t.Fatalf("through the edge: HTTP %d %s", r.status, r.body)
	}
	c := parseConfig(t, r.body)
	if !c.MRA || c.SIPServer.Address() != "expe-1.example.com:5061" || c.SIPServer.Transport != "TLS" ||
		c.TokenEndpoint != "https://expe-1.example.com:8443/oauth2/token" {
		t.Errorf("MRA config: %+v", c)
	}

	r = configGet(t, env.HTTPClient(), http.MethodGet, fileA, "Bearer "+tokA, edgeHeaders)
	if r.status != 200 {
		t.Fatalf("phone with edge headers: HTTP %d %s", r.status, r.body)
	}
	c = parseConfig(t, r.body)
	if c.MRA || c.SIPServer.Address() != env.Info.CorePhoneOAuth || c.TokenEndpoint != env.Layout.Core.Issuer+"/oauth2/token" {
		t.Errorf("a phone's own Edgeway-Edge-* headers were believed: %+v", c)
	}

	for name, hdr := range map[string]map[string]string{
		"no headers":       nil,
		"SIP without port": {traversal.EdgeSIPHeader: "expe-1.example.com", traversal.EdgeURLHeader: "https://expe-1.example.com:8443"},
		"http URL":         {traversal.EdgeSIPHeader: "expe-1.example.com:5061", traversal.EdgeURLHeader: "http://expe-1.example.com:8443"},
		"markup in host":   {traversal.EdgeSIPHeader: "<a>:5061", traversal.EdgeURLHeader: "https://expe-1.example.com:8443"},
	} {
		if r := configGet(t, asEdge, http.MethodGet, fileA, "Bearer "+tokA, hdr); r.status != http.StatusBadGateway {
			t.Errorf("edge with %s: HTTP %d, want 502", name, r.status)
		}
	}
}

// Infrastructure errors are "try later", never "bad token".
func TestConfigDownloadStoreDown(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	tokA := env.SignWithCoreKey(t, env.Claims(devA, time.Now()))
	fileA := env.Info.CoreConfig + "/" + devA + ".cnf.xml"
	if r := configGet(t, env.HTTPClient(), http.MethodGet, fileA, "Bearer "+tokA, nil); r.status != 200 {
		t.Fatalf("store up: HTTP %d", r.status)
	}
	if err := env.Store.Close(); err != nil {
		t.Fatal(err)
	}
	r := configGet(t, env.HTTPClient(), http.MethodGet, fileA, "Bearer "+tokA, nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("store down: HTTP %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
}
