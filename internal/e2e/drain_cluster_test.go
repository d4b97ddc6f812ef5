package e2e

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/pgtest"
	"github.com/edgeway/edgeway/internal/testenv"
)

// Issue 12 §2: draining a core node of a cluster sends the edges' new work
// to the next core of their list while its own calls finish. The node
// closes its MRA port to new connections and answers the edges' health
// checks 503 (Retry-After) on the connections they hold, so the edge takes
// it out (edge/cores.go): phones that register now are bound through
// core-2 and call each other through it, while the call core-1 held goes
// on to its BYE (Record-Route keeps it on core-1), and the drain ends with
// that call.
func TestDrainCoreSendsEdgesToTheNextCore(t *testing.T) {
	srv := pgtest.Start(t)
	c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: srv.URL, Cores: 2, Edges: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := drainHoldingACall(t, ctx, c)
	c.WaitEdgeCoreUp(0, 0, false)
	if conn, err := net.DialTimeout("tcp", c.Cores[0].MRA, time.Second); err == nil {
		conn.Close()
		t.Fatal("core-1's MRA port took a new connection during its drain")
	}

	// New phones go through core-2 and call each other there.
	devs := c.AddDevices(2)
	x := clusterRegistered(t, c, devs[0].Name, 0)
	y := clusterRegistered(t, c, devs[1].Name, 0)
	autoAnswer(y)
	for _, d := range devs {
		if n := c.BindingNode(d.Line); n != "core-2" {
			t.Fatalf("%s registered through %q during core-1's drain, want core-2, the next of the list", d.Name, n)
		}
	}
	callCompletes(t, ctx, x, y, devs[1].Line, true)
	if n := c.Cores[0].Core().Calls(); n != 1 {
		t.Fatalf("core-1 routes %d calls during its drain, want 1 (the one it held)", n)
	}

	// The call core-1 held ends through it, and so does the drain.
	h.end()
}

// heldDrain is core-1 of a 2-core cluster draining with a call up: A and B
// registered through core-1 (the first of the edge's list), A's call to B
// up through it, and core-1's drain begun (its MRA port refuses new
// connections). end hangs that call up and requires the drain to end with
// it, nil.
type heldDrain struct {
	a, b *bench.Phone
	end  func()
}

func drainHoldingACall(t *testing.T, ctx context.Context, c *testenv.Cluster) heldDrain {
	t.Helper()
	a := clusterRegistered(t, c, phoneA, 0)
	b := clusterRegistered(t, c, phoneB, 0)
	autoAnswer(b)
	for _, d := range []string{phoneA, phoneB} {
		if n := c.BindingNode(c.Devices[d].Line); n != "core-1" {
			t.Fatalf("%s registered through %q, want core-1, the first of the list", d, n)
		}
	}
	call, in := dialAnswered(t, ctx, a, b, c.Devices[phoneB].Line)
	waitNodeCalls(t, c, 0, 1)
	drained := make(chan error, 1)
	go func() { drained <- c.Cores[0].Drain(ctx, time.Minute) }()
	refusesConnections(t, "core-1's MRA port", c.Cores[0].MRA)
	return heldDrain{a: a, b: b, end: func() {
		t.Helper()
		select {
		case err := <-drained:
			t.Fatalf("core-1's drain ended (%v) with its call up", err)
		default:
		}
		hangUpEndsDrain(t, ctx, call, in, drained)
	}}
}

// A draining core's 503 to a new call takes it out of the edge's list at
// once: the edge checks it out of schedule, the core's own answer to the
// OPTIONS says "draining" (RFC 3326 Reason), and the next new call goes to
// the next core. The health checks here are an hour apart, so only that
// can take core-1 out; without it every new call through the edge would
// get core-1's 503 until the next round.
func TestDrainingCoreTakenOutOnItsFirst503(t *testing.T) {
	srv := pgtest.Start(t)
	c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: srv.URL, Cores: 2, Edges: 1, HealthInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := drainHoldingACall(t, ctx, c)
	for _, st := range c.Edges[0].Edge().Cores() {
		if st.MRA == c.Cores[0].MRA && !st.Up {
			t.Fatal("core-1 out of the edge's list before any request or check told it of the drain")
		}
	}

	// The first new call still goes to core-1 and gets its 503.
	lineB := c.Devices[phoneB].Line
	_, err := h.a.Dial(ctx, lineB, testSDP)
	var re *bench.RefusedError
	if !errors.As(err, &re) || re.Status != 503 || re.RetryAfter == "" {
		t.Fatalf("new call during core-1's drain: %v, want 503 with Retry-After", err)
	}
	c.WaitEdgeCoreUp(0, 0, false)

	// The next goes to core-2, which routes it to B through the edge.
	callCompletes(t, ctx, h.a, h.b, lineB, true)
	if n := c.Cores[0].Core().Calls(); n != 1 {
		t.Fatalf("core-1 routes %d calls, want 1 (the one it held)", n)
	}
	h.end()
}

// A phone cannot take a healthy core out of the edge's list by answering
// calls with a forged draining 503: the edge checks the core out of
// schedule, but only the core's own answer to that OPTIONS counts, and a
// core that is not draining answers it 200.
func TestForgedDraining503KeepsTheCore(t *testing.T) {
	srv := pgtest.Start(t)
	c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: srv.URL, Cores: 2, Edges: 1, HealthInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := clusterRegistered(t, c, phoneA, 0)
	b := clusterRegistered(t, c, phoneB, 0)
	b.SetAnswerer(func([]byte) ([]byte, int) { return nil, 503 })
	b.SetRefusalHeaders(sip.NewHeader("Reason", `SIP;cause=503;text="draining"`), sip.NewHeader("Retry-After", "5"))
	passed := func() uint64 {
		for _, st := range c.Edges[0].Edge().Cores() {
			if st.MRA == c.Cores[0].MRA {
				return st.Passed
			}
		}
		t.Fatal("core-1 not in the edge's list")
		return 0
	}
	before := passed()

	_, err := a.Dial(ctx, c.Devices[phoneB].Line, testSDP)
	var re *bench.RefusedError
	if !errors.As(err, &re) || re.Status < 500 {
		t.Fatalf("call to a phone answering 503: %v, want a 5xx", err)
	}
	// The edge checked core-1 at once (one more check passed), and it
	// stays up.
	c.WaitEdge(0, "core-1 checked again and up", func(st []edge.CoreStatus) bool {
		for _, s := range st {
			if s.MRA == c.Cores[0].MRA {
				return s.Up && s.Passed > before
			}
		}
		return false
	})
	// Another forged 503 within a second triggers no second check.
	after := passed()
	if _, err := a.Dial(ctx, c.Devices[phoneB].Line, testSDP); !errors.As(err, &re) {
		t.Fatalf("second call: %v, want refused", err)
	}
	if n := passed(); n > after+1 {
		t.Fatalf("core-1 checked %d more times after a second forged 503, want at most 1", n-after)
	}
	if n := c.BindingNode(c.Devices[phoneA].Line); n != "core-1" {
		t.Fatalf("A bound through %q, want core-1", n)
	}
}
