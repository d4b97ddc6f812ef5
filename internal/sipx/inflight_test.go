package sipx

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// inflightServer serves REGISTER over plain TCP with f in front of h (the
// read path is the one TLS uses: sipgo's TransportTCP), and returns the
// listener's address.
func inflightServer(t *testing.T, f *InFlight, h sipgo.RequestHandler) string {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slog.New(slog.DiscardHandler))))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	f.Attach(ua)
	srv.OnRegister(f.Handler(h))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTCP(ln) }()
	t.Cleanup(func() { ln.Close(); ua.Close(); <-done })
	return ln.Addr().String()
}

// pipelinedRegister is REGISTER number i of a pipeline, each its own
// transaction (branch) unless branch is given.
func pipelinedRegister(i int, branch string) string {
	if branch == "" {
		branch = fmt.Sprintf("z9hG4bKpipe%d", i)
	}
	return fmt.Sprintf("REGISTER sip:edgeway.test SIP/2.0\r\n"+
		"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=%s\r\n"+
		"Max-Forwards: 70\r\nTo: <sip:1001@edgeway.test>\r\nFrom: <sip:1001@edgeway.test>;tag=p\r\n"+
		"Call-ID: pipe-%d\r\nCSeq: %d REGISTER\r\nContent-Length: 0\r\n\r\n", branch, i, i+1)
}

// statusCodes reads n responses' status codes from conn.
func statusCodes(t *testing.T, conn net.Conn, n int, out chan<- int) {
	r := bufio.NewReader(conn)
	for n > 0 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Errorf("reading responses (%d left): %v", n, err)
			close(out)
			return
		}
		if code, ok := strings.CutPrefix(line, "SIP/2.0 "); ok {
			var c int
			fmt.Sscanf(code, "%d", &c)
			out <- c
			n--
		}
	}
	close(out)
}

// Issue 9 item 10: 200 REGISTERs pipelined on one connection with the limit
// at 4 never have more than 4 in the handler at once (counted by the
// handler itself, not by InFlight), and every one is answered 200. Without
// the bound the handler sees all 200 at once.
func TestInFlightBoundsPipelinedRequests(t *testing.T) {
	const limit, total = 4, 200
	// Settle 1s: no request here is absorbed, so it only matters if a
	// handler finishes before the read goroutine registered it (it then
	// waits one Settle); MaxStall 1m: no escape, every request gets 200.
	f := &InFlight{Limit: limit, Settle: time.Second, MaxStall: time.Minute}
	var cur, peak atomic.Int64
	entered := make(chan struct{}, total)
	gate := make(chan struct{})
	addr := inflightServer(t, f, func(req *sip.Request, tx sip.ServerTransaction) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		entered <- struct{}{}
		<-gate
		cur.Add(-1)
		Respond(tx, req, 200, "OK", nil)
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		var b strings.Builder
		for i := range total {
			b.WriteString(pipelinedRegister(i, ""))
		}
		_, _ = conn.Write([]byte(b.String())) // one write: all 200 pipelined
	}()
	codes := make(chan int, total)
	go statusCodes(t, conn, total, codes)

	// Let requests pile up to the limit before releasing one, so an
	// unbounded server would show more than limit inside.
	for released, inside := 0, 0; released < total; {
		if inside < min(limit, total-released) {
			select {
			case <-entered:
				inside++
			case <-time.After(30 * time.Second):
				t.Fatalf("stuck: %d released, %d inside", released, inside)
			}
			continue
		}
		gate <- struct{}{}
		inside--
		released++
	}
	ok := 0
	for c := range codes {
		if c != 200 {
			t.Errorf("status %d, want 200", c)
		}
		ok++
	}
	if ok != total {
		t.Fatalf("%d answers, want %d", ok, total)
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d requests in the handler at once, limit %d", p, limit)
	}
	if p := f.Peak(); p > limit || p < 1 {
		t.Fatalf("InFlight.Peak = %d, limit %d", p, limit)
	}
	if f.Refused() != 0 {
		t.Fatalf("%d refused with 503; back-pressure should have held them", f.Refused())
	}
	waitIdle(t, f)
}

// waitIdle waits (bounded) until f holds no state: nothing leaks per
// connection.
func waitIdle(t *testing.T, f *InFlight) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.conns)
		f.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.mu.Lock()
			for s, c := range f.conns {
				t.Logf("%s: active %d waiting %v early %v", s, c.active, c.waiting != nil, c.early != nil)
			}
			f.mu.Unlock()
			t.Fatalf("%d connections still accounted after every request finished", n)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded by deadline
	}
}

