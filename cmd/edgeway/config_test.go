package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
)

func loadDeployCore(t *testing.T) core.Config {
	t.Helper()
	var c core.Config
	if err := loadYAML(filepath.Join("..", "..", "deploy", "core.yaml"), &c); err != nil {
		t.Fatalf("deploy/core.yaml: %v", err)
	}
	return c
}

func loadDeployEdge(t *testing.T) edge.Config {
	t.Helper()
	var c edge.Config
	if err := loadYAML(filepath.Join("..", "..", "deploy", "edge.yaml"), &c); err != nil {
		t.Fatalf("deploy/edge.yaml: %v", err)
	}
	return c
}

func TestDeployCoreYAML(t *testing.T) {
	c := loadDeployCore(t)
	checks := []struct {
		key       string
		got, want any
	}{
		{"node", c.Node, "core-1"},
		{"phone_oauth_port (S-11)", c.PhoneOAuthPort, 5090},
		{"mra_port (S-11)", c.MRAPort, 5091},
		{"https_addr", c.HTTPSAddr, "0.0.0.0:8443"},
		{"sip_address", c.SIPAddress, "0.0.0.0"},
		{"access_token_ttl", c.AccessTokenTTL, 60 * time.Minute},
		{"refresh_token_ttl", c.RefreshTokenTTL, 1440 * time.Hour},
		{"refresh_grace", *c.RefreshGrace, 30 * time.Second},
		{"activation_code_ttl", c.ActivationCodeTTL, 168 * time.Hour},
		{"max_register_expires", c.MaxRegisterExpires, 3600},
		{"sip_idle_timeout", c.SIPIdleTimeout, 5 * time.Minute},
		{"handshake_timeout", c.HandshakeTimeout, 10 * time.Second},
		{"audience", c.Audience, "urn:edgeway:sip"},
		{"tls.cert", c.TLS.Cert, "/etc/edgeway/core.pem"},
		{"tls.tomcat_trust", c.TLS.TomcatTrust, "/etc/edgeway/tomcat-trust.pem"},
		{"tls.phone_edge_trust", c.TLS.PhoneEdgeTrust, "/etc/edgeway/phone-edge-trust.pem"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.key, ck.got, ck.want)
		}
	}

	// "the value shown is the default": for the keys whose comments say so,
	// the file agrees with WithDefaults.
	d := core.Config{}.WithDefaults()
	defaults := []struct {
		key       string
		got, want any
	}{
		{"phone_oauth_port", c.PhoneOAuthPort, d.PhoneOAuthPort},
		{"mra_port", c.MRAPort, d.MRAPort},
		{"sip_address", c.SIPAddress, d.SIPAddress},
		{"audience", c.Audience, d.Audience},
		{"access_token_ttl", c.AccessTokenTTL, d.AccessTokenTTL},
		{"refresh_token_ttl", c.RefreshTokenTTL, d.RefreshTokenTTL},
		{"refresh_grace", *c.RefreshGrace, *d.RefreshGrace},
		{"activation_code_ttl", c.ActivationCodeTTL, d.ActivationCodeTTL},
		{"activation_guesses", c.ActivationGuesses, d.ActivationGuesses},
		{"max_register_expires", c.MaxRegisterExpires, d.MaxRegisterExpires},
		{"sip_idle_timeout", c.SIPIdleTimeout, d.SIPIdleTimeout},
		{"handshake_timeout", c.HandshakeTimeout, d.HandshakeTimeout},
		{"sip_unregistered_timeout", c.SIPUnregisteredTimeout, d.SIPUnregisteredTimeout},
		{"sip_max_inflight", c.SIPMaxInFlight, d.SIPMaxInFlight},
		{"max_conns_per_source", c.MaxConnsPerSource, d.MaxConnsPerSource},
	}
	for _, ck := range defaults {
		if ck.got != ck.want {
			t.Errorf("deploy/core.yaml %s = %v but the default is %v", ck.key, ck.got, ck.want)
		}
	}
	if c.Store != c.DataDir+"/core.db" || c.AdminTokenFile != c.DataDir+"/admin.token" {
		t.Errorf("store %q / admin_token_file %q are not the documented <data_dir> defaults (data_dir %q)", c.Store, c.AdminTokenFile, c.DataDir)
	}
	if err := c.WithDefaults().Validate(); err != nil {
		t.Errorf("deploy/core.yaml does not validate: %v", err)
	}
}

