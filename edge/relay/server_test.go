package relay

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/edgeway/edgeway/internal/logx"
	"github.com/edgeway/edgeway/internal/turncred"
	"github.com/edgeway/edgeway/mtls"
)

var testTURNSecret = []byte("edgeway-test-turn-secret-0123456789abcdef")

const testRealm = "edgeway.test"

// turnFixture is a TURN server on 127.0.0.1 with UDP, TCP and TLS
// sockets on kernel-chosen ports.
type turnFixture struct {
	srv      *Server
	udp      string // host:port
	tcp      string
	tls      string
	roots    *x509.CertPool
	ownPorts []int
}

type turnFixtureOptions struct {
	cfg      func(*Config)
	ownPorts []int
	core     []netip.AddrPort
	lifetime time.Duration
	udp      net.PacketConn // the UDP socket, when bound beforehand
	draining *atomic.Bool   // the edge's drain flag (edge/drain.go)
}

// testConfig is the edge's defaults for a relay on 127.0.0.1 that may
// relay to 127.0.0.1.
func testConfig() Config {
	return Config{
		Realm: testRealm, Secret: testTURNSecret, PublicHost: "127.0.0.1",
		RelayAddress: "127.0.0.1", RelayBind: "127.0.0.1", RelayPorts: "36000-59999",
		MaxAllocationsPerDevice: 4, MaxAllocations: 10000, MaxBitrate: 64000,
		AllowedPeers: []string{"127.0.0.1/32"}, TCPIdleTimeout: 10 * time.Second,
		HandshakeTimeout: 5 * time.Second, MaxConnsPerSource: 100, BatchIO: true,
	}
}

func startTURN(t testing.TB, o turnFixtureOptions) *turnFixture {
	t.Helper()
	cfg := testConfig()
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	pki, err := mtls.InitDevPKI(mtls.DevPKIOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mtls.NewKeyPair(pki.EdgePublicCert, pki.EdgePublicKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)

	udp := o.udp
	if udp == nil {
		if udp, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.OwnPorts, cfg.CoreAddrs, cfg.AllocationLifetime = o.ownPorts, o.core, o.lifetime
	srv, err := New(cfg, Deps{Listeners: Listeners{UDP: udp, TCP: tcp, TLS: tl}, Cert: kp, Draining: o.draining})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("TURN Close: %v", err)
		}
		if n := srv.Allocations(); n != 0 {
			t.Errorf("after Close: %d allocations still counted", n)
		}
	})
	return &turnFixture{srv: srv, udp: udp.LocalAddr().String(), tcp: tcp.Addr().String(), tls: tl.Addr().String(), roots: roots}
}

// turnClient is one pion client with its socket to the server.
type turnClient struct {
	c    *turn.Client
	conn net.PacketConn // what the client talks to the server on
}

