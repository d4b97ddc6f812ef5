package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/store"
)

// Calls. The core routes INVITE and everything in a dialog between
// registered lines as a stateful proxy with Record-Route (RFC 3261 §16).
// It reaches a phone only over the connection the binding came in on: an
// on-premises phone's own TLS connection on the Phone OAuth port, or, for
// an MRA phone, the edge's mutual-TLS connection on the MRA port, with the
// binding's Path as Route so the edge can find the phone's flow
// (RFC 3327, RFC 5626). A new INVITE needs a valid bearer token of the
// caller's device (RFC 8898); requests inside an established dialog do not,
// so a token that expires mid-call does not drop the call.

// hop is where one side of a dialog is reached.
type hop struct {
	mra    bool     // through the MRA port (an edge)
	source string   // the connection's remote address
	path   []string // Route towards the phone (the binding's Path)
}

// dialog is a call the core routes; keyed by Call-ID.
type dialog struct {
	caller, callee hop
	created        time.Time
}

// callTable holds the calls in progress on this node.
type callTable struct {
	mu sync.Mutex
	m  map[string]*dialog
}

func (t *callTable) put(id string, d *dialog) {
	t.mu.Lock()
	t.m[id] = d
	t.mu.Unlock()
}

func (t *callTable) get(id string) (*dialog, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.m[id]
	return d, ok
}

func (t *callTable) drop(id string) {
	t.mu.Lock()
	delete(t.m, id)
	t.mu.Unlock()
}

// Calls is the number of dialogs this node is routing (tests, metrics).
func (s *Server) Calls() int {
	s.calls.mu.Lock()
	defer s.calls.mu.Unlock()
	return len(s.calls.m)
}

// maxCallAge bounds how long a dialog nobody ended stays in the table.
const maxCallAge = 12 * time.Hour

func (s *Server) expireCalls(now time.Time) {
	s.calls.mu.Lock()
	for id, d := range s.calls.m {
		if now.Sub(d.created) > maxCallAge {
			delete(s.calls.m, id)
		}
	}
	s.calls.mu.Unlock()
}

func hasToTag(req *sip.Request) bool {
	to := req.To()
	if to == nil {
		return false
	}
	_, ok := to.Params.Get("tag")
	return ok
}

// callID is req's Call-ID, "" when it has none (the guard refuses such a
// request before any handler; handlers still never dereference it blind).
func callID(req *sip.Request) string {
	if c := req.CallID(); c != nil {
		return c.Value()
	}
	return ""
}

// registrarFor is the listener a hop is reached through.
func (s *Server) registrarFor(h hop) *registrar {
	if h.mra {
		return s.mraReg
	}
	return s.phoneReg
}

// isSelf reports whether a Route URI names this core node (either SIP port).
func (s *Server) isSelf(u sip.Uri) bool {
	return strings.EqualFold(u.Host, s.cfg.AdvertisedHost) && (u.Port == s.phoneReg.port || u.Port == s.mraReg.port)
}

// recordRoute is this node's Record-Route on one of its listeners.
func (r *registrar) recordRoute() sip.Header {
	return sip.NewHeader("Record-Route", fmt.Sprintf("<sip:%s:%d;transport=tls;lr>", r.s.cfg.AdvertisedHost, r.port))
}

// onCall routes a request other than REGISTER and ACK.
func (r *registrar) onCall(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsInvite() && !hasToTag(req) {
		r.newCall(req, tx)
		return
	}
	r.inDialog(req, tx)
}

// callError is a refusal of a new call with its SIP status.
func (r *registrar) refuseCall(req *sip.Request, tx sip.ServerTransaction, err error) {
	var re *regError
	if !errors.As(err, &re) {
		r.log.Error("INVITE failed", "err", err)
		re = &regError{status: 503, reason: "Service Unavailable", err: err}
	}
	r.log.Info("INVITE refused", "status", re.status, "why", re.err.Error(), "src", req.Source())
	res := sip.NewResponseFromRequest(req, re.status, re.reason, nil)
	if re.status == 401 {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", r.challenge(re)))
	} else {
		res.AppendHeader(sip.NewHeader("Warning", fmt.Sprintf("399 %s %q", r.s.cfg.Node, re.err.Error())))
	}
	_ = tx.Respond(res)
}

// newCall handles an INVITE that starts a dialog.
func (r *registrar) newCall(req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	target, err := r.admitCall(ctx, req)
	cancel()
	if err != nil {
		r.refuseCall(req, tx, err)
		return
	}
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		sipx.Respond(tx, req, 483, "Too Many Hops", nil)
		return
	}
	var contact sip.Uri
	if err := sip.ParseUri(target.Contact, &contact); err != nil {
		r.refuseCall(req, tx, &regError{status: 480, reason: "Temporarily Unavailable", err: fmt.Errorf("binding contact %q: %w", target.Contact, err)})
		return
	}
	callee := hop{mra: target.MRA, source: target.Source, path: target.Path}
	out := r.s.registrarFor(callee)
	if !sipx.HasConnection(out.ua, callee.source) {
		r.refuseCall(req, tx, &regError{status: 480, reason: "Temporarily Unavailable", err: errors.New("the callee's connection is gone")})
		return
	}
	fwd.Recipient = contact
	fwd.RemoveHeader("Authorization") // the caller's token stops here
	sipx.PopRoute(fwd, r.s.isSelf)
	for i := len(callee.path) - 1; i >= 0; i-- {
		fwd.PrependHeader(sip.NewHeader("Route", callee.path[i]))
	}
	// Record-Route on both listeners when the call crosses them (RFC 5658).
	fwd.PrependHeader(r.recordRoute())
	if out != r {
		fwd.PrependHeader(out.recordRoute())
	}
	fwd.SetDestination(callee.source)
	fwd.SetTransport("TLS")
	id := callID(req)
	if id == "" { // the guard refuses such a request (RFC 3261 §8.2); never key a call on it
		sipx.Respond(tx, req, 400, "Missing Call-ID", nil)
		return
	}
	r.s.calls.put(id, &dialog{caller: hop{mra: r.mra, source: req.Source()}, callee: callee, created: r.s.now()})
	res := r.guard.Relay(context.Background(), out.client, tx, req, fwd, flowFailedIs480)
	if res == nil || !res.IsSuccess() {
		r.s.calls.drop(id)
	}
}

