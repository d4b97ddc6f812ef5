package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/core/registrar"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/reqid"
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

// Config is what the proxy needs of the core's configuration.
type Config struct {
	SIPDomain      string // the domain of every line's AOR
	AdvertisedHost string // this node's name in Route URIs
	// Node is this node's name, as the registrar records it on bindings
	// (store.Registration.Node).
	Node string
}

// Edges finds, on this node, a live MRA connection of the edge a binding's
// Path names (core/admission Gate.ConnOf, S-12 re-checked).
type Edges interface {
	ConnOf(ctx context.Context, edge, entry string) (string, error)
}

// Store is what call set-up reads: the caller's device and its profile,
// and the callee's line.
type Store interface {
	GetDevice(ctx context.Context, name string) (store.Device, error)
	GetSecurityProfile(ctx context.Context, name string) (store.SecurityProfile, error)
	DeviceByLine(ctx context.Context, line string) (store.Device, error)
}

// Deps are the proxy's collaborators.
type Deps struct {
	// Mode reports the cluster SIP OAuth mode as this node's SIP service
	// last read it (S-13, S-14).
	Mode     func() bool
	Tokens   registrar.Tokens
	Store    Store
	Location *registrar.Location
	// Edges reaches MRA phones whose binding came through another node
	// of the cluster; nil: only bindings made on this node are reached.
	Edges Edges
	Now   func() time.Time
	// Metrics counts refused calls; nil counts nothing.
	Metrics *metrics.Core
	// Draining reports whether the node drains (proxy/drain.go); nil:
	// never.
	Draining func() bool
}

// Proxy routes calls between the lines registered on this node, across
// its two SIP ports.
type Proxy struct {
	cfg        Config
	d          Deps
	phone, mra *registrar.Port
	calls      callTable
}

// New builds the proxy between the Phone OAuth port and the MRA port.
func New(cfg Config, d Deps, phone, mra *registrar.Port) *Proxy {
	return &Proxy{cfg: cfg, d: d, phone: phone, mra: mra, calls: callTable{m: make(map[string]*dialog)}}
}

// Handlers are the proxy's handlers on port p: ACK, OPTIONS and every
// request other than REGISTER.
func (x *Proxy) Handlers(p *registrar.Port) (ack, options, call sipgo.RequestHandler) {
	return func(req *sip.Request, tx sip.ServerTransaction) { x.onAck(p, req, tx) },
		func(req *sip.Request, tx sip.ServerTransaction) { x.onOptions(p, req, tx) },
		func(req *sip.Request, tx sip.ServerTransaction) { x.onCall(p, req, tx) }
}

// Calls is the number of dialogs this node is routing (tests, metrics).
func (x *Proxy) Calls() int {
	x.calls.mu.Lock()
	defer x.calls.mu.Unlock()
	return len(x.calls.m)
}

// maxCallAge bounds how long a dialog nobody ended stays in the table.
const maxCallAge = 12 * time.Hour

