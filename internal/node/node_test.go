package node_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/testenv"
)

func freeAddrs(t *testing.T) quickstart.Addrs {
	return quickstart.Addrs{CoreIP: "127.0.0.1", EdgeIP: "127.0.0.1", CoreHTTPS: testenv.FreePort(t), CoreConf: testenv.FreePort(t), CorePhone: testenv.FreePort(t),
		CoreMRA: testenv.FreePort(t), EdgeHTTPS: testenv.FreePort(t), EdgeSIP: testenv.FreePort(t), EdgeTURN: testenv.FreePort(t), EdgeTURNS: testenv.FreePort(t)}
}

// assemble lays out a quickstart directory and builds its core and edge
// the way `edgeway quickstart` does; before, when set, runs on the store
// first.
func assemble(t *testing.T, ctx context.Context, a quickstart.Addrs, before func(quickstart.Layout, store.Store)) (*node.Node, quickstart.Layout, store.Store) {
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
	if before != nil {
		before(lay, st)
	}
	n, err := node.New(ctx, node.Config{Core: &lay.Core, Store: st, Edge: &lay.Edge, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return n, lay, st
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
	a := freeAddrs(t)
	a.EdgeSIP = busy.Addr().(*net.TCPAddr).Port
	n, _, _ := assemble(t, ctx, a, nil)
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
	a := freeAddrs(t)
	n, _, _ := assemble(t, ctx, a, nil)
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

// TestQuickstartAppliesNodeSetPorts: with SIP ports set for the node with
// `admin node set` (S-11) in the store, the quickstart assembly binds
// them, not the ones in core.yaml (issue 10: quickstart never applied
// them), and its edge follows the moved MRA port: an MRA phone onboards
// and registers through the edge.
func TestQuickstartAppliesNodeSetPorts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := freeAddrs(t)
	phone, mra := testenv.FreePort(t), testenv.FreePort(t)
	n, lay, st := assemble(t, ctx, a, func(lay quickstart.Layout, st store.Store) {
		if err := st.PutNode(ctx, store.Node{Name: lay.Core.Node, PhoneOAuthPort: phone, MRAPort: mra}); err != nil {
			t.Fatal(err)
		}
	})
	devs, _, err := quickstart.Provision(ctx, st, n.Core.Activation())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Bind(ctx, node.Listeners{}); err != nil {
		t.Fatal(err)
	}
	ls := n.Listeners().Core
	if got := ls.Phone.Addr().(*net.TCPAddr).Port; got != phone {
		n.Close()
		t.Fatalf("Phone OAuth listener on %d, want the node's %d (core.yaml says %d)", got, phone, a.CorePhone)
	}
	if got := ls.MRA.Addr().(*net.TCPAddr).Port; got != mra {
		n.Close()
		t.Fatalf("MRA listener on %d, want the node's %d (core.yaml says %d)", got, mra, a.CoreMRA)
	}
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	pem, err := os.ReadFile(lay.PKI.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	var d quickstart.Device
	for _, d = range devs {
		if d.MRA {
			break
		}
	}
	p, err := bench.NewPhone(bench.PhoneConfig{Device: d.Name, Line: d.Line, Domain: d.Domain, RootCAs: pool, Log: slog.New(slog.DiscardHandler),
		EdgeHTTPS: fmt.Sprintf("https://127.0.0.1:%d", a.EdgeHTTPS), EdgeSIP: fmt.Sprintf("127.0.0.1:%d", a.EdgeSIP)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Onboard(ctx, d.ActivationCode); err != nil {
		t.Fatalf("onboarding %s through the edge: %v", d.Name, err)
	}
	res, err := p.Register(ctx, 600)
	if err != nil {
		t.Fatalf("REGISTER through the edge: %v", err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER through the edge to the node's MRA port: %d %s", res.StatusCode, res.Reason)
	}
}

// TestOpsAddresses (issue 12 §2): each tier binds its own operations
// address; a busy one is reported naming ops_addr, and "off" binds none.
func TestOpsAddresses(t *testing.T) {
	ctx := context.Background()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	a := freeAddrs(t)
	a.EdgeOps = busy.Addr().(*net.TCPAddr).Port
	n, _, _ := assemble(t, ctx, a, nil)
	err = n.Bind(ctx, node.Listeners{})
	if err == nil {
		n.Close()
		t.Fatal("Bind succeeded with the edge's operations port taken")
	}
	if !strings.Contains(err.Error(), "edge: operations listener (ops_addr)") {
		t.Fatalf("Bind error %q does not name the edge's ops_addr", err)
	}

	lay, err := quickstart.Prepare(t.TempDir(), freeAddrs(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, lay.Core.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lay.Edge.OpsAddr = "off"
	n, err = node.New(ctx, node.Config{Core: &lay.Core, Store: st, Edge: &lay.Edge, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Bind(ctx, node.Listeners{}); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ls := n.Listeners()
	if ls.EdgeOps != nil {
		t.Errorf("edge ops_addr off: bound %v", ls.EdgeOps.Addr())
	}
	if ls.CoreOps == nil || ls.CoreOps.Addr().(*net.TCPAddr).Port == 0 {
		t.Errorf("core ops_addr 127.0.0.1:0: not bound (%v)", ls.CoreOps)
	}
}
