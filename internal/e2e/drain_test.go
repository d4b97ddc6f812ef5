package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/media"
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
	hangUpEndsDrain(t, ctx, call, in, drained)
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

// startDrain begins env's drain in the background and waits until both
// tiers' /readyz say so; the drain's result comes on the channel.
func startDrain(t *testing.T, ctx context.Context, env *testenv.Env) <-chan error {
	t.Helper()
	drained := make(chan error, 1)
	go func() { drained <- env.Node.Drain(ctx, time.Minute) }()
	for _, ops := range []string{env.Info.EdgeOps, env.Info.CoreOps} {
		waitUntil(t, "/readyz 503 draining on "+ops, func() bool {
			code, body := get(t, "http://"+ops+"/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(body, "draining")
		})
	}
	return drained
}

// refusesConnections waits (bounded) until addr refuses new TCP
// connections.
func refusesConnections(t *testing.T, what, addr string) {
	t.Helper()
	waitUntil(t, what+" to refuse new connections", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
}

// Issue 12 §2: during a drain a new call on a phone's connection that was
// open before is not routed: the edge answers 503 Service Unavailable with
// Retry-After (RFC 3261 §21.5.4, §20.33), so the phone tries elsewhere,
// and counts it (edgeway_edge_sip_refusals_total{reason="draining"}). The
// call that was up keeps working (its BYE goes through), and a REGISTER
// refresh on the same connection is still answered 200 (the binding stays
// while calls finish).
func TestDrainRefusesNewCallsOnOpenConnections(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	autoAnswer(a)
	autoAnswer(b)
	call, in := dialAnswered(t, ctx, a, b, env.Devices[phoneB].Line)
	waitEdgeDialogs(t, env, 2)
	waitCalls(t, env, 1)
	before := scrapeOps(t, env.Info.EdgeOps)

	drained := startDrain(t, ctx, env)
	refusesConnections(t, "the edge's SIP port", env.Info.EdgeSIP)

	// A new call from either phone, on its open connection: 503 +
	// Retry-After from the edge, and nothing reaches the core.
	for _, p := range []struct {
		from *bench.Phone
		to   string
	}{{a, env.Devices[phoneB].Line}, {b, env.Devices[phoneA].Line}} {
		_, err := p.from.Dial(ctx, p.to, testSDP)
		var re *bench.RefusedError
		if !errors.As(err, &re) || re.Status != 503 {
			t.Fatalf("new call to %s during the drain: %v, want 503 Service Unavailable", p.to, err)
		}
		if secs, err := strconv.Atoi(re.RetryAfter); err != nil || secs <= 0 {
			t.Fatalf("503 to a new call during the drain: Retry-After %q, want a number of seconds (RFC 3261 §20.33)", re.RetryAfter)
		}
	}
	if n := env.Core.Calls(); n != 1 {
		t.Fatalf("the core routes %d calls during the drain, want 1 (the new ones never reached it)", n)
	}
	after := scrapeOps(t, env.Info.EdgeOps)
	checkDelta(t, "new calls during the drain", before, after, 2, "edgeway_edge_sip_refusals_total", "reason", "draining")

	// A REGISTER refresh on the open connection is still answered.
	if res, err := a.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER refresh during the drain: %v %v, want 200", res, err)
	}

	// The call that was up ends normally: its BYE goes through.
	hangUpEndsDrain(t, ctx, call, in, drained)
}

// Issue 12 §2: during a drain the edge's TURN TCP and TLS ports refuse new
// connections, and a new allocation over UDP (which has no listener to
// close) is refused 508 Insufficient Capacity, while the allocation made
// before keeps relaying both ways; the drain ends when it is released.
func TestDrainRefusesNewTURNAllocations(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TURN == nil {
		t.Fatal("no TURN credentials in the token response")
	}
	allocate := func() (*media.Relay, error) {
		return media.AllocateRelay(ctx, env.Info.EdgeTURN, "udp", tok.TURN.Username, tok.TURN.Credential, env.Info.TURNRealm)
	}
	live, err := allocate()
	if err != nil {
		t.Fatalf("TURN allocation before the drain: %v", err)
	}
	defer live.Close()
	waitAllocations(t, env, 1)
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := live.Permit(peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}

	drained := startDrain(t, ctx, env)
	refusesConnections(t, "the edge's TURN TCP port", env.Info.EdgeTURN)
	refusesConnections(t, "the edge's TURN TLS port", env.Info.EdgeTURNS)

	var te *media.TURNError
	if r, err := allocate(); !errors.As(err, &te) || te.Code != int(stun.CodeInsufficientCapacity) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("new TURN allocation over UDP during the drain: %v, want 508 Insufficient Capacity", err)
	}
	if v := scrapeOps(t, env.Info.EdgeOps).value("edgeway_edge_turn_refusals_total", "reason", "draining"); v != 1 {
		t.Errorf(`edgeway_edge_turn_refusals_total{reason="draining"} = %v, want 1`, v)
	}

	// The allocation made before the drain relays both ways.
	ping := []byte("during the drain")
	if _, err := live.PacketConn().WriteTo(ping, peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != string(ping) {
		t.Fatalf("the peer got %q, %v through the live relay during the drain", buf[:n], err)
	}
	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	_ = live.PacketConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := live.PacketConn().ReadFrom(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("reply through the live relay during the drain: %q, %v", buf[:n], err)
	}
	select {
	case err := <-drained:
		t.Fatalf("the drain ended (%v) with an allocation live", err)
	default:
	}
	live.Close()
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain after the allocation ended: %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("the drain did not end after the last allocation did")
	}
}

