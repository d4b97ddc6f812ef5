package sipx

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// InFlight defaults.
const (
	DefaultInFlightLimit    = 32
	DefaultInFlightSettle   = 50 * time.Millisecond
	DefaultInFlightMaxStall = 250 * time.Millisecond
)

// InFlight bounds the requests each SIP connection has in progress, with
// back-pressure on the connection's reads, so a client pipelining
// thousands of requests on one connection holds at most Limit of them in
// the server (issue 9 item 10) while TCP flow control holds the rest in
// its own socket buffers.
//
// How it hooks into sipgo. sipgo reads each connection on one goroutine,
// parses a message and calls the transport layer's message handlers
// synchronously, in the order they were added; the transaction layer's
// handler (added by sipgo.NewUA) starts a goroutine per request that finds
// or creates the server transaction and calls the request handler. Attach
// adds a second message handler, so it runs on the connection's read
// goroutine right after each request was dispatched and before the next
// one is read: blocking there is blocking the connection's reads. Handler
// wraps every request handler and counts the requests inside it.
//
// The read goroutine, after dispatching request R:
//
//  1. waits until R's handler has started (a rendezvous: nanoseconds to
//     the scheduler's latency), or Settle has passed. A request that never
//     reaches a handler — a retransmission or ACK/CANCEL the transaction
//     layer absorbs, or one it answers 400 itself — costs its connection
//     one Settle of reading.
//  2. waits while the connection has Limit or more requests in handlers,
//     at most MaxStall, then reads on.
//
// What is guaranteed: at most one request per connection is between
// parsing and its handler at any time (bar ones slower than Settle to
// start, which are counted when they start), and never more than Limit
// requests of one connection run their handler at once: a request that
// starts while Limit are running — possible only after a MaxStall or a
// Settle expired — is answered 503 with Retry-After (an ACK is dropped)
// without running the handler. Responses are not counted and never wait
// for a handler slot.
//
// Why step 2 is bounded (no deadlock). Requests and responses share a
// connection's byte stream, so while the read goroutine waits no response
// on that connection is read either. A request in a handler can wait for
// a response on its own connection: the edge relays an INVITE from the
// core down a phone's flow and waits for the phone's answer on the same
// connection the phone's own requests arrive on (a phone calling its own
// line; the core does the same on 5090). If that phone had Limit requests
// in flight, each waiting for the core, which waits for the answer the
// blocked read would deliver, an unbounded wait would deadlock until every
// transaction timed out (32 s). With MaxStall the reader gives up waiting
// and reads on, so such a cycle drains at one message per MaxStall at
// worst, and what an abusive client gains from the escape is one cheap
// 503 per MaxStall, not handler work. The edge's own link to the core (and
// the core's MRA port) carry every phone's traffic and are Exempt.
//
// The zero InFlight counts nothing (Limit ≤ 0). Set the fields before
// Attach; an InFlight may serve one user agent.
type InFlight struct {
	// Limit is the most requests of one connection in handlers at once;
	// ≤ 0 disables the bound.
	Limit int
	// Settle is how long the read goroutine waits for a just-dispatched
	// request to reach its handler (default DefaultInFlightSettle).
	Settle time.Duration
	// MaxStall is the longest the read goroutine waits for a free slot
	// before reading on (default DefaultInFlightMaxStall).
	MaxStall time.Duration
	// Exempt reports connections (by remote "ip:port", as sip.Request's
	// Source) that are not bounded: links to the other tier.
	Exempt func(source string) bool

	mu    sync.Mutex
	conns map[string]*connFlight // sources with something in flight; removed when idle

	peak    atomic.Int64
	refused atomic.Uint64
}

// connFlight is one connection's accounting, guarded by InFlight.mu.
type connFlight struct {
	active  int          // requests inside a handler
	waiting *sip.Request // dispatched by the read goroutine, handler not yet started
	early   *sip.Request // handler started before the read goroutine registered it
	// changed is closed by the next change; made by the read goroutine
	// when it waits, nil while nobody waits (most changes wake no one).
	changed chan struct{}
}

func (c *connFlight) idle() bool { return c.active == 0 && c.waiting == nil && c.early == nil }

// broadcast wakes the read goroutine if it waits; called with
// InFlight.mu held.
func (c *connFlight) broadcast() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// Attach adds the read-side hook to ua's transport layer. Call it once,
// after sipgo.NewUA (which adds the transaction layer's handler first).
func (f *InFlight) Attach(ua *sipgo.UserAgent) {
	if f.Limit > 0 {
		ua.TransportLayer().OnMessage(f.dispatched)
	}
}

