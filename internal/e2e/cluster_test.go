package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/pgtest"
	"github.com/edgeway/edgeway/internal/testenv"
)

// Clusters (issue 11 §1, §2): several core nodes on one PostgreSQL server
// and edges with ordered core lists (internal/testenv StartCluster).

// clusterRegistered onboards device through edge i and registers it.
func clusterRegistered(t *testing.T, c *testenv.Cluster, device string, edge int) *bench.Phone {
	t.Helper()
	ph := c.Phone(device, edge)
	ctx := context.Background()
	if _, err := ph.Onboard(ctx, c.Devices[device].ActivationCode); err != nil {
		t.Fatalf("%s onboarding: %v", device, err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("%s register: %v %v", device, res, err)
	}
	return ph
}

// callCompletes places a call from `from` to line, answered by `to`, and
// hangs it up from the caller's side (byCaller) or the callee's, waiting
// for both ends; it fails the test unless the whole call (INVITE, 200,
// ACK, BYE, 200) went through.
func callCompletes(t *testing.T, ctx context.Context, from, to *bench.Phone, line string, byCaller bool) {
	t.Helper()
	call, in := dialAnswered(t, ctx, from, to, line)
	hang, other := call, in
	if !byCaller {
		hang, other = in, call
	}
	if err := hang.Hangup(ctx); err != nil {
		t.Fatalf("call to %s: BYE: %v", line, err)
	}
	select {
	case <-other.Done():
	case <-ctx.Done():
		t.Fatalf("call to %s: the other side never saw the BYE", line)
	}
}

// waitNodeCalls waits (bounded) until core node i routes n calls.
func waitNodeCalls(t *testing.T, c *testenv.Cluster, i, n int) {
	t.Helper()
	waitCount(t, c.Cores[i].Name+" calls", func() int { return c.Cores[i].Core().Calls() }, n)
}

// §1: "a binding made via node A routes a call placed via node B". Phone
// X registers through edge 1, whose list starts with core A; phone Y
// through edge 2, whose list starts with core B, and an on-premises soft
// client on B's Phone OAuth port. Calls to X placed through B reach X
// through edge 1's connection to B (the edge keeps one to every core of
// its list and B learns from it which edge it is), and the other way; the
// in-dialog requests follow the Record-Route of the node holding the
// dialog. Before cross-node routing, B answered 480: it looked for X's
// connection to A among its own.
func TestCallRoutesAcrossNodes(t *testing.T) {
	srv := pgtest.Start(t)
	c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: srv.URL, Cores: 2, Edges: 2,
		EdgeCores: func(i int) []int {
			if i == 0 {
				return []int{0, 1}
			}
			return []int{1, 0}
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	x := clusterRegistered(t, c, phoneA, 0)
	y := clusterRegistered(t, c, phoneB, 1)
	if a, b := c.BindingNode("1001"), c.BindingNode("1002"); a != "core-1" || b != "core-2" {
		t.Fatalf("bindings made through %q and %q, want core-1 (edge 1's first) and core-2 (edge 2's first)", a, b)
	}
	soft := c.OnPremPhone(csf, 1)
	if _, err := soft.Login(ctx, c.Users[0].Username, c.Users[0].Password); err != nil {
		t.Fatal(err)
	}
	if res, err := soft.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("on-premises register on core-2: %v %v", res, err)
	}
	for _, p := range []*bench.Phone{x, y, soft} {
		autoAnswer(p)
	}

	completed := 0
	for _, tc := range []struct {
		name     string
		from, to *bench.Phone
		line     string
		node     int // the core node the INVITE goes through
		byCaller bool
	}{
		{"MRA via core-2 to MRA bound via core-1, callee hangs up", y, x, "1001", 1, false},
		{"MRA via core-1 to MRA bound via core-2, caller hangs up", x, y, "1002", 0, true},
		{"on-premises on core-2 to MRA bound via core-1", soft, x, "1001", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, in := dialAnswered(t, ctx, tc.from, tc.to, tc.line)
			waitNodeCalls(t, c, tc.node, 1)
			waitNodeCalls(t, c, 1-tc.node, 0)
			hang, other := call, in
			if !tc.byCaller {
				hang, other = in, call
			}
			if err := hang.Hangup(ctx); err != nil {
				t.Fatalf("BYE: %v", err)
			}
			select {
			case <-other.Done():
			case <-ctx.Done():
				t.Fatal("the other side never saw the BYE")
			}
			waitNodeCalls(t, c, tc.node, 0)
			completed++
		})
	}
	if completed != 3 {
		t.Fatalf("%d of 3 calls across nodes completed", completed)
	}
}

