package node_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/node"
)

// poll calls f every few milliseconds until it reports true, failing the
// test after a bound.
func poll(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !f() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting: %s", what)
		case <-tick.C:
		}
	}
}

func readyz(t *testing.T, ops net.Listener) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + ops.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDrainRefusesNewServesOpenWaits: a drain turns both tiers' /readyz
// to 503 "draining" at once, refuses new connections on both tiers' public
// ports while a connection opened before keeps being served, and returns
// (before its deadline) when the last active call ends; Serve then stops.
func TestDrainRefusesNewServesOpenWaits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, _, _ := assemble(t, ctx, freeAddrs(t), nil)
	var calls atomic.Int32
	calls.Store(1)
	node.SetActive(n, func() (int, int) { return int(calls.Load()), 0 })
	if err := n.Bind(ctx, node.Listeners{}); err != nil {
		t.Fatal(err)
	}
	ls := n.Listeners()
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()

	edgeHTTPS := "https://" + ls.Edge.HTTPS.Addr().String() + "/"
	open := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 1}
	defer open.CloseIdleConnections()
	get := func(tr *http.Transport) error {
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(edgeHTTPS)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	poll(t, "edge HTTPS answers", func() bool { return get(open) == nil })

	drained := make(chan error, 1)
	go func() { drained <- n.Drain(ctx, time.Minute) }()

	for _, ops := range []net.Listener{ls.CoreOps, ls.EdgeOps} {
		poll(t, "/readyz 503 draining on "+ops.Addr().String(), func() bool {
			code, body := readyz(t, ops)
			return code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
		})
	}
	// Every public listener of both tiers: the edge's HTTPS, SIP/TLS and
	// TURN TCP/TLS, the core's HTTPS, config, Phone OAuth and MRA ports.
	public := []net.Listener{ls.Edge.SIP, ls.Edge.HTTPS, ls.Edge.TURN.TCP, ls.Edge.TURN.TLS, ls.Core.HTTPS, ls.Core.Config, ls.Core.Phone, ls.Core.MRA}
	for _, l := range public {
		if l == nil {
			t.Fatal("a public listener is not bound")
		}
		addr := l.Addr().String()
		poll(t, "new connections refused on "+addr, func() bool {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
	}
	// The connection opened before the drain is still served.
	if err := get(open); err != nil {
		t.Fatalf("open connection not served during the drain: %v", err)
	}
	select {
	case err := <-drained:
		t.Fatalf("drain ended with a call still active: %v", err)
	default:
	}
	calls.Store(0)
	if err := <-drained; err != nil {
		t.Fatalf("drain after the last call ended: %v (want nil, before the deadline)", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after the drain: %v", err)
	}
}

// TestDrainDeadline: a call that never ends holds the drain only until
// drain_timeout.
func TestDrainDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, _, _ := assemble(t, ctx, freeAddrs(t), nil)
	node.SetActive(n, func() (int, int) { return 1, 1 })
	if err := n.Bind(ctx, node.Listeners{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	if err := n.Drain(ctx, 200*time.Millisecond); !errors.Is(err, node.ErrDrainDeadline) {
		t.Fatalf("drain with a call that never ends: %v, want ErrDrainDeadline", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after the drain: %v", err)
	}
}