// flowFailedIs480: an edge that lost the phone's flow says 430 (RFC 5626
// §5.3); the caller hears 480 Temporarily Unavailable.
func flowFailedIs480(res *sip.Response) {
	if res.StatusCode == 430 {
		res.StatusCode, res.Reason = 480, "Temporarily Unavailable"
	}
}

// admitCall checks the caller's token and finds the callee's binding:
// unknown line 404, known but not registered 480.
func (r *registrar) admitCall(ctx context.Context, req *sip.Request) (store.Registration, error) {
	if !r.s.sipOAuthMode.Load() {
		return store.Registration{}, forbidden(ErrModeDisabled)
	}
	claims, err := r.authorize(ctx, req)
	if err != nil {
		return store.Registration{}, err
	}
	dev, err := r.s.st.GetDevice(ctx, claims.Device())
	if errors.Is(err, store.ErrNotFound) {
		return store.Registration{}, unauthorized("invalid_token", fmt.Errorf("token names unknown device %s", claims.Device()))
	} else if err != nil {
		return store.Registration{}, err
	}
	if err := policy.CheckDeviceOAuth(ctx, r.s.st, dev); err != nil {
		return store.Registration{}, forbidden(err)
	}
	if from := req.From(); from == nil || from.Address.User != dev.Line {
		return store.Registration{}, forbidden(fmt.Errorf("device %s may only call from its own line %s", dev.Name, dev.Line))
	}
	line := req.Recipient.User
	if _, err := r.s.st.DeviceByLine(ctx, line); errors.Is(err, store.ErrNotFound) {
		return store.Registration{}, &regError{status: 404, reason: "Not Found", err: fmt.Errorf("no line %q", line)}
	} else if err != nil {
		return store.Registration{}, err
	}
	aor := fmt.Sprintf("sip:%s@%s", line, strings.ToLower(r.s.cfg.SIPDomain))
	regs, err := r.s.loc.Lookup(ctx, aor)
	if err != nil {
		return store.Registration{}, err
	}
	if len(regs) == 0 {
		return store.Registration{}, &regError{status: 480, reason: "Temporarily Unavailable", err: fmt.Errorf("line %s is not registered", line)}
	}
	newest := regs[0]
	for _, g := range regs[1:] {
		if g.UpdatedAt.After(newest.UpdatedAt) {
			newest = g
		}
	}
	return newest, nil
}

// route finds where a request inside dialog d goes: to the other side
// from the one it came from.
func (r *registrar) route(d *dialog, req *sip.Request) hop {
	if r.mra == d.caller.mra && req.Source() == d.caller.source {
		return d.callee
	}
	return d.caller
}

// inDialog forwards a request of an established (or establishing) dialog.
func (r *registrar) inDialog(req *sip.Request, tx sip.ServerTransaction) {
	id := callID(req)
	d, ok := r.s.calls.get(id)
	if !ok || id == "" {
		sipx.Respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		sipx.Respond(tx, req, 483, "Too Many Hops", nil)
		return
	}
	for sipx.PopRoute(fwd, r.s.isSelf) {
	}
	next := r.route(d, req)
	out := r.s.registrarFor(next)
	if !sipx.HasConnection(out.ua, next.source) {
		sipx.Respond(tx, req, 480, "Temporarily Unavailable", nil)
		if req.Method == sip.BYE {
			r.s.calls.drop(id)
		}
		return
	}
	fwd.SetDestination(next.source)
	fwd.SetTransport("TLS")
	res := r.guard.Relay(context.Background(), out.client, tx, req, fwd, flowFailedIs480)
	if req.Method == sip.BYE && (res == nil || !res.IsProvisional()) {
		r.s.calls.drop(id)
	}
}

// onAck forwards an ACK for a 2xx end to end (RFC 3261 §16.11).
func (r *registrar) onAck(req *sip.Request, tx sip.ServerTransaction) {
	id := callID(req)
	d, ok := r.s.calls.get(id)
	if !ok || id == "" {
		return
	}
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		return
	}
	for sipx.PopRoute(fwd, r.s.isSelf) {
	}
	next := r.route(d, req)
	out := r.s.registrarFor(next)
	fwd.SetDestination(next.source)
	fwd.SetTransport("TLS")
	if err := sipx.SendStateless(out.client, fwd); err != nil {
		r.log.Debug("forwarding ACK", "err", err)
	}
}