// Issue 12 §2: a core node's drain closes its public ports — the MRA port
// (5091) among them, so an edge opening a connection fails over to the
// next core of its list — while a connection open before keeps being
// served, and the core's own dialogs count in what the drain waits for.
func TestDrainCoreRefusesNewMRAConnections(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	edgeCert, err := tls.LoadX509KeyPair(env.Layout.PKI.EdgeMTLSCert, env.Layout.PKI.EdgeMTLSKey)
	if err != nil {
		t.Fatal(err)
	}
	dialMRA := func() (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", env.Info.CoreMRA,
			&tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", Certificates: []tls.Certificate{edgeCert}, MinVersion: tls.VersionTLS12})
	}
	open, err := dialMRA()
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if status, err := optionsOver(open, "edgeway.test"); err != nil || !strings.HasPrefix(status, "SIP/2.0 200") {
		t.Fatalf("OPTIONS on the MRA port before the drain: %q %v", status, err)
	}
	// A call between two on-premises phones (straight to the core's Phone
	// OAuth port): no edge leg, so what holds the drain is the core's
	// dialog alone.
	a := registered(t, env, phoneA, false)
	b := registered(t, env, phoneB, false)
	autoAnswer(b)
	call, in := dialAnswered(t, ctx, a, b, env.Devices[phoneB].Line)
	waitCalls(t, env, 1)
	if n := env.Edge.SIP().Dialogs(); n != 0 {
		t.Fatalf("the edge routes %d legs of an on-premises call, want 0", n)
	}

	drained := startDrain(t, ctx, env)
	refusesConnections(t, "the core's MRA port", env.Info.CoreMRA)
	refusesConnections(t, "the core's Phone OAuth port", env.Info.CorePhoneOAuth)
	refusesConnections(t, "the core's HTTPS port", strings.TrimPrefix(env.Info.CoreHTTPS, "https://"))
	refusesConnections(t, "the core's config port", strings.TrimPrefix(env.Info.CoreConfig, "https://"))
	if c, err := dialMRA(); err == nil {
		c.Close()
		t.Fatal("a new mTLS connection to the draining core's MRA port was accepted")
	}
	// The connection open before the drain is still served: its health
	// check is answered, 503 now, which tells an edge to send new work to
	// the next core of its list (core/proxy/drain.go).
	if status, err := optionsOver(open, "edgeway.test"); err != nil || !strings.HasPrefix(status, "SIP/2.0 503") {
		t.Fatalf("OPTIONS on the MRA connection open before the drain: %q %v, want 503 Service Unavailable", status, err)
	}
	select {
	case err := <-drained:
		t.Fatalf("the drain ended (%v) while the core routed a call", err)
	default:
	}
	// Its BYE goes over the phone's connection to 5090, open before.
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("BYE during the core's drain: %v", err)
	}
	select {
	case <-in.Done():
	case <-ctx.Done():
		t.Fatal("the callee never saw the BYE sent during the core's drain")
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain after the call ended: %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("the drain did not end after the core's last dialog did")
	}
}

// hangUpEndsDrain hangs up the last call a drain waits for, through the
// draining node, and requires the callee to see the BYE and the drain to
// end with it (nil).
func hangUpEndsDrain(t *testing.T, ctx context.Context, call, in *bench.Call, drained <-chan error) {
	t.Helper()
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