// The wait for a slot is bounded (MaxStall): the connection is read on, so
// responses behind the stall are not stuck, and a request over the limit
// is answered 503 without running the handler.
func TestInFlightStallEscapeRefuses(t *testing.T) {
	f := &InFlight{Limit: 1, MaxStall: 10 * time.Millisecond, Settle: time.Second}
	var cur, peak atomic.Int64
	gate := make(chan struct{})
	addr := inflightServer(t, f, func(req *sip.Request, tx sip.ServerTransaction) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-gate
		cur.Add(-1)
		Respond(tx, req, 200, "OK", nil)
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(pipelinedRegister(0, "") + pipelinedRegister(1, "") + pipelinedRegister(2, ""))); err != nil {
		t.Fatal(err)
	}
	codes := make(chan int, 3)
	go statusCodes(t, conn, 3, codes)
	for range 2 { // the two over the limit, while the first holds its slot
		select {
		case c := <-codes:
			if c != 503 {
				t.Fatalf("status %d while the first request holds the only slot, want 503", c)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no 503: the read waited for a slot without bound")
		}
	}
	close(gate)
	if c := <-codes; c != 200 {
		t.Fatalf("first request: %d, want 200", c)
	}
	if peak.Load() != 1 || f.Refused() != 2 {
		t.Fatalf("peak in handler %d (want 1), refused %d (want 2)", peak.Load(), f.Refused())
	}
	waitIdle(t, f)
}

// A request the transaction layer absorbs (here a retransmission of a
// REGISTER whose transaction is still in the handler) never reaches a
// handler: it costs one Settle of reading and leaves nothing behind.
func TestInFlightAbsorbedRequestDoesNotLeak(t *testing.T) {
	f := &InFlight{Limit: 2, Settle: 20 * time.Millisecond, MaxStall: time.Minute}
	var calls atomic.Int64
	gate := make(chan struct{})
	entered := make(chan struct{}, 4)
	addr := inflightServer(t, f, func(req *sip.Request, tx sip.ServerTransaction) {
		calls.Add(1)
		entered <- struct{}{}
		<-gate
		Respond(tx, req, 200, "OK", nil)
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	first := pipelinedRegister(0, "z9hG4bKsame")
	if _, err := conn.Write([]byte(first)); err != nil {
		t.Fatal(err)
	}
	<-entered
	// The retransmission, then a new request: the new one must still get
	// through (the absorbed one's slot is given up after Settle).
	if _, err := conn.Write([]byte(first + pipelinedRegister(1, ""))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the request after an absorbed retransmission never reached its handler")
	}
	close(gate)
	codes := make(chan int, 2)
	go statusCodes(t, conn, 2, codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("status %d, want 200", c)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2 (the retransmission is absorbed)", calls.Load())
	}
	waitIdle(t, f)
}

// The handler can start before the read goroutine registers its request
// (sipgo starts it first), and finish before too: neither order leaks or
// double-counts.
func TestInFlightHandlerBeforeHook(t *testing.T) {
	f := &InFlight{Limit: 1, Settle: time.Millisecond, MaxStall: time.Minute}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "x"})
	req.SetSource("192.0.2.1:5000")

	// Entered, then the hook: no wait, nothing counted twice.
	if !f.enter(req.Source(), req) {
		t.Fatal("enter refused with nothing in flight")
	}
	done := make(chan struct{})
	go func() { f.dispatched(req); close(done) }()
	// The hook waits for the slot (limit 1, the handler holds it) ...
	select {
	case <-done:
		t.Fatal("the hook read on while the only slot is taken")
	case <-time.After(20 * time.Millisecond):
	}
	f.exit(req.Source(), req) // ... until the handler finishes.
	<-done
	waitIdle(t, f)

	// Entered and finished before the hook: the hook waits one Settle.
	req2 := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "x"})
	req2.SetSource("192.0.2.1:5000")
	if !f.enter(req2.Source(), req2) {
		t.Fatal("enter refused")
	}
	f.exit(req2.Source(), req2)
	f.dispatched(req2)
	waitIdle(t, f)
	if f.Peak() != 1 {
		t.Fatalf("peak %d, want 1", f.Peak())
	}

	// Exempt sources and responses are never held.
	f.Exempt = func(src string) bool { return src == "192.0.2.9:5091" }
	core := sip.NewRequest(sip.INVITE, sip.Uri{Host: "x"})
	core.SetSource("192.0.2.9:5091")
	ran := false
	f.Handler(func(*sip.Request, sip.ServerTransaction) { ran = true })(core, nil)
	f.dispatched(core)
	if !ran {
		t.Fatal("exempt request not handled")
	}
	waitIdle(t, f)
}
