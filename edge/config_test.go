package edge

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/fdlimit"
)

func TestConfigWithDefaults(t *testing.T) {
	c := Config{Node: "expe-1"}.WithDefaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"https_addr", c.HTTPSAddr, ":8443"},
		{"sip_addr", c.SIPAddr, ":5061"},
		{"advertised_host (node, sip_addr has no host)", c.AdvertisedHost, "expe-1"},
		{"core_url", c.CoreURL, "https://core.edgeway.test:8443"},
		{"core_mra (S-11: host of core_url, port 5091)", c.CoreMRA, "core.edgeway.test:5091"},
		{"core_server_name", c.CoreServerName, "core.edgeway.test"},
		{"token_issuer", c.TokenIssuer, "https://core.edgeway.test:8443"},
		{"token_audience", c.TokenAudience, "urn:edgeway:sip"},
		{"sip_idle_timeout", c.SIPIdleTimeout, 5 * time.Minute},
		{"handshake_timeout", c.HandshakeTimeout, 10 * time.Second},
		{"max_conns_per_source", c.MaxConnsPerSource, 200},
		{"sip_unregistered_timeout", c.SIPUnregisteredTimeout, 30 * time.Second},
		{"sip_max_inflight", c.SIPMaxInFlight, 32},
		{"activation_failures.rate (issue 9)", c.ActivationFailures.Rate, 10.0},
		{"activation_failures.burst (issue 9)", c.ActivationFailures.Burst, 100},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("default %s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if n := (Config{}).WithDefaults().Node; n == "" {
		t.Error("default node is empty, want the host name or \"edge\"")
	}
}

func TestConfigWithDefaultsDerived(t *testing.T) {
	tests := []struct {
		name                                string
		in                                  Config
		mra, serverName, issuer, advertised string
	}{
		{
			name:       "from core_url with a port",
			in:         Config{Node: "e", CoreURL: "https://cucm-pub.example.com:9443"},
			mra:        "cucm-pub.example.com:5091",
			serverName: "cucm-pub.example.com",
			issuer:     "https://cucm-pub.example.com:9443",
			advertised: "e",
		},
		{
			name:       "from core_url without a port",
			in:         Config{Node: "e", CoreURL: "https://core.example.com"},
			mra:        "core.example.com:5091",
			serverName: "core.example.com",
			issuer:     "https://core.example.com",
			advertised: "e",
		},
		{
			name:       "IPv6 core_url",
			in:         Config{Node: "e", CoreURL: "https://[2001:db8::1]:8443"},
			mra:        "[2001:db8::1]:5091",
			serverName: "2001:db8::1",
			issuer:     "https://[2001:db8::1]:8443",
			advertised: "e",
		},
		{
			name:       "advertised host from sip_addr",
			in:         Config{Node: "e", SIPAddr: "192.0.2.10:5061", CoreURL: "https://c.example.com:8443"},
			mra:        "c.example.com:5091",
			serverName: "c.example.com",
			issuer:     "https://c.example.com:8443",
			advertised: "192.0.2.10",
		},
		{
			name:       "advertised host from a named sip_addr",
			in:         Config{Node: "e", SIPAddr: "expe.example.com:5061", CoreURL: "https://c.example.com:8443"},
			mra:        "c.example.com:5091",
			serverName: "c.example.com",
			issuer:     "https://c.example.com:8443",
			advertised: "expe.example.com",
		},
		{
			name:       "advertised host is node for 0.0.0.0",
			in:         Config{Node: "expe-1", SIPAddr: "0.0.0.0:5061", CoreURL: "https://c.example.com:8443"},
			mra:        "c.example.com:5091",
			serverName: "c.example.com",
			issuer:     "https://c.example.com:8443",
			advertised: "expe-1",
		},
		{
			name:       "advertised host is node for [::]",
			in:         Config{Node: "expe-1", SIPAddr: "[::]:5061", CoreURL: "https://c.example.com:8443"},
			mra:        "c.example.com:5091",
			serverName: "c.example.com",
			issuer:     "https://c.example.com:8443",
			advertised: "expe-1",
		},
		{
			name:       "explicit values kept",
			in:         Config{Node: "e", SIPAddr: "0.0.0.0:5061", AdvertisedHost: "public.example.com", CoreURL: "https://c.example.com:8443", CoreMRA: "mra.example.com:6091", CoreServerName: "tomcat.example.com", TokenIssuer: "https://iss.example.com"},
			mra:        "mra.example.com:6091",
			serverName: "tomcat.example.com",
			issuer:     "https://iss.example.com",
			advertised: "public.example.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.in.WithDefaults()
			if c.CoreMRA != tt.mra {
				t.Errorf("core_mra = %q, want %q", c.CoreMRA, tt.mra)
			}
			if c.CoreServerName != tt.serverName {
				t.Errorf("core_server_name = %q, want %q", c.CoreServerName, tt.serverName)
			}
			if c.TokenIssuer != tt.issuer {
				t.Errorf("token_issuer = %q, want %q", c.TokenIssuer, tt.issuer)
			}
			if c.AdvertisedHost != tt.advertised {
				t.Errorf("advertised_host = %q, want %q", c.AdvertisedHost, tt.advertised)
			}
			if again := c.WithDefaults(); !reflect.DeepEqual(again, c) {
				t.Errorf("WithDefaults not idempotent:\n got %+v\nwant %+v", again, c)
			}
		})
	}
}