// ExpireCalls forgets dialogs older than maxCallAge at now.
func (x *Proxy) ExpireCalls(now time.Time) {
	x.calls.mu.Lock()
	for id, d := range x.calls.m {
		if now.Sub(d.created) > maxCallAge {
			delete(x.calls.m, id)
		}
	}
	x.calls.mu.Unlock()
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

// portFor is the listener a hop is reached through.
func (x *Proxy) portFor(h hop) *registrar.Port {
	if h.mra {
		return x.mra
	}
	return x.phone
}

// isSelf reports whether a Route URI names this core node (either SIP port).
func (x *Proxy) isSelf(u sip.Uri) bool {
	return strings.EqualFold(u.Host, x.cfg.AdvertisedHost) && (u.Port == x.phone.Number() || u.Port == x.mra.Number())
}

// onOptions answers an OPTIONS ping to this node and routes any other.
func (x *Proxy) onOptions(p *registrar.Port, req *sip.Request, tx sip.ServerTransaction) {
	if req.Route() == nil && !hasToTag(req) && req.Recipient.User == "" {
		if x.draining() {
			refuseDraining(req, tx) // edges take this node out
			return
		}
		sipx.Respond(tx, req, 200, "OK", nil) // a ping to us
		return
	}
	x.onCall(p, req, tx)
}

// onCall routes a request other than REGISTER and ACK.
func (x *Proxy) onCall(p *registrar.Port, req *sip.Request, tx sip.ServerTransaction) {
	if req.IsInvite() && !hasToTag(req) {
		if x.draining() {
			p.Log().Debug("INVITE refused: the node is draining", "src", req.Source())
			refuseDraining(req, tx)
			return
		}
		x.newCall(p, req, tx)
		return
	}
	x.inDialog(p, req, tx)
}

// refuseCall answers a refused new call with its SIP status.
func (x *Proxy) refuseCall(p *registrar.Port, req *sip.Request, tx sip.ServerTransaction, err error) {
	var re *registrar.Refusal
	if !errors.As(err, &re) {
		p.Log().Error("INVITE failed", "err", err, reqid.Attr, reqid.FromTx(tx))
		re = &registrar.Refusal{Status: 503, Reason: "Service Unavailable", Err: err}
	}
	x.d.Metrics.InviteRefusals(p.MRA()).Inc(re.Status)
	p.Log().Debug("INVITE refused", "status", re.Status, "why", re.Err.Error(), "src", req.Source(), reqid.Attr, reqid.FromTx(tx))
	_ = tx.Respond(p.Refusal(req, re))
}

// newCall handles an INVITE that starts a dialog.
func (x *Proxy) newCall(p *registrar.Port, req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	target, err := x.admitCall(ctx, req, p.MRA())
	var source string
	if err == nil {
		source, err = x.reach(ctx, target)
	}
	cancel()
	if err != nil {
		x.refuseCall(p, req, tx, err)
		return
	}
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		sipx.Respond(tx, req, 483, "Too Many Hops", nil)
		return
	}
	var contact sip.Uri
	if err := sip.ParseUri(target.Contact, &contact); err != nil {
		x.refuseCall(p, req, tx, &registrar.Refusal{Status: 480, Reason: "Temporarily Unavailable", Err: fmt.Errorf("binding contact %q: %w", target.Contact, err)})
		return
	}
	callee := hop{mra: target.MRA, source: source, path: target.Path}
	out := x.portFor(callee)
	fwd.Recipient = contact
	fwd.RemoveHeader("Authorization") // the caller's token stops here
	reqid.StripSIP(fwd)               // and so does its request ID
	sipx.PopRoute(fwd, x.isSelf)
	for i := len(callee.path) - 1; i >= 0; i-- {
		fwd.PrependHeader(sip.NewHeader("Route", callee.path[i]))
	}
	// Record-Route on both listeners when the call crosses them (RFC 5658).
	fwd.PrependHeader(p.RecordRoute())
	if out != p {
		fwd.PrependHeader(out.RecordRoute())
	}
	fwd.SetDestination(callee.source)
	fwd.SetTransport("TLS")
	id := callID(req)
	if id == "" { // the guard refuses such a request (RFC 3261 §8.2); never key a call on it
		sipx.Respond(tx, req, 400, "Missing Call-ID", nil)
		return
	}
	x.calls.put(id, &dialog{caller: hop{mra: p.MRA(), source: req.Source()}, callee: callee, created: x.d.Now()})
	res := p.Guard().Relay(context.Background(), out.Client(), tx, req, fwd, flowFailedIs480)
	if res == nil || !res.IsSuccess() {
		x.calls.drop(id)
	}
}

// errCalleeGone is the 480 of a callee whose binding no connection on
// this node reaches.
var errCalleeGone = errors.New("the callee's connection is gone")

// reach is the connection on this node that reaches b's phone: the one its
// REGISTER came in on, when that was on this node and is still open;
// otherwise, for an MRA phone, a live MRA connection of the edge its Path
// names (the edge's SIP address, as its Via says on every connection it
// keeps to every node, core/admission Gate.ConnOf), so a binding made
// through one node of a cluster routes a call placed through another
// (issue 11). The phone's flow token in the Path lets that edge find the
// phone (RFC 5626). An on-premises phone is reached only through the node
// it registered with. Unreachable: 480.
func (x *Proxy) reach(ctx context.Context, b store.Registration) (string, error) {
	out := x.phone
	if b.MRA {
		out = x.mra
	}
	if (b.Node == "" || b.Node == x.cfg.Node) && out.HasConnection(b.Source) {
		return b.Source, nil
	}
	gone := func(err error) error {
		return &registrar.Refusal{Status: 480, Reason: "Temporarily Unavailable", Err: err}
	}
	if !b.MRA || len(b.Path) == 0 || x.d.Edges == nil {
		return "", gone(errCalleeGone)
	}
	edge, ok := pathEdge(b.Path[0])
	if !ok {
		return "", gone(fmt.Errorf("%w: its Path %q names no edge", errCalleeGone, b.Path[0]))
	}
	src, err := x.d.Edges.ConnOf(ctx, edge, b.Edge)
	if err != nil {
		if admission.Refused(err) || errors.Is(err, admission.ErrNoEdgeConnection) {
			return "", gone(fmt.Errorf("%w: %w", errCalleeGone, err))
		}
		return "", err
	}
	if !x.mra.HasConnection(src) {
		return "", gone(errCalleeGone)
	}
	return src, nil
}

// pathEdge is the SIP address (admission.EdgeAddr) of the edge a Path
// entry names: <sip:flow@host:port;…>.
func pathEdge(path string) (string, bool) {
	v := strings.TrimSpace(path)
	if strings.HasPrefix(v, "<") {
		end := strings.IndexByte(v, '>')
		if end < 0 {
			return "", false
		}
		v = v[1:end]
	}
	var u sip.Uri
	if err := sip.ParseUri(v, &u); err != nil || u.Host == "" {
		return "", false
	}
	return admission.EdgeAddr(u.Host, u.Port), true
}

