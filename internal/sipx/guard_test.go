package sipx

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// wire is a raw SIP connection to a server under test.
type wire struct {
	t    *testing.T
	conn net.Conn
	ps   *sip.ParserStream
	msgs chan sip.Message
}

func dialWire(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	w := &wire{t: t, conn: c, ps: NewParser().NewSIPStream(), msgs: make(chan sip.Message, 16)}
	done := make(chan struct{})
	go func() { // owned: ends when the connection closes at cleanup
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if err := w.ps.ParseSIPStream(buf[:n], func(m sip.Message) { w.msgs <- m }); err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
				return
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return w
}

func (w *wire) send(raw string) {
	w.t.Helper()
	if _, err := w.conn.Write([]byte(raw)); err != nil {
		w.t.Fatal(err)
	}
}

// response waits for the next response, or fails the test after 10s.
func (w *wire) response() *sip.Response {
	w.t.Helper()
	select {
	case m := <-w.msgs:
		res, ok := m.(*sip.Response)
		if !ok {
			w.t.Fatalf("got %T, want a response", m)
		}
		return res
	case <-time.After(10 * time.Second):
		w.t.Fatal("no response within 10s")
	}
	return nil
}

// quiet reports whether nothing arrives within d (for an ACK, which has no
// response; a bounded wait is the only way to observe silence).
func (w *wire) quiet(d time.Duration) bool {
	select {
	case <-w.msgs:
		return false
	case <-time.After(d):
		return true
	}
}

var seq atomic.Int64

func registerMsg(extra ...string) string {
	n := itoa(int(seq.Add(1)))
	lines := []string{
		"REGISTER sip:edgeway.test SIP/2.0",
		"Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-" + n,
		"Max-Forwards: 70",
		"To: <sip:1001@edgeway.test>",
		"From: <sip:1001@edgeway.test>;tag=" + n,
		"Call-ID: guard-" + n,
		"CSeq: 1 REGISTER",
	}
	for _, e := range extra {
		name, _, _ := strings.Cut(e, ":")
		if strings.HasPrefix(e, "-") { // "-Call-ID" removes the header
			lines = edit(lines, e[1:])
			continue
		}
		if i := indexHeader(lines, name); i >= 0 && !strings.HasPrefix(name, "X-") {
			lines[i] = e
			continue
		}
		lines = append(lines, e)
	}
	return message(lines, "")
}

func indexHeader(lines []string, name string) int {
	for i, l := range lines {
		if strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
			return i
		}
	}
	return -1
}

// serveGuarded runs a sipgo server on loopback TCP whose every handler
// goes through g; REGISTER and ACK are handled by h.
func serveGuarded(t *testing.T, g *Guard, h sipgo.RequestHandler) string {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentParser(NewParser()))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(g.Wrap(h))
	srv.OnAck(g.Wrap(h))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTCP(ln) }()
	t.Cleanup(func() { ln.Close(); ua.Close(); <-done })
	return ln.Addr().String()
}

