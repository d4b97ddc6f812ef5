package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/fdlimit"
)

func TestConfigWithDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"phone_oauth_port (S-11)", c.PhoneOAuthPort, 5090},
		{"mra_port (S-11)", c.MRAPort, 5091},
		{"https_addr", c.HTTPSAddr, ":8443"},
		{"sip_address", c.SIPAddress, "0.0.0.0"},
		{"sip_domain", c.SIPDomain, "edgeway.test"},
		{"audience", c.Audience, "urn:edgeway:sip"},
		{"access_token_ttl", c.AccessTokenTTL, 60 * time.Minute},
		{"refresh_token_ttl", c.RefreshTokenTTL, 1440 * time.Hour},
		{"activation_code_ttl", c.ActivationCodeTTL, 168 * time.Hour},
		{"activation_guesses.max_wrong (issue 9)", c.ActivationGuesses.MaxWrong, 10},
		{"activation_guesses.window (issue 9)", c.ActivationGuesses.Window, time.Hour},
		{"max_register_expires", c.MaxRegisterExpires, 3600},
		{"sip_idle_timeout", c.SIPIdleTimeout, 5 * time.Minute},
		{"handshake_timeout", c.HandshakeTimeout, 10 * time.Second},
		{"refresh_grace", *c.RefreshGrace, 30 * time.Second},
		{"data_dir", c.DataDir, "edgeway-data"},
		{"store", c.Store, "edgeway-data/core.db"},
		{"admin_token_file", c.AdminTokenFile, "edgeway-data/admin.token"},
		{"sip_unregistered_timeout", c.SIPUnregisteredTimeout, 30 * time.Second},
		{"sip_max_inflight", c.SIPMaxInFlight, 32},
		{"max_conns_per_source", c.MaxConnsPerSource, 200},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("default %s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if c.Node == "" {
		t.Error("default node is empty, want the host name or \"core\"")
	}
	if want := "https://" + c.Node + ":8443"; c.Issuer != want {
		t.Errorf("default issuer = %q, want %q", c.Issuer, want)
	}
}

func TestConfigWithDefaultsKeepsSetValues(t *testing.T) {
	in := Config{
		Node: "n1", DataDir: "/d", SIPAddress: "192.0.2.1", PhoneOAuthPort: 6090, MRAPort: 6091,
		HTTPSAddr: "192.0.2.1:9443", ConfigAddr: "192.0.2.1:7971", OpsAddr: "10.0.0.1:9100", DrainTimeout: 7 * time.Second, AdvertisedHost: "cucm.example.com", Role: "subscriber", SIPDomain: "example.com", Issuer: "https://iss", Audience: "aud",
		AccessTokenTTL: 2 * time.Minute, RefreshTokenTTL: 3 * time.Hour, ActivationCodeTTL: time.Hour,
		ActivationGuesses:  ActivationGuessConfig{MaxWrong: 3, Window: 10 * time.Minute},
		MaxRegisterExpires: 600, SIPIdleTimeout: time.Minute, HandshakeTimeout: time.Second,
		SIPUnregisteredTimeout: 5 * time.Second, SIPMaxInFlight: -1, FDLimit: 1000, FDReserve: 100,
		PhoneMaxConns: 1, MRAMaxConns: 2, HTTPSMaxConns: 3, ConfigMaxConns: 4, MaxConnsPerSource: 5,
		RefreshGrace: new(time.Duration), // 0: the grace is off, not defaulted
	}
	c := in.WithDefaults()
	if *c.RefreshGrace != 0 {
		t.Errorf("refresh_grace 0 became %v", *c.RefreshGrace)
	}
	in.Store, in.AdminTokenFile = "/d/core.db", "/d/admin.token" // derived from DataDir
	if c != in {
		t.Errorf("WithDefaults changed set fields:\n got %+v\nwant %+v", c, in)
	}
	// Idempotent.
	if again := c.WithDefaults(); again != c {
		t.Errorf("WithDefaults is not idempotent:\n got %+v\nwant %+v", again, c)
	}
}

