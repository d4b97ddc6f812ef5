package e2e

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/testenv"
)

// waitUntil waits (bounded, 10 s) until cond holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Issue 12 §2, graceful drain: a call between two MRA phones is up through
// the edge when the drain begins. The node turns not-ready at once, the
// edge's public SIP port refuses new connections, the call's dialog keeps
// working (its BYE goes through the edge and the core), and the drain
// ends, well before its deadline, as soon as the call has ended.
func TestDrainLetsARealCallEnd(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	autoAnswer(b)
	call, in := dialAnswered(t, ctx, a, b, "1002")
	waitEdgeDialogs(t, env, 2)

	if code, _ := get(t, "http://"+env.Info.EdgeOps+"/readyz"); code != http.StatusOK {
		t.Fatalf("edge /readyz before the drain: %d, want 200", code)
	}
	drained := make(chan error, 1)
	go func() { drained <- env.Node.Drain(ctx, time.Minute) }()

	for _, ops := range []string{env.Info.EdgeOps, env.Info.CoreOps} {
		waitUntil(t, "/readyz 503 draining on "+ops, func() bool {
			code, body := get(t, "http://"+ops+"/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
		})
	}
	waitUntil(t, "the edge's SIP port to refuse new connections", func() bool {
		c, err := net.DialTimeout("tcp", env.Info.EdgeSIP, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
	select {
	case err := <-drained:
		t.Fatalf("the drain ended (%v) while a call was up", err)
	default:
	}

	// The call's dialog still works through the draining edge: BYE.
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("BYE during the drain: %v", err)
	}
	select {
	case <-in.Done():
	case <-ctx.Done():
		t.Fatal("the callee never saw the BYE sent during the drain")
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain after the call ended: %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("the drain did not end after the last call did")
	}
}

// A call that never ends holds a drain only until drain's deadline.
func TestDrainStopsAtItsDeadline(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	autoAnswer(b)
	dialAnswered(t, ctx, a, b, "1002")
	waitEdgeDialogs(t, env, 2)
	if err := env.Node.Drain(ctx, 300*time.Millisecond); !errors.Is(err, node.ErrDrainDeadline) {
		t.Fatalf("drain with a call up: %v, want %v", err, node.ErrDrainDeadline)
	}
}