// dial connects a client over transport "udp", "tcp" or "tls".
func (f *turnFixture) dial(t testing.TB, transport, username, password string) *turnClient {
	t.Helper()
	var conn net.PacketConn
	server := f.udp
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = c
	case "tcp":
		c, err := net.Dial("tcp4", f.tcp)
		if err != nil {
			t.Fatal(err)
		}
		conn, server = turn.NewSTUNConn(c), f.tcp
	case "tls":
		c, err := tls.Dial("tcp4", f.tls, &tls.Config{RootCAs: f.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		conn, server = turn.NewSTUNConn(c), f.tls
	default:
		t.Fatalf("transport %q", transport)
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
	tc := &turnClient{c: c, conn: conn}
	t.Cleanup(tc.close)
	return tc
}

func (tc *turnClient) close() {
	tc.c.Close()
	_ = tc.conn.Close()
}

func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

func creds(device string, ttl time.Duration) (string, string) {
	return turncred.Issue(testTURNSecret, device, time.Now().Add(ttl))
}

// allocate allocates a UDP relay over transport with a fresh credential.
func (f *turnFixture) allocate(t testing.TB, transport, device string) (net.PacketConn, *turnClient) {
	t.Helper()
	u, p := creds(device, time.Hour)
	tc := f.dial(t, transport, u, p)
	relay, err := tc.c.Allocate()
	if err != nil {
		t.Fatalf("%s allocation for %s: %v", transport, device, err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	return relay, tc
}

func udpPeer(t testing.TB) net.PacketConn {
	t.Helper()
	p, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// relayUntilReceived sends msg through relay to peer until the peer gets
// it (the first datagrams may race the permission), and returns the
// address the peer saw it from.
func relayUntilReceived(t testing.TB, relay, peer net.PacketConn, msg []byte) net.Addr {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := relay.WriteTo(msg, peer.LocalAddr()); err != nil {
			t.Fatalf("relay WriteTo: %v", err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, from, err := peer.ReadFrom(buf)
		if err == nil && bytes.Equal(buf[:n], msg) {
			_ = peer.SetReadDeadline(time.Time{})
			return from
		}
	}
	t.Fatalf("peer never received %q through the relay", msg)
	return nil
}

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

// A valid credential allocates over UDP, TCP and TLS, and the relay
// carries datagrams both ways between the client and a loopback peer.
func TestTURNAllocateAndRelay(t *testing.T) {
	f := startTURN(t, turnFixtureOptions{})
	for i, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			device := fmt.Sprintf("SEP00112233440%d", i)
			relay, _ := f.allocate(t, transport, device)
			ra := relay.LocalAddr().(*net.UDPAddr)
			if !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port < 36000 || ra.Port > 59999 {
				t.Errorf("relayed address %v: want 127.0.0.1 in 36000-59999", ra)
			}
			if n := f.srv.DeviceAllocations(device); n != 1 {
				t.Errorf("DeviceAllocations(%s) = %d, want 1", device, n)
			}

			peer := udpPeer(t)
			from := relayUntilReceived(t, relay, peer, []byte("hello via "+transport))
			if from.String() != ra.String() {
				t.Errorf("peer saw the datagram from %v, want the relayed address %v", from, ra)
			}
			if _, err := peer.WriteTo([]byte("hello back"), from); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, src, err := relay.ReadFrom(buf)
			if err != nil || string(buf[:n]) != "hello back" || src.String() != peer.LocalAddr().String() {
				t.Fatalf("client got %q from %v, %v; want \"hello back\" from %v", buf[:n], src, err, peer.LocalAddr())
			}
		})
	}
	// Each subtest closed its allocation (Refresh 0, or its connection).
	waitFor(t, "every allocation to be released", func() bool { return f.srv.Allocations() == 0 })
}

// Peers: loopback only when allowed (403 otherwise), never link-local,
// and never the edge's own ports.
func TestTURNPeers(t *testing.T) {
	t.Run("loopback refused by default", func(t *testing.T) {
		f := startTURN(t, turnFixtureOptions{cfg: func(c *Config) { c.AllowedPeers = nil }})
		relay, _ := f.allocate(t, "udp", "SEP3A")
		peer := udpPeer(t)
		if _, err := relay.WriteTo([]byte("x"), peer.LocalAddr()); turnCode(err) != 403 {
			t.Fatalf("relaying to a loopback peer: %v, want 403", err)
		}
	})
	t.Run("own ports", func(t *testing.T) {
		own := udpPeer(t) // stands for the edge's SIP port
		f := startTURN(t, turnFixtureOptions{ownPorts: []int{own.LocalAddr().(*net.UDPAddr).Port}})
		relay, _ := f.allocate(t, "udp", "SEP3B")
		if _, err := relay.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(169, 254, 169, 254), Port: 80}); turnCode(err) != 403 {
			t.Errorf("relaying to a link-local peer: %v, want 403", err)
		}
		// The permission for 127.0.0.1 is granted (loopback allowed), so a
		// peer on another port gets datagrams; the edge's own port gets none.
		other := udpPeer(t)
		relayUntilReceived(t, relay, other, []byte("ok"))
		for i := 0; i < 5; i++ {
			if _, err := relay.WriteTo([]byte("loop"), own.LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the datagrams to the edge's own port to be dropped", func() bool { return f.srv.DeniedDatagrams() >= 5 })
		_ = own.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, from, err := own.ReadFrom(make([]byte, 100)); err == nil {
			t.Errorf("the edge's own port received %d bytes from %v", n, from)
		}
	})
}

// The relay's cost per datagram: a G.711-sized SRTP packet from the client
// through its allocation to a peer, and the peer's answer back through the
// relay to the client (two relayed datagrams per op).
func BenchmarkTURNRelayRoundTrip(b *testing.B) {
	f := startTURN(b, turnFixtureOptions{cfg: func(c *Config) { c.MaxBitrate = 1 << 30 }})
	relay, _ := f.allocate(b, "udp", "SEPBENCH0001")
	peer := udpPeer(b)
	pkt := make([]byte, 182)
	relayed := relayUntilReceived(b, relay, peer, pkt)
	buf := make([]byte, 2048)
	b.SetBytes(int64(2 * len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := relay.WriteTo(pkt, peer.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		if _, _, err := peer.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := peer.WriteTo(pkt, relayed); err != nil {
			b.Fatal(err)
		}
		if _, _, err := relay.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/relayed-datagram")
}
