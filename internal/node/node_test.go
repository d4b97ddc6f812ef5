package node_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
)

// freePort is a port the kernel just handed out and took back.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func assemble(t *testing.T, ctx context.Context, a quickstart.Addrs) *node.Node {
	t.Helper()
	lay, err := quickstart.Prepare(t.TempDir(), a)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, lay.Core.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	n, err := node.New(ctx, node.Config{Core: &lay.Core, Store: st, Edge: &lay.Edge, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBindBusyPortClosesEverything: a port that cannot be bound is
// reported before anything serves, and every listener already bound is
// closed again (its port can be bound at once).
func TestBindBusyPortClosesEverything(t *testing.T) {
	ctx := context.Background()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	a := quickstart.Addrs{CoreIP: "127.0.0.1", EdgeIP: "127.0.0.1", CoreHTTPS: freePort(t), CoreConf: freePort(t), CorePhone: freePort(t),
		CoreMRA: freePort(t), EdgeHTTPS: freePort(t), EdgeSIP: busy.Addr().(*net.TCPAddr).Port, EdgeTURN: freePort(t), EdgeTURNS: freePort(t)}
	n := assemble(t, ctx, a)
	err = n.Bind(ctx, node.Listeners{})
	if err == nil {
		n.Close()
		t.Fatal("Bind succeeded with the edge's SIP port taken")
	}
	if !strings.Contains(err.Error(), "edge: SIP listener") {
		t.Fatalf("Bind error %q does not name the edge's SIP listener", err)
	}
	for _, p := range []int{a.CoreHTTPS, a.CoreConf, a.CorePhone, a.CoreMRA, a.EdgeHTTPS} {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d still held after the failed Bind: %v", p, err)
		}
		ln.Close()
	}
}

// TestServeStopsAndCloses: Run serves until the context ends, returns nil
// and leaves no listener open.
func TestServeStopsAndCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := quickstart.Addrs{CoreIP: "127.0.0.1", EdgeIP: "127.0.0.1", CoreHTTPS: freePort(t), CoreConf: freePort(t), CorePhone: freePort(t),
		CoreMRA: freePort(t), EdgeHTTPS: freePort(t), EdgeSIP: freePort(t), EdgeTURN: freePort(t), EdgeTURNS: freePort(t)}
	n := assemble(t, ctx, a)
	if err := n.Bind(ctx, node.Listeners{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	// Serving: the core's HTTPS port accepts.
	c, err := net.Dial("tcp", n.Listeners().Core.HTTPS.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after the context ended: %v", err)
	}
	for _, p := range []int{a.CoreHTTPS, a.CoreConf, a.CorePhone, a.CoreMRA, a.EdgeHTTPS, a.EdgeSIP, a.EdgeTURNS} {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d still held after Serve returned: %v", p, err)
		}
		ln.Close()
	}
}