// Peak is the most requests of one connection seen in handlers at once.
func (f *InFlight) Peak() int { return int(f.peak.Load()) }

// Refused is how many requests were answered 503 (or, ACKs, dropped)
// because their connection already had Limit in handlers.
func (f *InFlight) Refused() uint64 { return f.refused.Load() }

// Active is the number of source's requests in handlers now.
func (f *InFlight) Active(source string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.conns[source]; c != nil {
		return c.active
	}
	return 0
}

func (f *InFlight) bounded(source string) bool {
	return f.Limit > 0 && (f.Exempt == nil || !f.Exempt(source))
}

// conn returns source's accounting, creating it; f.mu held.
func (f *InFlight) conn(source string) *connFlight {
	if f.conns == nil {
		f.conns = make(map[string]*connFlight)
	}
	c := f.conns[source]
	if c == nil {
		c = &connFlight{}
		f.conns[source] = c
	}
	return c
}

// forget drops source's accounting once nothing is in flight; f.mu held.
func (f *InFlight) forget(source string, c *connFlight) {
	if c.idle() && f.conns[source] == c {
		delete(f.conns, source)
	}
}

// wait releases f.mu until c changes or t fires; it reports false when t
// fired.
func (f *InFlight) wait(c *connFlight, t <-chan time.Time) bool {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	ch := c.changed
	f.mu.Unlock()
	defer f.mu.Lock()
	select {
	case <-ch:
		return true
	case <-t:
		return false
	}
}

// dispatched runs on a connection's read goroutine after each message was
// handed to the transaction layer: steps 1 and 2 of the type's comment.
func (f *InFlight) dispatched(msg sip.Message) {
	req, ok := msg.(*sip.Request)
	if !ok {
		return // responses are never held back
	}
	src := req.Source()
	if !f.bounded(src) {
		return
	}
	settle, stall := f.Settle, f.MaxStall
	if settle <= 0 {
		settle = DefaultInFlightSettle
	}
	if stall <= 0 {
		stall = DefaultInFlightMaxStall
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.conn(src)
	defer f.forget(src, c)
	if c.early == req {
		c.early = nil // its handler has already started (and counted it)
	} else {
		c.waiting = req
		t := startTimer(settle)
		for c.waiting == req {
			if !f.wait(c, t.C) {
				c.waiting = nil // absorbed by the transaction layer, or slow to start
			}
		}
		stopTimer(t)
	}
	if c.active < f.Limit {
		return
	}
	t := startTimer(stall)
	defer stopTimer(t)
	for c.active >= f.Limit {
		if !f.wait(c, t.C) {
			return // read on: see "Why step 2 is bounded"
		}
	}
}

// timers are the read goroutines' stopped timers, reused: one per request
// otherwise. Since Go 1.23 a stopped timer's channel holds no stale tick,
// so a reused one fires only for its new duration.
var timers sync.Pool

func startTimer(d time.Duration) *time.Timer {
	if t, ok := timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func stopTimer(t *time.Timer) {
	t.Stop()
	timers.Put(t)
}

// Handler wraps a request handler with the accounting: the request is
// counted while h runs; over Limit it gets 503 and h does not run.
func (f *InFlight) Handler(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		src := req.Source()
		if !f.bounded(src) {
			h(req, tx)
			return
		}
		if !f.enter(src, req) {
			f.refused.Add(1)
			if !req.IsAck() {
				res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
				res.AppendHeader(sip.NewHeader("Retry-After", "1"))
				_ = tx.Respond(res)
			}
			return
		}
		defer f.exit(src, req)
		h(req, tx)
	}
}

// enter counts req into its connection; false when Limit are already in.
func (f *InFlight) enter(src string, req *sip.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.conn(src)
	defer f.forget(src, c)
	claimed := c.waiting == req
	if claimed {
		c.waiting = nil
		defer c.broadcast()
	}
	if c.active >= f.Limit {
		return false
	}
	if !claimed {
		// The read goroutine has not registered req yet (it is one
		// statement behind the goroutine sipgo started), or gave up on it
		// after Settle; leave a note for the first case.
		c.early = req
	}
	c.active++
	if n := int64(c.active); n > f.peak.Load() {
		for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
		}
	}
	return true
}

func (f *InFlight) exit(src string, req *sip.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.conn(src)
	c.active--
	if c.early == req {
		// Finished before the read goroutine got to it (or it never will):
		// the read goroutine then waits one Settle; the note must not
		// outlive the request.
		c.early = nil
	}
	c.broadcast()
	f.forget(src, c)
}