func TestDeployEdgeYAML(t *testing.T) {
	e := loadDeployEdge(t)
	checks := []struct {
		key       string
		got, want any
	}{
		{"node", e.Node, "expe-1"},
		{"sip_addr", e.SIPAddr, "0.0.0.0:5061"},
		{"https_addr", e.HTTPSAddr, "0.0.0.0:8443"},
		{"cores[0].mra (S-11)", e.Cores[0].MRA, "cucm-pub.example.com:5091"},
		{"cores", len(e.Cores), 3},
		{"core_health_interval", e.CoreHealthInterval, 5 * time.Second},
		{"token_audience", e.TokenAudience, "urn:edgeway:sip"},
		{"sip_idle_timeout", e.SIPIdleTimeout, 5 * time.Minute},
		{"handshake_timeout", e.HandshakeTimeout, 10 * time.Second},
		{"max_conns_per_source", e.MaxConnsPerSource, 200},
		{"activation_failures", e.ActivationFailures, edge.Config{}.WithDefaults().ActivationFailures},
		{"tls.mtls_cert", e.TLS.MTLSCert, "/etc/edgeway/edge-mtls.pem"},
		{"turn.batch_io", e.TURN.BatchIO != nil && *e.TURN.BatchIO, true},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.key, ck.got, ck.want)
		}
	}
	// The comments say the first entry's keys equal what WithDefaults
	// derives from its url.
	first := e.Cores[0]
	bare := edge.Config{Node: e.Node, Cores: []edge.CoreNode{{URL: first.URL}}}.WithDefaults().Cores[0]
	if first != bare {
		t.Errorf("cores[0] %+v, defaults from its url %+v", first, bare)
	}
	if u, err := url.Parse(first.URL); err != nil || u.Hostname() != first.ServerName {
		t.Errorf("cores[0].server_name %q is not the host of its url %q", first.ServerName, first.URL)
	}
	d0 := edge.Config{Node: e.Node}.WithDefaults()
	if e.CoreHealthTimeout != d0.CoreHealthTimeout || e.CoreDownAfter != d0.CoreDownAfter || e.CoreUpAfter != d0.CoreUpAfter {
		t.Errorf("core_health_timeout %s, core_down_after %d, core_up_after %d; defaults %s, %d, %d",
			e.CoreHealthTimeout, e.CoreDownAfter, e.CoreUpAfter, d0.CoreHealthTimeout, d0.CoreDownAfter, d0.CoreUpAfter)
	}
	if err := e.WithDefaults().Validate(); err != nil {
		t.Errorf("deploy/edge.yaml does not validate: %v", err)
	}
	d := edge.Config{}.WithDefaults()
	if e.SIPUnregisteredTimeout != d.SIPUnregisteredTimeout || e.SIPMaxInFlight != d.SIPMaxInFlight || e.MaxConnsPerSource != d.MaxConnsPerSource {
		t.Errorf("deploy/edge.yaml sip_unregistered_timeout %s, sip_max_inflight %d, max_conns_per_source %d; defaults %s, %d, %d",
			e.SIPUnregisteredTimeout, e.SIPMaxInFlight, e.MaxConnsPerSource, d.SIPUnregisteredTimeout, d.SIPMaxInFlight, d.MaxConnsPerSource)
	}
}