// flowFailedIs480: an edge that lost the phone's flow says 430 (RFC 5626
// §5.3); the caller hears 480 Temporarily Unavailable.
func flowFailedIs480(res *sip.Response) {
	if res.StatusCode == 430 {
		res.StatusCode, res.Reason = 480, "Temporarily Unavailable"
	}
}

// admitCall checks the caller's token and finds the callee's binding:
// unknown line 404, known but not registered 480. mra: req came in on the
// MRA port.
func (x *Proxy) admitCall(ctx context.Context, req *sip.Request, mra bool) (store.Registration, error) {
	if !x.d.Mode() {
		return store.Registration{}, registrar.Forbidden(policy.ErrModeDisabled)
	}
	claims, err := registrar.Authorize(ctx, x.d.Tokens, req)
	if err != nil {
		return store.Registration{}, err
	}
	dev, err := x.d.Store.GetDevice(ctx, claims.Device())
	if errors.Is(err, store.ErrNotFound) {
		return store.Registration{}, registrar.Unauthorized("invalid_token", fmt.Errorf("token names unknown device %s", claims.Device()))
	} else if err != nil {
		return store.Registration{}, err
	}
	if err := policy.CheckDeviceOAuth(ctx, x.d.Store, dev); err != nil {
		return store.Registration{}, registrar.Forbidden(err)
	}
	// RFC 8705 §3: a bound token calls only over its certificate's
	// connection, as the edge reports it (core/registrar/bound.go).
	if err := registrar.CheckBinding(ctx, x.d.Store, claims, dev, req, mra); err != nil {
		return store.Registration{}, err
	}
	if from := req.From(); from == nil || from.Address.User != dev.Line {
		return store.Registration{}, registrar.Forbidden(fmt.Errorf("device %s may only call from its own line %s", dev.Name, dev.Line))
	}
	line := req.Recipient.User
	if _, err := x.d.Store.DeviceByLine(ctx, line); errors.Is(err, store.ErrNotFound) {
		return store.Registration{}, &registrar.Refusal{Status: 404, Reason: "Not Found", Err: fmt.Errorf("no line %q", line)}
	} else if err != nil {
		return store.Registration{}, err
	}
	aor := fmt.Sprintf("sip:%s@%s", line, strings.ToLower(x.cfg.SIPDomain))
	regs, err := x.d.Location.Lookup(ctx, aor)
	if err != nil {
		return store.Registration{}, err
	}
	if len(regs) == 0 {
		return store.Registration{}, &registrar.Refusal{Status: 480, Reason: "Temporarily Unavailable", Err: fmt.Errorf("line %s is not registered", line)}
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
func route(p *registrar.Port, d *dialog, req *sip.Request) hop {
	if p.MRA() == d.caller.mra && req.Source() == d.caller.source {
		return d.callee
	}
	return d.caller
}

// inDialog forwards a request of an established (or establishing) dialog.
func (x *Proxy) inDialog(p *registrar.Port, req *sip.Request, tx sip.ServerTransaction) {
	id := callID(req)
	d, ok := x.calls.get(id)
	if !ok || id == "" {
		sipx.Respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		sipx.Respond(tx, req, 483, "Too Many Hops", nil)
		return
	}
	for sipx.PopRoute(fwd, x.isSelf) {
	}
	reqid.StripSIP(fwd) // the request ID is logged here, not sent on
	next := route(p, d, req)
	out := x.portFor(next)
	if !out.HasConnection(next.source) {
		sipx.Respond(tx, req, 480, "Temporarily Unavailable", nil)
		if req.Method == sip.BYE {
			x.calls.drop(id)
		}
		return
	}
	fwd.SetDestination(next.source)
	fwd.SetTransport("TLS")
	res := p.Guard().Relay(context.Background(), out.Client(), tx, req, fwd, flowFailedIs480)
	if req.Method == sip.BYE && (res == nil || !res.IsProvisional()) {
		x.calls.drop(id)
	}
}

// onAck forwards an ACK for a 2xx end to end (RFC 3261 §16.11).
func (x *Proxy) onAck(p *registrar.Port, req *sip.Request, tx sip.ServerTransaction) {
	id := callID(req)
	d, ok := x.calls.get(id)
	if !ok || id == "" {
		return
	}
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		return
	}
	for sipx.PopRoute(fwd, x.isSelf) {
	}
	reqid.StripSIP(fwd)
	next := route(p, d, req)
	out := x.portFor(next)
	fwd.SetDestination(next.source)
	fwd.SetTransport("TLS")
	if err := sipx.SendStateless(out.Client(), fwd); err != nil {
		p.Log().Debug("forwarding ACK", "err", err)
	}
}