// validCore is a defaulted config that passes Validate.
func validCore() Config {
	return Config{
		Node: "core-1",
		TLS:  TLSConfig{Cert: "core.pem", Key: "core-key.pem", TomcatTrust: "tomcat-trust.pem"},
	}.WithDefaults()
}

func TestConfigValidate(t *testing.T) {
	if err := validCore().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}

	tests := []struct {
		name      string
		mod       func(*Config)
		ok        bool
		portRange bool   // the error must wrap ErrPortRange
		contains  string // and mention this
	}{
		{name: "phone port 1024 lowest allowed (S-11)", mod: func(c *Config) { c.PhoneOAuthPort = 1024 }, ok: true},
		{name: "mra port 49151 highest allowed (S-11)", mod: func(c *Config) { c.MRAPort = 49151 }, ok: true},
		{name: "phone port 1023 (S-11)", mod: func(c *Config) { c.PhoneOAuthPort = 1023 }, portRange: true, contains: "phone_oauth_port"},
		{name: "phone port 49152 (S-11)", mod: func(c *Config) { c.PhoneOAuthPort = 49152 }, portRange: true, contains: "phone_oauth_port"},
		{name: "mra port 1023 (S-11)", mod: func(c *Config) { c.MRAPort = 1023 }, portRange: true, contains: "mra_port"},
		{name: "mra port 49152 (S-11)", mod: func(c *Config) { c.MRAPort = 49152 }, portRange: true, contains: "mra_port"},
		{name: "negative port (S-11)", mod: func(c *Config) { c.MRAPort = -5091 }, portRange: true},
		{name: "equal phone and MRA ports (S-11)", mod: func(c *Config) { c.PhoneOAuthPort, c.MRAPort = 5091, 5091 }, contains: "differ"},
		{name: "sip_address a host name", mod: func(c *Config) { c.SIPAddress = "core.example.com" }, contains: "sip_address"},
		{name: "sip_address with a port", mod: func(c *Config) { c.SIPAddress = "127.0.0.1:5090" }, contains: "sip_address"},
		{name: "sip_address IPv6", mod: func(c *Config) { c.SIPAddress = "::1" }, ok: true},
		{name: "https_addr without port", mod: func(c *Config) { c.HTTPSAddr = "0.0.0.0" }, contains: "https_addr"},
		{name: "no tls.cert", mod: func(c *Config) { c.TLS.Cert = "" }, contains: "tls."},
		{name: "no tls.key", mod: func(c *Config) { c.TLS.Key = "" }, contains: "tls."},
		{name: "no tls.tomcat_trust (S-11)", mod: func(c *Config) { c.TLS.TomcatTrust = "" }, contains: "tomcat_trust"},
		{name: "phone_edge_trust optional", mod: func(c *Config) { c.TLS.PhoneEdgeTrust = "" }, ok: true},
		{name: "refresh ttl below access ttl", mod: func(c *Config) { c.AccessTokenTTL, c.RefreshTokenTTL = time.Hour, 59*time.Minute }, contains: "refresh_token_ttl"},
		{name: "refresh ttl equal to access ttl", mod: func(c *Config) { c.AccessTokenTTL, c.RefreshTokenTTL = time.Hour, time.Hour }, ok: true},
		{name: "access ttl below a minute", mod: func(c *Config) { c.AccessTokenTTL = 59 * time.Second }, contains: "access_token_ttl"},
		{name: "refresh_grace 0 (off)", mod: func(c *Config) { d := time.Duration(0); c.RefreshGrace = &d }, ok: true},
		{name: "refresh_grace 5m", mod: func(c *Config) { d := MaxRefreshGrace; c.RefreshGrace = &d }, ok: true},
		{name: "refresh_grace over 5m", mod: func(c *Config) { d := MaxRefreshGrace + time.Second; c.RefreshGrace = &d }, contains: "refresh_grace"},
		{name: "refresh_grace negative", mod: func(c *Config) { d := -time.Second; c.RefreshGrace = &d }, contains: "refresh_grace"},
		{name: "max_register_expires below 60", mod: func(c *Config) { c.MaxRegisterExpires = 59 }, contains: "max_register_expires"},
		{name: "activation_guesses.max_wrong negative (issue 9)", mod: func(c *Config) { c.ActivationGuesses.MaxWrong = -1 }, contains: "activation_guesses"},
		{name: "activation_guesses.window below 1s (issue 9)", mod: func(c *Config) { c.ActivationGuesses.Window = time.Millisecond }, contains: "activation_guesses"},
		{name: "activation_guesses.max_wrong 1 (issue 9)", mod: func(c *Config) { c.ActivationGuesses.MaxWrong = 1 }, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCore()
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
			if tt.portRange != errors.Is(err, ErrPortRange) {
				t.Errorf("errors.Is(%v, ErrPortRange) = %v, want %v", err, !tt.portRange, tt.portRange)
			}
			if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("Validate = %q, want it to mention %q", err, tt.contains)
			}
		})
	}
}

