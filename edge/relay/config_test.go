package relay

import (
	"strings"
	"testing"
)

// Validate accepts the edge's defaults and names the turn.* key of every
// malformed field.
func TestConfigValidate(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for key, bad := range map[string]func(*Config){
		"turn.realm":                      func(c *Config) { c.Realm = "" },
		"turn.relay_address":              func(c *Config) { c.RelayAddress = "0.0.0.0" },
		"turn.relay_bind":                 func(c *Config) { c.RelayBind = "any" },
		"turn.relay_ports":                func(c *Config) { c.RelayPorts = "60000-50000" },
		"turn.allowed_peers":              func(c *Config) { c.AllowedPeers = []string{"not-an-ip"} },
		"turn.denied_peers":               func(c *Config) { c.DeniedPeers = []string{"10.0.0.0/33"} },
		"turn.alternate_servers":          func(c *Config) { c.AlternateServers = []string{"edge-2.example.com:3478"} },
		"turn.max_bitrate":                func(c *Config) { c.MaxBitrate = -1 },
		"turn.max_allocations_per_device": func(c *Config) { c.MaxAllocationsPerDevice = -1 },
		"turn.tcp_idle_timeout":           func(c *Config) { c.TCPIdleTimeout = -1 },
	} {
		c := testConfig()
		bad(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: Validate() = %v, want an error naming it", key, err)
		}
	}
	// New refuses what only it needs: the secret and a socket.
	c := testConfig()
	c.Secret = nil
	if _, err := New(c, Deps{}); err == nil {
		t.Error("New without secret or sockets succeeded")
	}
}
