package quickstart

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/media"
	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/turncred"
)

// Issue 9, item 5: quickstart's edge, with the TURN config quickstart
// writes, refuses (403) a phone's permission to the core's address
// (127.0.0.2 — 5091, 5090, 6971 alike: permissions are per address) and
// to loopback addresses the demo does not use, while the demo's media
// peer address (127.0.0.1) relays. No core runs: the edge keeps relays
// from the core by its configured addresses.
func TestQuickstartTURNKeepsRelaysFromTheCore(t *testing.T) {
	a := DefaultAddrs()
	lay, err := Prepare(t.TempDir(), a)
	if err != nil {
		t.Fatal(err)
	}
	if got := lay.Edge.TURN.AllowedPeers; len(got) != 1 || got[0] != "127.0.0.1/32" {
		t.Errorf("turn.allowed_peers = %q, want exactly the demo's media address 127.0.0.1/32", got)
	}
	cfg := lay.Edge
	cfg.CoreRetry = time.Hour
	cfg.OpsAddr = "127.0.0.1:0" // not the default 9465 a running quickstart holds
	n, err := node.New(context.Background(), node.Config{Edge: &cfg, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := n.Edge
	listen := func() net.Listener {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	if err := n.Bind(ctx, node.Listeners{Edge: edge.Listeners{HTTPS: listen(), SIP: listen(), TURN: edge.TURNListeners{UDP: udp, TCP: listen(), TLS: listen()}}}); err != nil {
		t.Fatal(err)
	}
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("edge: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("edge did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for e.TURN() == nil {
		if time.Now().After(deadline) {
			t.Fatal("TURN did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A phone's credential, as the edge hands it out with a token.
	secret, err := turncred.LoadSecret(lay.Edge.TURN.SecretFile)
	if err != nil {
		t.Fatal(err)
	}
	user, pass := turncred.Issue(secret, "SEP001122334401", time.Now().Add(time.Hour))
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	relay, err := media.AllocateRelay(rctx, udp.LocalAddr().String(), "udp", user, pass, lay.Edge.TURN.Realm, media.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	for _, port := range []int{a.CoreMRA, a.CorePhone, a.CoreConf, a.CoreHTTPS} {
		peer := &net.UDPAddr{IP: net.ParseIP(a.CoreIP), Port: port}
		var te *media.TURNError
		if err := relay.Permit(peer); !errors.As(err, &te) || te.Code != 403 {
			t.Errorf("permission to the core %v: %v, want 403", peer, err)
		}
	}
	for _, other := range []string{"127.0.0.3", "127.1.0.1", "10.0.0.1"} {
		var te *media.TURNError
		if err := relay.Permit(&net.UDPAddr{IP: net.ParseIP(other), Port: 4000}); !errors.As(err, &te) || te.Code != 403 {
			t.Errorf("permission to %s: %v, want 403", other, err)
		}
	}

	// The demo media peer relays.
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := relay.Permit(peer.LocalAddr()); err != nil {
		t.Fatalf("permission to the demo media peer %v: %v", peer.LocalAddr(), err)
	}
	buf := make([]byte, 64)
	for i := 0; ; i++ {
		if i == 50 {
			t.Fatal("the demo media peer never received the relayed datagram")
		}
		if _, err := relay.PacketConn().WriteTo([]byte("media "+strconv.Itoa(i)), peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := peer.ReadFrom(buf); err == nil {
			break
		}
	}
}