// §2: the edge's ordered core list and its failover. Six phones register
// through the edge, whose list is core-1, core-2, core-3: their bindings
// are core-1's. core-1 is stopped (its process killed): the edge's health
// checks take it out, and every phone's next REGISTER succeeds through
// core-2 with the tokens it has (no re-onboarding: the keys are in the
// shared store, the issuer is the cluster's), calls between them
// complete, and token refresh through the edge works (core-2 answers the
// HTTPS proxy). When core-1 comes back, new REGISTERs go to it again, and
// a call from a phone bound there to one bound on core-2 completes.
func TestEdgeFailsOverToNextCore(t *testing.T) {
	srv := pgtest.Start(t)
	c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: srv.URL, Cores: 3, Edges: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	names := []string{phoneA, phoneB}
	for _, d := range c.AddDevices(4) {
		names = append(names, d.Name)
	}
	phones := make([]*bench.Phone, len(names))
	for i, d := range names {
		phones[i] = clusterRegistered(t, c, d, 0)
		autoAnswer(phones[i])
		if n := c.BindingNode(c.Devices[d].Line); n != "core-1" {
			t.Fatalf("%s registered through %q, want core-1, the first of the list", d, n)
		}
	}

	c.StopCore(0)
	c.WaitEdgeCoreUp(0, 0, false)

	recovered := 0
	for i, p := range phones {
		res, err := p.Register(ctx, 600)
		if err != nil || res.StatusCode != 200 {
			t.Errorf("%s: REGISTER after core-1 stopped: %v %v", names[i], res, err)
			continue
		}
		if n := c.BindingNode(c.Devices[names[i]].Line); n != "core-2" {
			t.Errorf("%s: re-registered through %q, want core-2, the next of the list", names[i], n)
			continue
		}
		recovered++
	}
	if recovered != len(phones) {
		t.Fatalf("%d of %d phones recovered through core-2", recovered, len(phones))
	}

	completed := 0
	for i := 0; i+1 < len(phones); i += 2 {
		from, to := phones[i], phones[i+1]
		callCompletes(t, ctx, from, to, c.Devices[names[i+1]].Line, i%4 == 0)
		completed++
	}
	waitNodeCalls(t, c, 1, 0)
	if want := len(phones) / 2; completed != want {
		t.Fatalf("%d of %d calls completed after failover", completed, want)
	}

	refreshed := 0
	for i, p := range phones {
		before := p.Tokens().AccessToken
		if _, err := p.Refresh(ctx); err != nil {
			t.Errorf("%s: refresh through the edge after core-1 stopped: %v", names[i], err)
			continue
		}
		if p.Tokens().AccessToken == before {
			t.Errorf("%s: refresh returned the same access token", names[i])
			continue
		}
		if res, err := p.Register(ctx, 600); err != nil || res.StatusCode != 200 {
			t.Errorf("%s: REGISTER with the refreshed token: %v %v", names[i], res, err)
			continue
		}
		refreshed++
	}
	if refreshed != len(phones) {
		t.Fatalf("%d of %d phones refreshed their tokens through the edge after failover", refreshed, len(phones))
	}

	// core-1 comes back: the edge uses it again, in its place in the list.
	c.StartCore(0)
	c.WaitEdgeCoreUp(0, 0, true)
	if res, err := phones[0].Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER after core-1 came back: %v %v", res, err)
	}
	if n := c.BindingNode(c.Devices[names[0]].Line); n != "core-1" {
		t.Fatalf("after core-1 came back, a REGISTER went to %q, want core-1", n)
	}
	// phones[0] is bound on core-1, phones[1] on core-2: a call between
	// them goes through core-1 and crosses nodes.
	callCompletes(t, ctx, phones[0], phones[1], c.Devices[names[1]].Line, false)
	waitNodeCalls(t, c, 0, 0)
}