func validEdge() Config {
	return Config{
		Node:    "expe-1",
		CoreURL: "https://cucm-pub.example.com:8443",
		TLS: TLSConfig{PublicCert: "pub.pem", PublicKey: "pub-key.pem", MTLSCert: "mtls.pem",
			MTLSKey: "mtls-key.pem", CoreTrust: "trust.pem"},
	}.WithDefaults()
}

func TestConfigValidate(t *testing.T) {
	if err := validEdge().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	tests := []struct {
		name     string
		mod      func(*Config)
		ok       bool
		contains string
	}{
		{name: "http core_url", mod: func(c *Config) { c.CoreURL = "http://cucm-pub.example.com:8443" }, contains: "https://"},
		{name: "core_url without host", mod: func(c *Config) { c.CoreURL = "https://" }, contains: "core_url"},
		{name: "core_url not a URL", mod: func(c *Config) { c.CoreURL = "cucm-pub.example.com:8443" }, contains: "core_url"},
		{name: "core_mra port 1023 (S-11)", mod: func(c *Config) { c.CoreMRA = "cucm:1023" }, contains: "S-11"},
		{name: "core_mra port 49152 (S-11)", mod: func(c *Config) { c.CoreMRA = "cucm:49152" }, contains: "S-11"},
		{name: "core_mra port 0 (S-11)", mod: func(c *Config) { c.CoreMRA = "cucm:0" }, contains: "S-11"},
		{name: "core_mra port named (S-11)", mod: func(c *Config) { c.CoreMRA = "cucm:sips" }, contains: "S-11"},
		{name: "core_mra port 1024 (S-11)", mod: func(c *Config) { c.CoreMRA = "cucm:1024" }, ok: true},
		{name: "core_mra port 49151 (S-11)", mod: func(c *Config) { c.CoreMRA = "cucm:49151" }, ok: true},
		{name: "core_mra without port", mod: func(c *Config) { c.CoreMRA = "cucm" }, contains: "core_mra"},
		{name: "https_addr without port", mod: func(c *Config) { c.HTTPSAddr = "0.0.0.0" }, contains: "https_addr"},
		{name: "sip_addr without port", mod: func(c *Config) { c.SIPAddr = "0.0.0.0" }, contains: "sip_addr"},
		{name: "no public_cert", mod: func(c *Config) { c.TLS.PublicCert = "" }, contains: "tls."},
		{name: "no public_key", mod: func(c *Config) { c.TLS.PublicKey = "" }, contains: "tls."},
		{name: "no mtls_cert (S-12)", mod: func(c *Config) { c.TLS.MTLSCert = "" }, contains: "tls."},
		{name: "no mtls_key (S-12)", mod: func(c *Config) { c.TLS.MTLSKey = "" }, contains: "tls."},
		{name: "no core_trust", mod: func(c *Config) { c.TLS.CoreTrust = "" }, contains: "tls."},
		{name: "activation_failures.rate negative (issue 9)", mod: func(c *Config) { c.ActivationFailures.Rate = -1 }, contains: "activation_failures"},
		{name: "activation_failures.burst negative (issue 9)", mod: func(c *Config) { c.ActivationFailures.Burst = -1 }, contains: "activation_failures"},
		{name: "activation_failures fractional rate (issue 9)", mod: func(c *Config) { c.ActivationFailures.Rate = 0.5 }, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validEdge()
			tt.mod(&c)
			err := c.Validate()
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil, want an error")
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("Validate = %q, want it to mention %q", err, tt.contains)
			}
		})
	}
}

func TestConfigCoreConfigURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Config
		want string
	}{
		{"default: host of core_url, port 6971", Config{Node: "e", CoreURL: "https://cucm-pub.example.com:8443"}, "https://cucm-pub.example.com:6971"},
		{"default without a core_url port", Config{Node: "e", CoreURL: "https://core.example.com"}, "https://core.example.com:6971"},
		{"default for an IPv6 core_url", Config{Node: "e", CoreURL: "https://[2001:db8::1]:8443"}, "https://[2001:db8::1]:6971"},
		{"default core_url", Config{Node: "e"}, "https://core.edgeway.test:6971"},
		{"explicit kept", Config{Node: "e", CoreURL: "https://c.example.com:8443", CoreConfigURL: "https://tftp.example.com:7000"}, "https://tftp.example.com:7000"},
	} {
		if got := tc.in.WithDefaults().CoreConfigURL; got != tc.want {
			t.Errorf("%s: core_config_url = %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"http://cucm-pub.example.com:6971", "https://", "cucm-pub.example.com:6971"} {
		c := validEdge()
		c.CoreConfigURL = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "core_config_url") {
			t.Errorf("core_config_url %q: Validate = %v, want a core_config_url error", bad, err)
		}
	}
}

// Issue 9 item 11: unset caps are shares of the open-file limit that leave
// fd_reserve (and, with TURN on, its relay sockets) free.
func TestConfigConnCapsFromFDLimit(t *testing.T) {
	limit := fdlimit.Current()
	c := Config{Node: "e"}.WithDefaults()
	if c.FDReserve != fdlimit.DefaultReserve(limit) {
		t.Errorf("fd_reserve = %d, want %d for limit %d", c.FDReserve, fdlimit.DefaultReserve(limit), limit)
	}
	if limit > 4*fdlimit.MinReserve && c.MaxConns+2*c.HTTPSMaxConns+c.FDReserve > limit {
		t.Errorf("max_conns %d + 2×https_max_conns %d + reserve %d exceed the limit %d", c.MaxConns, c.HTTPSMaxConns, c.FDReserve, limit)
	}
	withTURN := Config{Node: "e", TURN: TURNConfig{SecretFile: "s", MaxAllocations: 100}}.WithDefaults()
	if limit > 4*fdlimit.MinReserve && withTURN.MaxConns >= c.MaxConns {
		t.Errorf("TURN's relay sockets not left out: max_conns %d with TURN, %d without", withTURN.MaxConns, c.MaxConns)
	}
	bad := validEdge()
	bad.MaxConns = -1
	if err := bad.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "max_conns") {
		t.Errorf("negative max_conns: %v", err)
	}
}
