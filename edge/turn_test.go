package edge

import (
	"encoding/json"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/edgeway/edgeway/internal/logx"
	"github.com/edgeway/edgeway/internal/throttle"
)

var testTURNSecret = []byte("edgeway-test-turn-secret-0123456789abcdef")

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialTURN is a pion TURN client over UDP to server.
func dialTURN(t *testing.T, server, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: server, Username: username, Password: password, Conn: conn,
		RTO: 200 * time.Millisecond, LoggerFactory: logx.Pion(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return c
}

func TestTURNConfigDefaults(t *testing.T) {
	c := Config{Node: "expe-1", AdvertisedHost: "192.0.2.10"}.WithDefaults().TURN
	for _, ck := range []struct {
		key       string
		got, want any
	}{
		{"listen", c.Listen, ":3478"},
		{"tls_listen", c.TLSListen, ":5349"},
		{"public_host", c.PublicHost, "192.0.2.10"},
		{"realm", c.Realm, "expe-1"},
		{"relay_address", c.RelayAddress, "192.0.2.10"},
		{"relay_bind", c.RelayBind, "0.0.0.0"},
		{"relay_ports", c.RelayPorts, "36000-59999"},
		{"max_allocations_per_device", c.MaxAllocationsPerDevice, 4},
		{"max_allocations", c.MaxAllocations, 10000},
		{"max_bitrate", c.MaxBitrate, 64000},
		{"allow_loopback_peers", c.AllowLoopbackPeers, false},
		{"alternate_servers", len(c.AlternateServers), 0},
		{"batch_io", c.BatchIO != nil && *c.BatchIO, true},
	} {
		if ck.got != ck.want {
			t.Errorf("turn.%s = %v, want %v", ck.key, ck.got, ck.want)
		}
	}
	if errs := c.validate(); len(errs) != 0 {
		t.Errorf("defaults do not validate: %v", errs)
	}
	ok := c
	ok.AlternateServers = []string{"10.77.2.12:3478", "[2001:db8::12]:3478"}
	if errs := ok.validate(); len(errs) != 0 {
		t.Errorf("alternate_servers %v do not validate: %v", ok.AlternateServers, errs)
	}
	if off := false; (TURNConfig{BatchIO: &off}).withDefaults(Config{}).relayConfig().BatchIO {
		t.Error("turn.batch_io: false does not reach the relay")
	}
	if named := (Config{Node: "e", AdvertisedHost: "expe-1.example.com"}).WithDefaults().TURN; named.RelayAddress != "" {
		t.Errorf("relay_address %q from a host name; want it resolved at start", named.RelayAddress)
	}
	for _, bad := range []func(*TURNConfig){
		func(c *TURNConfig) { c.RelayPorts = "60000-50000" },
		func(c *TURNConfig) { c.RelayPorts = "0-10" },
		func(c *TURNConfig) { c.RelayPorts = "36000" },
		func(c *TURNConfig) { c.RelayAddress = "turn.example.com" },
		func(c *TURNConfig) { c.RelayAddress = "0.0.0.0" },
		func(c *TURNConfig) { c.RelayBind = "any" },
		func(c *TURNConfig) { c.Listen = "3478" },
		func(c *TURNConfig) { c.MaxBitrate = -1 },
		func(c *TURNConfig) { c.AlternateServers = []string{"expe-2.example.com:3478"} }, // ALTERNATE-SERVER carries an address
		func(c *TURNConfig) { c.AlternateServers = []string{"10.77.2.12"} },
		func(c *TURNConfig) { c.AlternateServers = []string{"0.0.0.0:3478"} },
		func(c *TURNConfig) { c.AlternateServers = []string{"10.77.2.12:0"} },
	} {
		b := c
		bad(&b)
		if errs := b.validate(); len(errs) == 0 {
			t.Errorf("%+v validates", b)
		}
	}
}

// Serve runs TURN on the sockets it is given when turn.secret_file is
// set, the credential its token responses carry allocates there, and the
// server stops with everything else.
func TestTURNServe(t *testing.T) {
	s, udpAddr, stop := serveTURN(t, nil)
	tr := s.TURN()

	body, ok := s.withTURN([]byte(`{"access_token":"x","expires_in":60,"device":"SEP5A"}`), time.Now())
	if !ok {
		t.Fatal("no TURN offer")
	}
	var res struct{ TURN TURNOffer }
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.TURN.URLs[0] != "turn:127.0.0.1:3478?transport=udp" {
		t.Errorf("urls %q", res.TURN.URLs)
	}
	c := dialTURN(t, udpAddr, res.TURN.Username, res.TURN.Credential)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocating with the offered credential: %v", err)
	}
	defer relay.Close()
	if tr.DeviceAllocations("SEP5A") != 1 {
		t.Error("allocation not counted for the device")
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if s.TURN() != nil || tr.Allocations() != 0 {
		t.Errorf("after Serve: TURN() = %v, %d allocations", s.TURN(), tr.Allocations())
	}
	if _, err := net.ListenPacket("udp4", udpAddr); err != nil {
		t.Errorf("TURN UDP port still bound after Serve: %v", err)
	}
}

// testBudget is the activation failure budget New would give an edge with
// cfg, for tests that build a Server around their own core.
func testBudget(t testing.TB, cfg Config) *throttle.Budget {
	t.Helper()
	cfg = cfg.WithDefaults()
	b, err := throttle.NewBudget(throttle.BudgetConfig{Rate: cfg.ActivationFailures.Rate, Burst: cfg.ActivationFailures.Burst})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