func TestConfigValidateZeroPortsAfterDefaults(t *testing.T) {
	// Ports left at 0 in the file can never reach Validate as 0: the
	// defaults (5090, 5091) are in range and differ (S-11).
	c := Config{TLS: TLSConfig{Cert: "c", Key: "k", TomcatTrust: "t"}, PhoneOAuthPort: 0, MRAPort: 0}.WithDefaults()
	if c.PhoneOAuthPort == 0 || c.MRAPort == 0 {
		t.Fatalf("ports after defaults = %d, %d", c.PhoneOAuthPort, c.MRAPort)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after defaults = %v", err)
	}
	// Without defaults, 0 is out of range.
	raw := c
	raw.PhoneOAuthPort = 0
	if err := raw.Validate(); !errors.Is(err, ErrPortRange) {
		t.Errorf("Validate with port 0 = %v, want ErrPortRange", err)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	c := validCore()
	c.PhoneOAuthPort, c.MRAPort, c.SIPAddress, c.TLS = 80, 80, "nope", TLSConfig{}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	for _, want := range []string{"phone_oauth_port 80", "mra_port 80", "differ", "sip_address", "tls.cert"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %q, missing %q", err, want)
		}
	}
}

func TestValidatePort(t *testing.T) {
	tests := []struct {
		port int
		ok   bool
	}{
		{0, false}, {80, false}, {1023, false}, {1024, true}, {5060, true},
		{5090, true}, {5091, true}, {49151, true}, {49152, false}, {65535, false}, {-1, false},
	}
	for _, tt := range tests {
		err := ValidatePort("mra_port", tt.port)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidatePort(%d) = %v, want nil (S-11: 1024-49151)", tt.port, err)
			}
			continue
		}
		if !errors.Is(err, ErrPortRange) {
			t.Errorf("ValidatePort(%d) = %v, want an error wrapping ErrPortRange (S-11)", tt.port, err)
		}
		if err != nil && !strings.Contains(err.Error(), "mra_port") {
			t.Errorf("ValidatePort(%d) = %q, want it to name the setting", tt.port, err)
		}
	}
}

// Issue 9 item 11: unset caps are shares of the open-file limit that add up
// to less than it, leaving fd_reserve free.
func TestConfigConnCapsFromFDLimit(t *testing.T) {
	limit := fdlimit.Current()
	c := Config{}.WithDefaults()
	if c.FDReserve != fdlimit.DefaultReserve(limit) {
		t.Errorf("fd_reserve = %d, want %d for limit %d", c.FDReserve, fdlimit.DefaultReserve(limit), limit)
	}
	sum := c.PhoneMaxConns + c.MRAMaxConns + c.HTTPSMaxConns + c.ConfigMaxConns
	if limit > 4*fdlimit.MinReserve && sum+c.FDReserve > limit {
		t.Errorf("caps %d + reserve %d exceed the open-file limit %d", sum, c.FDReserve, limit)
	}
	if c.MRAMaxConns < 64 || c.PhoneMaxConns < c.MRAMaxConns {
		t.Errorf("phone_max_conns %d, mra_max_conns %d", c.PhoneMaxConns, c.MRAMaxConns)
	}
	bad := Config{TLS: TLSConfig{Cert: "c", Key: "k", TomcatTrust: "t"}, PhoneMaxConns: -1}.WithDefaults()
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "phone_max_conns") {
		t.Errorf("negative phone_max_conns: %v", err)
	}
}
