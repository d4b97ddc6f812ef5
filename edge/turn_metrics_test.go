package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/turncred"
	"github.com/edgeway/edgeway/mtls"
)

// serveTURN runs an edge with TURN on loopback sockets (turn.* adjusted
// by set) and returns it with its TURN UDP address and stop, which ends
// Serve and returns its error (the test's end stops it too).
func serveTURN(t *testing.T, set func(*TURNConfig)) (s *Server, udpAddr string, stop func() error) {
	t.Helper()
	dir := t.TempDir()
	pki, err := mtls.InitDevPKI(mtls.DevPKIOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	secretFile := dir + "/turn.secret"
	if err := os.WriteFile(secretFile, append(testTURNSecret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Node: "expe-1", HTTPSAddr: "127.0.0.1:0", SIPAddr: "127.0.0.1:0", AdvertisedHost: "127.0.0.1",
		CoreURL: "https://127.0.0.1:1", CoreRetry: time.Hour,
		TLS:  TLSConfig{PublicCert: pki.EdgePublicCert, PublicKey: pki.EdgePublicKey, MTLSCert: pki.EdgeMTLSCert, MTLSKey: pki.EdgeMTLSKey, CoreTrust: pki.PhoneEdgeTrust},
		TURN: TURNConfig{SecretFile: secretFile, RelayBind: "127.0.0.1", AllowedPeers: []string{"127.0.0.1"}, MaxBitrate: 1 << 20}}
	if set != nil {
		set(&cfg.TURN)
	}
	s, err = New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	listen := func() net.Listener {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := Listeners{HTTPS: listen(), SIP: listen(), TURN: TURNListeners{UDP: udp, TCP: listen(), TLS: listen()}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ls) }()
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(10 * time.Second):
				stopErr = errors.New("Serve did not stop")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	waitFor(t, "TURN to start", func() bool { return s.TURN() != nil })
	return s, udp.LocalAddr().String(), stop
}

// edgeScrape is the edge's /metrics, parsed by Prometheus's text parser.
type edgeScrape map[string]*dto.MetricFamily

func scrapeEdge(t *testing.T, s *Server) edgeScrape {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Handler(s.Metrics().Reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("the Prometheus text parser refused /metrics: %v", err)
	}
	return fams
}

// counter is the value of family name's counter labelled label=value
// (any when label is ""); -1 when there is none.
func (s edgeScrape) counter(name, label, value string) float64 {
	for _, m := range s[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
		if label == "" {
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// Issue 13 §2: the batched TURN UDP listener's datagrams and system calls
// are exported, and move with media relayed through a real relay: every
// datagram pion read or wrote on the listener is counted, in at least one
// system call and at most one per datagram, and none lost.
func TestTURNUDPMetricsMoveWithTraffic(t *testing.T) {
	const n = 50
	s, server, _ := serveTURN(t, nil)
	before := scrapeEdge(t, s)
	for _, dir := range []string{"read", "write"} {
		if v := before.counter("edgeway_edge_turn_udp_datagrams_total", "direction", dir); v != 0 {
			t.Fatalf("edgeway_edge_turn_udp_datagrams_total{direction=%q} = %v before any traffic, want 0 (-1: not exported)", dir, v)
		}
	}

	u, p := turncred.Issue(testTURNSecret, "SEP0BA7C4ED0", time.Now().Add(time.Hour))
	relay, err := dialTURN(t, server, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	pkt := make([]byte, 172) // RTP header and 20 ms of G.711
	buf := make([]byte, 2048)
	var relayed net.Addr
	for i := 0; relayed == nil; i++ { // the first datagram may race the permission
		if i == 50 {
			t.Fatal("the peer never got a datagram through the relay")
		}
		if _, err := relay.WriteTo(pkt, peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, from, err := peer.ReadFrom(buf); err == nil {
			relayed = from
		}
	}
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	_ = relay.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range n {
		if _, err := relay.WriteTo(pkt, peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := peer.ReadFrom(buf); err != nil {
			t.Fatalf("datagram %d to the peer: %v", i, err)
		}
		if _, err := peer.WriteTo(pkt, relayed); err != nil {
			t.Fatal(err)
		}
		if _, _, err := relay.ReadFrom(buf); err != nil {
			t.Fatalf("datagram %d from the peer: %v", i, err)
		}
	}

	// The relay counts a datagram just after the system call that sends
	// it, so the last ones may be counted after the test has read them:
	// wait until every datagram is counted (the client's answers and
	// datagrams from the peer are ≥ from_peer + 2 writes to it: the
	// Allocate and CreatePermission answers at least).
	var after edgeScrape
	var to, from float64
	waitFor(t, "the relayed datagrams to be counted", func() bool {
		after = scrapeEdge(t, s)
		to = after.counter("edgeway_edge_turn_relayed_packets_total", "direction", "to_peer")
		from = after.counter("edgeway_edge_turn_relayed_packets_total", "direction", "from_peer")
		return to >= n+1 && from >= n && after.counter("edgeway_edge_turn_udp_datagrams_total", "direction", "write") >= from+2
	})
	// Every datagram relayed to the peer was read from the listener first
	// (≥ to_peer + 2: the Allocate and CreatePermission requests at least).
	for dir, least := range map[string]float64{"read": to + 2, "write": from + 2} {
		d := after.counter("edgeway_edge_turn_udp_datagrams_total", "direction", dir)
		sc := after.counter("edgeway_edge_turn_udp_syscalls_total", "direction", dir)
		if d < least || sc < 1 || sc > d {
			t.Errorf("%s: %v datagrams in %v system calls; want ≥ %v datagrams in 1..datagrams system calls", dir, d, sc, least)
		}
	}
	for _, reason := range []string{"write_error", "queue_full", "truncated"} {
		if v := after.counter("edgeway_edge_turn_udp_drops_total", "reason", reason); v != 0 {
			t.Errorf("edgeway_edge_turn_udp_drops_total{reason=%q} = %v, want 0", reason, v)
		}
	}
	if v := after.counter("edgeway_edge_turn_udp_write_waits_total", "", ""); v < 0 {
		t.Error("no edgeway_edge_turn_udp_write_waits_total")
	}
}

// With turn.batch_io: false the listener is pion's own socket: media is
// relayed and no edgeway_edge_turn_udp_* series is exported.
func TestTURNUDPMetricsAbsentWithoutBatchIO(t *testing.T) {
	off := false
	s, server, _ := serveTURN(t, func(c *TURNConfig) { c.BatchIO = &off })
	u, p := turncred.Issue(testTURNSecret, "SEP0BA7C4ED1", time.Now().Add(time.Hour))
	relay, err := dialTURN(t, server, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	sc := scrapeEdge(t, s)
	for _, name := range []string{"edgeway_edge_turn_udp_datagrams_total", "edgeway_edge_turn_udp_syscalls_total", "edgeway_edge_turn_udp_drops_total", "edgeway_edge_turn_udp_write_waits_total"} {
		if sc[name] != nil {
			t.Errorf("%s exported with turn.batch_io off", name)
		}
	}
	if sc["edgeway_edge_turn_allocations"] == nil {
		t.Errorf("no edgeway_edge_turn_allocations among %d families", len(sc))
	}
}