// A handler's panic costs one request: it is recovered, counted, answered
// 500 when nothing answered it yet, and the same server (and connection)
// goes on answering.
func TestGuardRecoversPanic(t *testing.T) {
	g := NewGuard(nil)
	g.SetBefore(func(req *sip.Request) {
		if req.GetHeader("X-Panic-Before") != nil {
			panic("injected before the handler")
		}
	})
	var handled atomic.Int64
	addr := serveGuarded(t, g, func(req *sip.Request, tx sip.ServerTransaction) {
		handled.Add(1)
		if req.IsAck() {
			panic("injected in an ACK handler")
		}
		Respond(tx, req, 200, "OK", nil)
		if req.GetHeader("X-Panic-After") != nil {
			panic("injected after answering")
		}
	})
	w := dialWire(t, addr)

	w.send(registerMsg("X-Panic-Before: 1"))
	if res := w.response(); res.StatusCode != 500 {
		t.Fatalf("panicking handler answered %d, want 500", res.StatusCode)
	}
	w.send(registerMsg())
	if res := w.response(); res.StatusCode != 200 {
		t.Fatalf("after a panic: %d, want 200", res.StatusCode)
	}
	w.send(registerMsg("X-Panic-After: 1"))
	if res := w.response(); res.StatusCode != 200 {
		t.Fatalf("answered-then-panicked: %d, want the 200 it sent", res.StatusCode)
	}
	ack := strings.Replace(strings.Replace(registerMsg(), "REGISTER sip:", "ACK sip:", 1), "1 REGISTER", "1 ACK", 1)
	w.send(ack)
	w.send(registerMsg())
	if res := w.response(); res.StatusCode != 200 {
		t.Fatalf("after a panicking ACK: got %d, want 200 (an ACK is never answered)", res.StatusCode)
	}
	// sipgo runs each request's handler in a goroutine of its own, so the
	// REGISTER after the ACK may be answered before the ACK's handler has
	// panicked: wait for the count (bounded), then require it exact.
	deadline := time.Now().Add(5 * time.Second)
	for g.Panics() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling a condition, bounded by deadline
	}
	if n := g.Panics(); n != 3 {
		t.Fatalf("Panics = %d, want 3", n)
	}
	if g.Refused() != 0 || g.Dropped() != 0 {
		t.Fatalf("Refused %d Dropped %d, want 0", g.Refused(), g.Dropped())
	}
}

// Validation runs before any handler: a bad request is answered 400 with
// the header in the reason, a bad ACK is dropped, and neither reaches h.
func TestGuardRefusesBeforeHandler(t *testing.T) {
	g := NewGuard(nil)
	var handled atomic.Int64
	addr := serveGuarded(t, g, func(req *sip.Request, tx sip.ServerTransaction) {
		handled.Add(1)
		if !req.IsAck() {
			Respond(tx, req, 200, "OK", nil)
		}
	})
	w := dialWire(t, addr)
	for _, tc := range []struct {
		extra  []string
		reason string
	}{
		{[]string{"-Call-ID"}, "Missing Call-ID"},
		{[]string{"-Max-Forwards"}, "Missing Max-Forwards"},
		{[]string{"CSeq: 1 INVITE"}, "Bad CSeq: method does not match request line"},
		// sipgo's transaction layer needs a readable CSeq (and Via) for
		// the transaction key; it answers a bare 400 before the guard.
		{[]string{"CSeq: one REGISTER"}, "Bad Request"},
		{[]string{"To: <sip:1001@edgeway.test>", "X-Dup: 1"}, ""}, // control: valid
	} {
		w.send(registerMsg(tc.extra...))
		res := w.response()
		if tc.reason == "" {
			if res.StatusCode != 200 {
				t.Fatalf("valid REGISTER: %d %s", res.StatusCode, res.Reason)
			}
			continue
		}
		if res.StatusCode != 400 || res.Reason != tc.reason {
			t.Fatalf("%v: %d %q, want 400 %q", tc.extra, res.StatusCode, res.Reason, tc.reason)
		}
	}
	before := handled.Load()
	ack := strings.Replace(strings.Replace(registerMsg("-Call-ID"), "REGISTER sip:", "ACK sip:", 1), "1 REGISTER", "1 ACK", 1)
	w.send(ack)
	if !w.quiet(300 * time.Millisecond) {
		t.Fatal("a bad ACK was answered")
	}
	if handled.Load() != before || handled.Load() != 1 {
		t.Fatalf("handler ran %d times, want only for the one valid request", handled.Load())
	}
	if g.Refused() != 3 || g.Dropped() != 1 || g.Panics() != 0 {
		t.Fatalf("Refused %d Dropped %d Panics %d, want 3 1 0", g.Refused(), g.Dropped(), g.Panics())
	}
}
