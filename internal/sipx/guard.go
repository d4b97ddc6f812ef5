package sipx

import (
	"errors"
	"log/slog"
	"runtime/debug"
	"sync/atomic"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/reqid"
)

// Guard is the door every SIP request handler of a tier goes through.
// It validates the request (ValidateRequest) before any handler sees it:
// a bad one is answered 400 with a reason phrase naming the header, or,
// an ACK (which has no response, RFC 3261 §17.2.1), dropped; both are
// counted (the tiers' metrics read Refused and Dropped) and logged at
// DEBUG, so a flood of malformed SIP does not flood the log. A request
// that passes runs its handler under a recover: sipgo runs each handler in
// a goroutine of its own, so a panic there would end the process; here it
// is logged with the request's first line and a stack, counted, and
// answered 500 when the transaction has no final response yet, and every
// other request goes on being served. Recovery is the safety net, not the
// fix: a panic counted here is a bug to remove.
//
// The counters are atomic; one Guard may serve several sipgo servers.
type Guard struct {
	log *slog.Logger

	refused atomic.Uint64 // requests answered 400 by validation
	dropped atomic.Uint64 // ACKs and responses dropped by validation
	panics  atomic.Uint64 // handler panics recovered

	// before, when set (tests only, through export_test.go), runs ahead
	// of every handler that a valid request reaches.
	before func(*sip.Request)
}

// NewGuard returns a Guard that logs to log.
func NewGuard(log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{log: log}
}

// Refused is the number of requests answered 400 for a bad header.
func (g *Guard) Refused() uint64 { return g.refused.Load() }

// Dropped is the number of ACKs and responses dropped for a bad header.
func (g *Guard) Dropped() uint64 { return g.dropped.Load() }

// Panics is the number of handler panics recovered.
func (g *Guard) Panics() uint64 { return g.panics.Load() }

// Wrap returns h behind the guard.
func (g *Guard) Wrap(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if err := ValidateRequest(req); err != nil {
			g.refuse(req, tx, err)
			return
		}
		t := &trackedTx{ServerTransaction: tx}
		defer g.recover(req, t)
		if g.before != nil {
			g.before(req)
		}
		h(req, t)
	}
}

func (g *Guard) refuse(req *sip.Request, tx sip.ServerTransaction, err error) {
	reason := "Bad Request"
	var he *HeaderError
	if errors.As(err, &he) {
		reason = he.Reason()
	}
	if req.IsAck() {
		g.dropped.Add(1)
		g.log.Debug("ACK dropped", "why", reason, "src", req.Source(), reqid.Attr, reqid.FromTx(tx))
		return
	}
	g.refused.Add(1)
	g.log.Debug("request refused", "status", 400, "why", reason, "method", string(req.Method), "src", req.Source(), reqid.Attr, reqid.FromTx(tx))
	if tx != nil {
		Respond(tx, req, 400, reason, nil)
	}
}

func (g *Guard) recover(req *sip.Request, tx *trackedTx) {
	v := recover()
	if v == nil {
		return
	}
	g.panics.Add(1)
	g.log.Error("SIP handler panicked; request abandoned, serving on",
		"panic", v, "req", req.StartLine(), "src", req.Source(), "stack", string(debug.Stack()), reqid.Attr, reqid.FromTx(tx))
	if !req.IsAck() && tx.ServerTransaction != nil && !tx.answered.Load() {
		Respond(tx, req, 500, "Server Internal Error", nil)
	}
}

// trackedTx remembers whether a final response went out, so a recovered
// panic answers 500 only to a request nobody answered.
type trackedTx struct {
	sip.ServerTransaction
	answered atomic.Bool
}

// Unwrap is the transaction t tracks (reqid.FromTx).
func (t *trackedTx) Unwrap() sip.ServerTransaction { return t.ServerTransaction }

func (t *trackedTx) Respond(res *sip.Response) error {
	if res.StatusCode >= 200 {
		t.answered.Store(true)
	}
	return t.ServerTransaction.Respond(res)
}

// CheckResponse validates a response that came back from the next hop
// (ValidateResponse) and that it answers fwd: same Call-ID and CSeq. A
// bad one is counted and logged, and the caller must drop it.
func (g *Guard) CheckResponse(fwd *sip.Request, res *sip.Response) error {
	err := ValidateResponse(res)
	if err == nil {
		err = answers(fwd, res)
	}
	if err != nil {
		g.dropped.Add(1)
		g.log.Warn("response dropped", "why", err.Error(), "status", res.StatusCode, "src", res.Source())
	}
	return err
}

// answers reports whether res carries the Call-ID and CSeq of fwd: a
// response a proxy relays belongs to the request it forwarded (RFC 3261
// §8.1.3.3, §17.1.3).
func answers(fwd *sip.Request, res *sip.Response) error {
	if fc, rc := fwd.CallID(), res.CallID(); fc == nil || rc == nil || fc.Value() != rc.Value() {
		return &HeaderError{Header: "Call-ID", Problem: Malformed, Detail: "does not match the request"}
	}
	fs, rs := fwd.CSeq(), res.CSeq()
	if fs == nil || rs == nil || fs.SeqNo != rs.SeqNo || fs.MethodName != rs.MethodName {
		return &HeaderError{Header: "CSeq", Problem: Malformed, Detail: "does not match the request"}
	}
	return nil
}