// §2, without waiting for the health checks: the edge's first core is
// stopped and its connection is gone, but no check has run since (the
// interval is an hour), so the edge still holds it up. A phone's next
// REGISTER finds no connection to it, cannot open one, takes it out at
// once and goes to the next core; token refresh follows.
func TestEdgeFailsOverOnFirstRequest(t *testing.T) {
	srv := pgtest.Start(t)
	c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: srv.URL, Cores: 2, Edges: 1, HealthInterval: time.Hour,
		// Nor does the edge ask the cores anything over HTTPS meanwhile
		// (the TURN revocation poll would find core-1 gone first).
		ConfigureEdge: func(_ int, e *edge.Config) { e.TURN.RevocationPoll = time.Hour }})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := clusterRegistered(t, c, phoneA, 0)
	if n := c.BindingNode("1001"); n != "core-1" {
		t.Fatalf("registered through %q, want core-1", n)
	}
	c.StopCore(0)
	c.WaitEdge(0, "core-1's connection closed, core-1 not yet checked", func(st []edge.CoreStatus) bool {
		return !st[0].Connected && st[0].Up
	})
	if res, err := p.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER with core-1 gone and not yet checked: %v %v", res, err)
	}
	if n := c.BindingNode("1001"); n != "core-2" {
		t.Fatalf("re-registered through %q, want core-2", n)
	}
	if st := c.Edges[0].Edge().Cores(); st[0].Up || !st[1].Up {
		t.Fatalf("after the failed connection: %+v; want core-1 out, core-2 in", st)
	}
	if _, err := p.Refresh(ctx); err != nil {
		t.Fatalf("refresh through the edge: %v", err)
	}
}

// A node's bindings in memory are not told when another node rewrites
// them: a call must still follow the newest binding in the cluster store.
// Phone X registers through core-2 while core-1 is down (core-2 now holds
// that binding in memory); core-1 returns, X moves to another edge (its
// old connection and flow are gone) and registers through core-1. A call
// placed through core-2 reaches X at its new flow, through the edge the
// newer binding's Path names, not the old flow core-2 remembered (480).
func TestCallFollowsNewestBindingAcrossNodes(t *testing.T) {
	srv := pgtest.Start(t)
	c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: srv.URL, Cores: 2, Edges: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	x1 := clusterRegistered(t, c, phoneA, 0)
	c.StopCore(0)
	c.WaitEdgeCoreUp(0, 0, false)
	c.WaitEdgeCoreUp(1, 0, false)
	if res, err := x1.Register(ctx, 600); err != nil || res.StatusCode != 200 || c.BindingNode("1001") != "core-2" {
		t.Fatalf("REGISTER through core-2: %v %v (bound on %q)", res, err, c.BindingNode("1001"))
	}
	c.StartCore(0)
	c.WaitEdgeCoreUp(0, 0, true)
	c.WaitEdgeCoreUp(1, 0, true)
	tokens := x1.Tokens()
	x1.Close()
	x2 := c.Phone(phoneA, 1)
	x2.SetTokens(tokens)
	if res, err := x2.Register(ctx, 600); err != nil || res.StatusCode != 200 || c.BindingNode("1001") != "core-1" {
		t.Fatalf("REGISTER through edge 2 and core-1: %v %v (bound on %q)", res, err, c.BindingNode("1001"))
	}
	autoAnswer(x2)
	soft := c.OnPremPhone(csf, 1)
	if _, err := soft.Login(ctx, c.Users[0].Username, c.Users[0].Password); err != nil {
		t.Fatal(err)
	}
	if res, err := soft.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("on-premises register on core-2: %v %v", res, err)
	}
	callCompletes(t, ctx, soft, x2, "1001", true)
	waitNodeCalls(t, c, 1, 0)
}
