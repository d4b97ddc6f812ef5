package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/emiago/sipgo/sip"
)

var testSDP = []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

// registered onboards and registers a demo phone.
func registered(t *testing.T, env *testenv.Env, device string, mra bool) *bench.Phone {
	t.Helper()
	ph := env.Phone(device, mra)
	ctx := context.Background()
	var err error
	if device == csf {
		_, err = ph.Login(ctx, env.Users[0].Username, env.Users[0].Password)
	} else {
		_, err = ph.Onboard(ctx, env.Devices[device].ActivationCode)
	}
	if err != nil {
		t.Fatalf("%s: %v", device, err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("%s register: %v %v", device, res, err)
	}
	return ph
}

func autoAnswer(ph *bench.Phone) {
	ph.SetAnswerer(func(offer []byte) ([]byte, int) { return testSDP, 0 })
}

// waitCount waits (bounded) until count() is n: state that settles just
// after the SIP exchange a test sees.
func waitCount(t *testing.T, what string, count func() int, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, count(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitCalls(t *testing.T, env *testenv.Env, n int) {
	t.Helper()
	waitCount(t, "calls the core routes", env.Core.Calls, n)
}

func waitEdgeDialogs(t *testing.T, env *testenv.Env, n int) {
	t.Helper()
	waitCount(t, "call legs the edge routes", env.Edge.SIP().Dialogs, n)
}

func waitAllocations(t *testing.T, env *testenv.Env, n int) {
	t.Helper()
	waitCount(t, "allocations on the edge's TURN", env.Edge.TURN().Allocations, n)
}

// dialAnswered places a call from `from` to line, answered by `to`, and
// returns both ends.
func dialAnswered(t *testing.T, ctx context.Context, from, to *bench.Phone, line string) (call, in *bench.Call) {
	t.Helper()
	call, err := from.Dial(ctx, line, testSDP)
	if err != nil {
		t.Fatalf("call to %s: %v", line, err)
	}
	select {
	case in = <-to.Incoming():
	case <-ctx.Done():
		t.Fatalf("call to %s: the callee never saw it", line)
	}
	return call, in
}

// S-4 signalling: calls between two MRA phones and between an MRA and an
// on-premises phone, both ways, each hung up by either side, leave no
// dialog behind on the core.
func TestCallsRouteThroughEdgeAndCore(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	c := registered(t, env, csf, false)
	for _, p := range []*bench.Phone{a, b, c} {
		autoAnswer(p)
	}
	for _, tc := range []struct {
		name       string
		from, to   *bench.Phone
		line       string
		callerHang bool
		edgeLegs   int // call legs through the edge: one per MRA phone
	}{
		{"MRA to MRA, caller hangs up", a, b, "1002", true, 2},
		{"MRA to MRA, callee hangs up", b, a, "1001", false, 2},
		{"MRA to on-prem", a, c, "1003", true, 1},
		{"on-prem to MRA", c, b, "1002", false, 1},
	} {
		call, in := dialAnswered(t, ctx, tc.from, tc.to, tc.line)
		if string(call.RemoteSDP) != string(testSDP) {
			t.Fatalf("%s: answer SDP %q", tc.name, call.RemoteSDP)
		}
		waitCalls(t, env, 1)
		waitEdgeDialogs(t, env, tc.edgeLegs)
		hanger, other := call, in
		if !tc.callerHang {
			hanger, other = in, call
		}
		if err := hanger.Hangup(ctx); err != nil {
			t.Fatalf("%s: BYE: %v", tc.name, err)
		}
		select {
		case <-other.Done():
		case <-ctx.Done():
			t.Fatalf("%s: the other side never saw the BYE", tc.name)
		}
		waitCalls(t, env, 0)
		waitEdgeDialogs(t, env, 0)
	}
}

// Unknown line 404; a registered phone whose connection is gone 480,
// answered within a bounded time; a call without a token 401.
func TestCallRefusals(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	_ = b
	_, err := a.Dial(ctx, "9999", testSDP)
	var refused *bench.Call
	if !errors.Is(err, bench.ErrCallRefused) {
		t.Fatalf("unknown line: %v", err)
	}
	refused, _ = a.Dial(ctx, "9999", testSDP)
	if refused == nil || refused.Status != 404 {
		t.Fatalf("unknown line: status %v, want 404", refused)
	}
	// B's connection dies (the phone loses power); its binding remains.
	b.Close()
	start := time.Now()
	refused, err = a.Dial(ctx, "1002", testSDP)
	if !errors.Is(err, bench.ErrCallRefused) || refused.Status != 480 {
		t.Fatalf("callee whose connection is gone: %v %v, want 480", refused, err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("480 took %v", time.Since(start))
	}
	waitCalls(t, env, 0)
	waitEdgeDialogs(t, env, 0)
}

// ringingCallee registers phones A and B through the edge; B rings on
// every call (ringing is closed at the first) and never answers until
// the test ends. It returns A, to call B's line 1002.
func ringingCallee(t *testing.T, env *testenv.Env) (*bench.Phone, <-chan struct{}) {
	t.Helper()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	ringing := make(chan struct{})
	release := make(chan struct{})
	b.SetAnswerer(func(offer []byte) ([]byte, int) {
		close(ringing)
		<-release
		return testSDP, 0
	})
	t.Cleanup(func() { close(release) })
	return a, ringing
}

// CANCEL before the answer reaches the callee and leaves no dialog.
func TestCancelBeforeAnswer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	a, ringing := ringingCallee(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := a.Dial(ctx, "1002", testSDP)
		errc <- err
	}()
	select {
	case <-ringing:
	case <-time.After(10 * time.Second):
		t.Fatal("the INVITE never reached the callee")
	}
	waitCalls(t, env, 1)
	cancel() // the caller gives up: CANCEL
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a cancelled call was answered")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Dial did not return after CANCEL")
	}
	waitCalls(t, env, 0)
	waitEdgeDialogs(t, env, 0)
}

// Issue 4 (call routing): the caller's token expiring mid-call does not
// drop the established call (in-dialog requests carry no token and are
// routed by Record-Route), but a new call needs a valid token: the core
// refuses the INVITE with 401 invalid_token (RFC 6750 §3.1).
func TestTokenExpiryMidCall(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	env := testenv.Start(t, testenv.Options{CoreOptions: []core.Option{core.WithClock(clk.Now)}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	autoAnswer(b)
	call, in := dialAnswered(t, ctx, a, b, "1002")
	waitCalls(t, env, 1)

	// A's access token (1 h by default) expires on the core's clock.
	clk.Advance(2 * time.Hour)
	time.Sleep(300 * time.Millisecond) // give a wrong teardown the chance to happen
	select {
	case <-call.Done():
		t.Fatal("the caller's call ended when its token expired")
	case <-in.Done():
		t.Fatal("the callee's call ended when the caller's token expired")
	default:
	}
	if n := env.Core.Calls(); n != 1 {
		t.Fatalf("core routes %d calls after the token expired, want the established 1", n)
	}

	// A new call with the expired token: 401 from the core.
	refused, err := a.Dial(ctx, "1002", testSDP)
	if !errors.Is(err, bench.ErrCallRefused) || refused == nil || refused.Status != 401 {
		t.Fatalf("new INVITE with an expired token: %v %v, want 401", refused, err)
	}

	// The established call still ends normally, from the expired side.
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("BYE after the token expired: %v", err)
	}
	select {
	case <-in.Done():
	case <-ctx.Done():
		t.Fatal("the callee never saw the BYE")
	}
	waitCalls(t, env, 0)
	waitEdgeDialogs(t, env, 0)
}

// Issue 4 (call routing): in-dialog requests (re-INVITE with its ACK,
// UPDATE, INFO, OPTIONS) follow the route set through edge and core in
// both directions, between MRA phones and between an MRA and an
// on-premises phone, and reach the other side.
func TestInDialogRequests(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	c := registered(t, env, csf, false)
	for _, p := range []*bench.Phone{a, b, c} {
		autoAnswer(p)
	}
	methods := []sip.RequestMethod{sip.INVITE, sip.UPDATE, sip.INFO, sip.OPTIONS}
	for _, tc := range []struct {
		name     string
		from, to *bench.Phone
		line     string
	}{
		{"MRA to MRA", a, b, "1002"},
		{"MRA to on-prem", a, c, "1003"},
		{"on-prem to MRA", c, b, "1002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call, in := dialAnswered(t, ctx, tc.from, tc.to, tc.line)
			for _, side := range []struct {
				who      string
				from, to *bench.Call
			}{{"caller", call, in}, {"callee", in, call}} {
				for _, m := range methods {
					res, err := side.from.Request(ctx, m)
					if err != nil || res.StatusCode != 200 {
						t.Fatalf("%s's in-dialog %s: %v %v", side.who, m, res, err)
					}
					if (m == sip.INVITE || m == sip.UPDATE) && string(res.Body()) != string(testSDP) {
						t.Errorf("%s's %s: answer SDP %q", side.who, m, res.Body())
					}
				}
				if got := side.to.Received(); fmt.Sprint(got) != fmt.Sprint(methods) {
					t.Errorf("the other side of the %s received %v, want %v", side.who, got, methods)
				}
			}
			if n := env.Core.Calls(); n != 1 {
				t.Errorf("core routes %d calls after the in-dialog requests, want 1", n)
			}
			if err := call.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			waitCalls(t, env, 0)
			waitEdgeDialogs(t, env, 0)
		})
	}
}

// A phone whose connection closes after the edge sent it an INVITE (it
// loses power while ringing): the edge's transaction ends with the
// connection, and the caller hears 480 (the edge's 430 Flow Failed, RFC
// 5626 §5.3), not a 408 after Timer B's 32 seconds.
func TestCalleeConnectionClosesDuringInvite(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	w, _, done := callRawCallee(t, env)
	w.conn.Close() // no answer, ever
	select {
	case d := <-done:
		if !errors.Is(d.err, bench.ErrCallRefused) || d.call == nil || d.call.Status != 480 {
			status := 0
			if d.call != nil {
				status = d.call.Status
			}
			t.Fatalf("caller's Dial: %v (status %d), want refused with 480", d.err, status)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the caller never got an answer")
	}
	waitCalls(t, env, 0)
	waitEdgeDialogs(t, env, 0)
}