func TestDeployEdgeMatchesCore(t *testing.T) {
	// "Must equal the core's issuer and audience."
	c, e := loadDeployCore(t).WithDefaults(), loadDeployEdge(t).WithDefaults()
	if e.TokenIssuer != c.Issuer {
		t.Errorf("edge token_issuer %q != core issuer %q", e.TokenIssuer, c.Issuer)
	}
	if e.TokenAudience != c.Audience {
		t.Errorf("edge token_audience %q != core audience %q", e.TokenAudience, c.Audience)
	}
	// The edge reaches the core's MRA port (S-11), at its advertised host
	// (the host of its Record-Route).
	if want := c.AdvertisedHost + ":5091"; e.Cores[0].MRA != want || c.MRAPort != 5091 {
		t.Errorf("edge cores[0].mra %q, core advertised_host %q mra_port %d", e.Cores[0].MRA, c.AdvertisedHost, c.MRAPort)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadYAML(t *testing.T) {
	t.Run("unknown top-level key refused", func(t *testing.T) {
		var c core.Config
		p := writeFile(t, "c.yaml", "node: core-1\nmra_prot: 5091\n")
		if err := loadYAML(p, &c); err == nil {
			t.Fatal("loadYAML accepted an unknown key")
		}
	})
	t.Run("unknown nested key refused", func(t *testing.T) {
		var c edge.Config
		p := writeFile(t, "e.yaml", "tls:\n  public_cert: a.pem\n  publik_key: b.pem\n")
		if err := loadYAML(p, &c); err == nil {
			t.Fatal("loadYAML accepted an unknown key under tls")
		}
	})
	t.Run("core key in edge file refused", func(t *testing.T) {
		var c edge.Config
		p := writeFile(t, "e.yaml", "phone_oauth_port: 5090\n")
		if err := loadYAML(p, &c); err == nil {
			t.Fatal("loadYAML accepted a core key in an edge config")
		}
	})
	t.Run("wrong type refused", func(t *testing.T) {
		var c core.Config
		p := writeFile(t, "c.yaml", "mra_port: five\n")
		if err := loadYAML(p, &c); err == nil {
			t.Fatal("loadYAML accepted a string port")
		}
	})
	t.Run("bad duration refused", func(t *testing.T) {
		var c core.Config
		p := writeFile(t, "c.yaml", "access_token_ttl: an hour\n")
		if err := loadYAML(p, &c); err == nil {
			t.Fatal("loadYAML accepted a bad duration")
		}
	})
	t.Run("durations", func(t *testing.T) {
		var c core.Config
		p := writeFile(t, "c.yaml", "access_token_ttl: 90s\nrefresh_token_ttl: 2h30m\n")
		if err := loadYAML(p, &c); err != nil {
			t.Fatal(err)
		}
		if c.AccessTokenTTL != 90*time.Second || c.RefreshTokenTTL != 150*time.Minute {
			t.Errorf("durations = %v, %v", c.AccessTokenTTL, c.RefreshTokenTTL)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		c := core.Config{Node: "kept"}
		if err := loadYAML(writeFile(t, "c.yaml", ""), &c); err != nil || c.Node != "kept" {
			t.Errorf("empty file: err %v, node %q", err, c.Node)
		}
	})
	t.Run("no path", func(t *testing.T) {
		c := core.Config{Node: "kept"}
		if err := loadYAML("", &c); err != nil || c.Node != "kept" {
			t.Errorf("no path: err %v, node %q", err, c.Node)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		var c core.Config
		if err := loadYAML(filepath.Join(t.TempDir(), "nope.yaml"), &c); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing file: err %v, want os.ErrNotExist", err)
		}
	})
}

func TestConfigPath(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--config", "X"}, "X"},
		{[]string{"--config=X"}, "X"},
		{[]string{"-config", "X"}, "X"},
		{[]string{"-config=X"}, "X"},
		{[]string{"--node", "n", "--config", "/etc/edgeway/core.yaml", "--mra-port", "6091"}, "/etc/edgeway/core.yaml"},
		{[]string{"--config=a=b.yaml"}, "a=b.yaml"},
		{[]string{"--config"}, ""},
		{[]string{"--config="}, ""},
		{[]string{"--configs", "X"}, ""},
		{[]string{"--node", "n"}, ""},
	}
	for _, tt := range tests {
		if got := configPath(tt.args); got != tt.want {
			t.Errorf("configPath(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestAdminUsageErrors(t *testing.T) {
	// Run where no edgeway-data/quickstart.json can be picked up.
	t.Chdir(t.TempDir())
	tok := writeFile(t, "admin.token", "secret\n")
	tests := []struct {
		name string
		args []string
	}{
		{"no command", []string{}},
		{"no core", []string{"registrations"}},
		{"unknown command", []string{"--core", "https://127.0.0.1:1", "--token-file", tok, "frobnicate"}},
		{"expressway delete without ID", []string{"--core", "https://127.0.0.1:1", "--token-file", tok, "expressway", "delete"}},
		{"activation issue without device", []string{"--core", "https://127.0.0.1:1", "--token-file", tok, "activation", "issue"}},
		{"activation revoke without ID", []string{"--core", "https://127.0.0.1:1", "--token-file", tok, "activation", "revoke"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := runAdmin(context.Background(), tt.args, &buf)
			if !errors.Is(err, errUsage) {
				t.Fatalf("runAdmin(%q) = %v, want an error wrapping errUsage (exit status 2)", tt.args, err)
			}
		})
	}
}

// The commented tls.acme block of deploy/edge.yaml, uncommented in place
// of public_cert/public_key, is a config that decodes (every key known)
// and validates, with the values its comments give.
func TestDeployEdgeYAMLACME(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "  public_cert:"), strings.HasPrefix(line, "  public_key:"):
			continue
		case line == "  # acme:":
			in = true
			line = "  acme:"
		case in && strings.HasPrefix(line, "  #   #"):
			continue
		case in && strings.HasPrefix(line, "  #   "):
			line = "    " + strings.TrimPrefix(line, "  #   ")
		default:
			in = false
		}
		out = append(out, line)
	}
	f := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(f, []byte(strings.Join(out, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	var c edge.Config
	if err := loadYAML(f, &c); err != nil {
		t.Fatalf("deploy/edge.yaml with tls.acme: %v", err)
	}
	a := c.TLS.ACME
	if a.Directory == "" || a.Email == "" || !a.AgreeTerms || a.Storage == "" || a.CARoot == "" || len(a.Names) != 1 || a.Challenge != edge.ChallengeHTTP01 || a.ChallengeAddr != ":80" {
		t.Fatalf("tls.acme from deploy/edge.yaml = %+v: a key is missing", a)
	}
	d := edge.Config{Node: c.Node, AdvertisedHost: c.AdvertisedHost, TLS: edge.TLSConfig{ACME: edge.ACMEConfig{Directory: a.Directory}}}.WithDefaults().TLS.ACME
	if a.Challenge != d.Challenge || a.ChallengeAddr != d.ChallengeAddr || a.Names[0] != d.Names[0] {
		t.Errorf("tls.acme challenge %q, challenge_addr %q, names %v; defaults %q, %q, %v", a.Challenge, a.ChallengeAddr, a.Names, d.Challenge, d.ChallengeAddr, d.Names)
	}
	if err := c.WithDefaults().Validate(); err != nil {
		t.Errorf("deploy/edge.yaml with tls.acme does not validate: %v", err)
	}
}
