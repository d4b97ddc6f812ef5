package edge

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/certbind"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/token"
)

// SIPFront is the edge's public SIP/TLS side. It answers what it can decide
// alone (a missing or invalid bearer token, OPTIONS pings) and forwards the
// rest to the core's MRA port over mutual TLS.
type SIPFront struct {
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	ver    *token.Verifier
	// cores is the ordered core list with its health (edge/cores.go).
	cores *coreSet
	// probeTimeout bounds opening a connection to a core for a request
	// (core_health_timeout).
	probeTimeout time.Duration
	authz        string // public token endpoint named in Bearer challenges
	host         string
	port         int
	flowKey      []byte
	// macs are HMAC-SHA256 states under flowKey, reused across messages.
	macs   sync.Pool
	log    *slog.Logger
	txWait time.Duration
	// guard validates every request before a handler sees it and
	// recovers a handler's panic (RFC 3261 §8.2, §16.3).
	guard *sipx.Guard
	// coreAddrs are the core's MRA addresses as "ip:port", set before
	// serving and read-only after.
	coreAddrs map[string]bool

	legs legTable

	inflight *sipx.InFlight
	// rids makes the request IDs of phones' requests (internal/reqid).
	rids reqid.Source
	// m counts REGISTER answers and the edge's own refusals; nil counts
	// nothing (set before the front serves).
	m *metrics.Edge
	// draining is the edge's drain flag (edge/drain.go); nil: never.
	draining *atomic.Bool
}

// legTable is what the edge knows of phones' flows and calls: the phones'
// connections that registered through it (RFC 5626 flows, kept alive with
// CRLF) and the call legs it record-routed for them, keyed by Call-ID and
// flow, from the 2xx to the initial INVITE until the BYE's final response
// or the flow's end.
type legTable struct {
	mu         sync.Mutex
	flows      map[string]struct{} // phone source "ip:port"
	dialogs    map[legKey]struct{}
	keepalives atomic.Uint64
}

type legKey struct{ callID, flow string }

func (l *legTable) addFlow(src string) {
	l.mu.Lock()
	l.flows[src] = struct{}{}
	l.mu.Unlock()
}

// dropFlow forgets a flow and the call legs on it.
func (l *legTable) dropFlow(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.flows, src)
	for k := range l.dialogs {
		if k.flow == src {
			delete(l.dialogs, k)
		}
	}
}

func (l *legTable) snapshotFlows() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.flows))
	for f := range l.flows {
		out = append(out, f)
	}
	return out
}

// track updates the call legs after a request on flow got its final
// response res (nil when none came).
func (l *legTable) track(req *sip.Request, flow string, res *sip.Response) {
	opens := req.IsInvite() && !hasToTag(req) && res != nil && res.IsSuccess()
	if (!opens && req.Method != sip.BYE) || req.CallID() == nil {
		return // most requests change no leg: no lock taken
	}
	k := legKey{req.CallID().Value(), flow}
	l.mu.Lock()
	defer l.mu.Unlock()
	if opens {
		l.dialogs[k] = struct{}{}
	} else { // a BYE: whatever the answer, or none, the dialog is over (RFC 3261 §15.1.1)
		delete(l.dialogs, k)
	}
}

// SIP is the running SIP front, nil before Serve has set it up.
func (s *Server) SIP() *SIPFront { return s.sipFront.Load() }

// Flows is the number of phone connections the edge keeps alive.
func (f *SIPFront) Flows() int {
	f.legs.mu.Lock()
	defer f.legs.mu.Unlock()
	return len(f.legs.flows)
}

// Dialogs is the number of call legs the edge routes for its phones.
func (f *SIPFront) Dialogs() int {
	f.legs.mu.Lock()
	defer f.legs.mu.Unlock()
	return len(f.legs.dialogs)
}

// InFlight is the per-connection request accounting (its Peak and
// Refused gauges).
func (f *SIPFront) InFlight() *sipx.InFlight { return f.inflight }

// KeepAlives is the number of CRLF keep-alives sent down phone flows.
func (f *SIPFront) KeepAlives() uint64 { return f.legs.keepalives.Load() }

// keepAlive writes a double-CRLF ping (RFC 5626 §4.4.1) down every phone
// flow each interval, so NATs and firewalls in front of the phones keep
// their bindings; the phone answers with a CRLF pong, which also keeps the
// flow off the idle timeout. Flows whose connection is gone are forgotten,
// with their call legs. It returns when ctx ends.
func (f *SIPFront) keepAlive(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, src := range f.legs.snapshotFlows() {
			if !f.ping(src) {
				f.legs.dropFlow(src)
			}
		}
	}
}

// ping writes CRLFCRLF on the phone's connection; false when it is gone.
func (f *SIPFront) ping(src string) bool {
	c, err := f.ua.TransportLayer().GetConnection("tls", src)
	if err != nil || c == nil {
		return false
	}
	w, ok := c.(io.Writer)
	if !ok {
		return true
	}
	if _, err := w.Write([]byte("\r\n\r\n")); err != nil {
		f.log.Debug("keep-alive write failed; closing the flow", "src", src, "err", err)
		_ = c.Close()
		return false
	}
	f.legs.keepalives.Add(1)
	return true
}

func newSIPFront(cfg Config, ua *sipgo.UserAgent, ver *token.Verifier, sipPort int, flowKey []byte, cores *coreSet, log *slog.Logger) (*SIPFront, error) {
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(cfg.AdvertisedHost), sipgo.WithClientPort(sipPort))
	if err != nil {
		return nil, fmt.Errorf("edge: SIP client: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		return nil, fmt.Errorf("edge: SIP server: %w", err)
	}
	f := &SIPFront{ua: ua, srv: srv, client: client, ver: ver, cores: cores, probeTimeout: cmp.Or(cfg.CoreHealthTimeout, 2*time.Second), host: cfg.AdvertisedHost,
		authz: strings.TrimSuffix(cfg.PublicURL, "/") + "/oauth2/token",
		port:  sipPort, flowKey: flowKey, log: log, txWait: 32 * time.Second, guard: sipx.NewGuard(log),
		legs: legTable{flows: map[string]struct{}{}, dialogs: map[legKey]struct{}{}}}
	// Requests in flight per phone connection (issue 9 item 10); the link
	// to the core carries every phone's traffic and is not bounded.
	f.inflight = &sipx.InFlight{Limit: cfg.SIPMaxInFlight, Exempt: func(src string) bool { return f.coreAddrs[src] }}
	f.inflight.Attach(ua)
	// Every handler is counted in flight, gets its request ID, then goes
	// through the guard: nothing unvalidated is forwarded, and a panic
	// costs one request, not the edge.
	h := func(fn sipgo.RequestHandler) sipgo.RequestHandler { return f.inflight.Handler(f.wrap(fn)) }
	srv.OnRegister(h(f.onRegister))
	srv.OnAck(h(f.onAck))
	srv.OnOptions(h(f.onOptions))
	srv.OnNoRoute(h(f.onRequest)) // INVITE, BYE, CANCEL, UPDATE, INFO, MESSAGE, …
	return f, nil
}

// wrap is fn behind the request ID (withRID) and the guard.
func (f *SIPFront) wrap(fn sipgo.RequestHandler) sipgo.RequestHandler {
	return f.withRID(f.guard.Wrap(fn))
}

// withRID gives a phone's request this edge's request ID (issue 12 §2),
// on its transaction (reqid.Tx: the request itself is sipgo's to read):
// every log line about the request names it (attribute "rid"), and the
// copy forwarded to the core carries it in reqid.Header instead of any
// such header the phone wrote (forwardCopy). Requests the core sends
// down get none, and lose the header before they reach a phone.
func (f *SIPFront) withRID(fn sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if tx != nil && !f.fromCore(req) {
			tx = &reqid.Tx{ServerTransaction: tx, ID: f.rids.New()}
		}
		fn(req, tx)
	}
}

// onOptions answers a phone's out-of-dialog OPTIONS, a keep-alive ping to
// us, and routes any other like a request.
func (f *SIPFront) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if !f.fromCore(req) && req.Route() == nil && !hasToTag(req) {
		sipx.Respond(tx, req, 200, "OK", nil)
		return
	}
	f.onRequest(req, tx)
}

// Refused is the number of requests the edge answered 400 for a missing,
// duplicated or malformed mandatory header.
func (f *SIPFront) Refused() uint64 { return f.guard.Refused() }

// Dropped is the number of ACKs and responses the edge dropped for a
// missing, duplicated or malformed mandatory header.
func (f *SIPFront) Dropped() uint64 { return f.guard.Dropped() }

// Panics is the number of SIP handler panics the edge recovered from.
func (f *SIPFront) Panics() uint64 { return f.guard.Panics() }

// setCoreAddrs records the core's MRA address as connections report it, so
// requests the core sends down are told from requests phones send up.
func (f *SIPFront) setCoreAddrs(addrs []string) {
	f.coreAddrs = make(map[string]bool, len(addrs))
	for _, a := range addrs {
		f.coreAddrs[a] = true
	}
}

func (f *SIPFront) fromCore(req *sip.Request) bool { return f.coreAddrs[req.Source()] }

func hasToTag(req *sip.Request) bool {
	to := req.To()
	if to == nil {
		return false
	}
	_, ok := to.Params.Get("tag")
	return ok
}

// onRequest routes everything but REGISTER: what phones send goes up to
// the core (an INVITE that starts a dialog needs a valid bearer token,
// RFC 8898); what the core sends goes down the phone's flow named in the
// top Route (RFC 5626 §5.3).
func (f *SIPFront) onRequest(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() {
		return
	}
	if f.fromCore(req) {
		f.toPhone(req, tx)
		return
	}
	if req.IsInvite() && !hasToTag(req) {
		if f.draining != nil && f.draining.Load() {
			f.refuseDraining(req, tx) // edge/drain.go
			return
		}
		if !f.precheck(req, tx) {
			return
		}
	}
	f.toCore(req, tx)
}

// onAck forwards an ACK for a 2xx end to end (RFC 3261 §16.11); ACKs of
// failures never leave their transaction.
func (f *SIPFront) onAck(req *sip.Request, tx sip.ServerTransaction) {
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		return
	}
	reqid.StripSIP(fwd) // never a phone's, nor to a phone
	certbind.StripSIP(fwd)
	if f.fromCore(req) {
		src, ok := f.popFlow(fwd)
		if !ok || !sipx.HasConnection(f.ua, src) {
			return
		}
		fwd.SetDestination(src)
	} else {
		sipx.PopRoute(fwd, f.isSelf)
		c := f.routeCore(fwd)
		if c == nil {
			c = f.pickCore()
		}
		if c == nil {
			return
		}
		fwd.SetDestination(c.cfg.MRA)
	}
	fwd.SetTransport("TLS")
	if err := sipx.SendStateless(f.client, fwd); err != nil {
		f.log.Debug("forwarding ACK", "err", err)
	}
}

// isSelf reports whether a Route URI names this edge.
func (f *SIPFront) isSelf(u sip.Uri) bool {
	port := u.Port
	if port == 0 {
		port = 5061
	}
	return strings.EqualFold(u.Host, f.host) && port == f.port
}

// popFlow removes the top Route, which must name this edge with a flow
// token it minted, and returns the phone's transport address.
func (f *SIPFront) popFlow(req *sip.Request) (string, bool) {
	r := req.Route()
	if r == nil || !f.isSelf(r.Address) {
		return "", false
	}
	src, ok := f.flowFromToken(r.Address.User)
	if !ok {
		return "", false
	}
	req.RemoveHeader("Route")
	return src, true
}

// recordRoute is this edge's Record-Route for a phone's flow, so requests
// later in the dialog take the same connection (RFC 5626 §5.1).
func (f *SIPFront) recordRoute(source string) sip.Header {
	return sip.NewHeader("Record-Route", f.pathFor(source))
}

// toCore forwards a phone's request to a core's MRA port: inside a
// dialog, to the core whose Record-Route it carries; otherwise to the
// first core of the list that is up (edge/cores.go).
func (f *SIPFront) toCore(req *sip.Request, tx sip.ServerTransaction) {
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		f.m.Refused(metrics.EdgeTooManyHops)
		sipx.Respond(tx, req, 483, "Too Many Hops", nil)
		return
	}
	reqid.SetSIP(fwd, reqid.FromTx(tx)) // the edge's ID, never the phone's
	// The phone connection's certificate, never a thumbprint the phone
	// wrote: the core re-checks bound tokens with it (edge/bound.go).
	certbind.SetSIP(fwd, f.connThumbprint(req.Source()))
	sipx.PopRoute(fwd, f.isSelf)
	c := f.routeCore(fwd)
	if c == nil {
		if c = f.pickCore(); c == nil {
			f.noCore(req, tx)
			return
		}
	}
	if req.IsInvite() && !hasToTag(req) {
		fwd.PrependHeader(f.recordRoute(req.Source()))
	}
	fwd.SetDestination(c.cfg.MRA)
	fwd.SetTransport("TLS")
	res := f.guard.Relay(context.Background(), f.client, tx, req, fwd, f.rewriteChallenge)
	f.refusedByCore(req, tx, res)
	f.legs.track(req, req.Source(), res)
	f.recheckIfDraining(c, res) // edge/corecheck.go
}

// toPhone forwards the core's request down the phone's flow. A flow that
// is gone is 430 Flow Failed (RFC 5626 §5.3): the core answers the caller.
func (f *SIPFront) toPhone(req *sip.Request, tx sip.ServerTransaction) {
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		f.m.Refused(metrics.EdgeTooManyHops)
		sipx.Respond(tx, req, 483, "Too Many Hops", nil)
		return
	}
	reqid.StripSIP(fwd) // the request ID stays between the tiers
	certbind.StripSIP(fwd)
	src, ok := f.popFlow(fwd)
	if !ok {
		sipx.Respond(tx, req, 403, "Forbidden", nil)
		return
	}
	if !sipx.HasConnection(f.ua, src) {
		sipx.Respond(tx, req, 430, "Flow Failed", nil)
		return
	}
	if req.IsInvite() && !hasToTag(req) {
		fwd.PrependHeader(f.recordRoute(src))
	}
	fwd.SetDestination(src)
	fwd.SetTransport("TLS")
	res := f.guard.RelayToFlow(context.Background(), f.client, tx, req, fwd, nil)
	f.legs.track(req, src, res)
}

func (f *SIPFront) rewriteChallenge(res *sip.Response) {
	if h := sipx.FindHeader(res, "WWW-Authenticate"); h != nil {
		// The core names its internal token endpoint; phones out here get
		// tokens from this edge.
		res.ReplaceHeader(sip.NewHeader("WWW-Authenticate", sipx.ReplaceChallengeServer(h.Value(), f.authz)))
	}
}

// onRegister pre-checks the bearer token and forwards the REGISTER.
func (f *SIPFront) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if codes := f.m.RegisterCodes(); codes != nil {
		tx = countingTx{tx, codes}
	}
	if f.precheck(req, tx) {
		f.forward(req, tx)
	}
}

// precheck drops junk early (RFC 8898): no credentials or a Bearer token
// that does not verify against the core's keys get 401 here. Other schemes
// (Digest) go on to the core, which owns S-16. It reports whether to
// forward.
func (f *SIPFront) precheck(req *sip.Request, tx sip.ServerTransaction) bool {
	tok, scheme, ok := sipx.BearerToken(req)
	realm := ""
	if to := req.To(); to != nil {
		realm = to.Address.Host
	}
	switch {
	case !ok:
		f.m.Refused(metrics.EdgeNoCredentials)
		f.refuse(req, tx, sipx.BearerChallenge(realm, f.authz, "", ""), "no credentials")
		return false
	case strings.EqualFold(scheme, "Bearer"):
		claims, err, cached := f.ver.Cached(tok)
		if !cached { // the key fetch Verify may need is bounded
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			claims, err = f.ver.Verify(ctx, tok)
			cancel()
		}
		if errors.Is(err, token.ErrUnavailable) {
			f.log.Warn("cannot pre-check token: core keys unavailable", "err", err, reqid.Attr, reqid.FromTx(tx))
			f.m.Refused(metrics.EdgeKeysUnavailable)
			res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
			_ = tx.Respond(res)
			return false
		}
		if err != nil {
			desc := "token signature, issuer or audience is not valid"
			if errors.Is(err, token.ErrExpired) {
				desc = "token expired"
			} else if errors.Is(err, token.ErrWrongType) {
				desc = "RFC 9068 §4, RFC 8725 §3.11: not an access token (typ must be at+jwt)"
			}
			f.m.Refused(metrics.EdgeInvalidToken)
			f.refuse(req, tx, sipx.BearerChallenge(realm, f.authz, "invalid_token", desc), err.Error())
			return false
		}
		// RFC 8705 §3: a bound token only on its certificate's connection
		// (edge/bound.go).
		if !f.checkBound(req, tx, claims, realm) {
			f.m.Refused(metrics.EdgeInvalidToken)
			return false
		}
	}
	return true
}

func (f *SIPFront) refuse(req *sip.Request, tx sip.ServerTransaction, challenge, why string) {
	f.log.Debug("request refused at edge", "method", req.Method, "src", req.Source(), "why", why, reqid.Attr, reqid.FromTx(tx))
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", challenge))
	_ = tx.Respond(res)
}

// countingTx counts the final response of a transaction
// (edgeway_edge_register_responses_total), whoever gives it: the edge's
// pre-check or the core's answer relayed.
type countingTx struct {
	sip.ServerTransaction
	codes *metrics.Codes
}

// Unwrap is the transaction t counts (reqid.FromTx).
func (t countingTx) Unwrap() sip.ServerTransaction { return t.ServerTransaction }

func (t countingTx) Respond(res *sip.Response) error {
	if res != nil {
		t.codes.Inc(res.StatusCode)
	}
	return t.ServerTransaction.Respond(res)
}

// forward proxies a REGISTER to the core's MRA port (RFC 3261 §16.6) with
// a Path naming this edge and the phone's flow (RFC 3327, RFC 5626 §5.1).
func (f *SIPFront) forward(req *sip.Request, tx sip.ServerTransaction) {
	fwd, err := f.registerToCore(req, reqid.FromTx(tx))
	if err != nil {
		f.m.Refused(metrics.EdgeTooManyHops)
		sipx.Respond(tx, req, 483, "Too Many Hops", nil)
		return
	}
	c := f.pickCore()
	if c == nil {
		f.noCore(req, tx)
		return
	}
	fwd.SetDestination(c.cfg.MRA)
	res := f.guard.Relay(context.Background(), f.client, tx, req, fwd, f.rewriteChallenge)
	f.refusedByCore(req, tx, res)
	if res != nil && res.IsSuccess() {
		if unregisters(req) {
			f.legs.dropFlow(req.Source())
		} else {
			f.legs.addFlow(req.Source())
			// Registered: the connection is off the pre-REGISTER timeout
			// (issue 9 item 11).
			sipx.MarkEstablished(f.ua, req.Source())
		}
	}
}

// refusedByCore logs, at DEBUG, a phone's request the core answered with
// a failure (res is the final response relayed, nil when none came: the
// relay logged that). Its rid is the one the core logged the refusal
// with.
func (f *SIPFront) refusedByCore(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) {
	if res == nil || res.StatusCode < 300 {
		return
	}
	f.log.Debug("request refused by core", "method", req.Method, "status", res.StatusCode, "src", req.Source(), reqid.Attr, reqid.FromTx(tx))
}

// registerToCore is the copy of a phone's REGISTER that goes to a core's
// MRA port (the caller sets which), with the request ID rid. The phone is
// the first hop: any Path it wrote is its own invention, and the core
// must see only ours (RFC 3327 §5.2); any request ID it wrote is
// replaced by the edge's (issue 12 §2).
func (f *SIPFront) registerToCore(req *sip.Request, rid string) (*sip.Request, error) {
	fwd, err := sipx.PrepareForward(req)
	if err != nil {
		return nil, err
	}
	for fwd.RemoveHeader("Path") {
	}
	reqid.SetSIP(fwd, rid)
	certbind.SetSIP(fwd, f.connThumbprint(req.Source())) // edge/bound.go
	fwd.PrependHeader(sip.NewHeader("Path", f.pathFor(req.Source())))
	fwd.SetTransport("TLS")
	return fwd, nil
}

// unregisters reports whether a REGISTER removes its bindings (Expires 0
// in the header or on its Contact, RFC 3261 §10.2.2).
func unregisters(req *sip.Request) bool {
	if c := req.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			return strings.TrimSpace(v) == "0"
		}
		if c.Address.Wildcard {
			return true
		}
	}
	if h := sipx.FindHeader(req, "Expires"); h != nil {
		return strings.TrimSpace(h.Value()) == "0"
	}
	return false
}

// pathFor builds this edge's Path entry for a phone's connection: the user
// part is a flow token (RFC 5626 §5.2) that names the phone's transport
// address and is authenticated, so only this edge can mint one.
func (f *SIPFront) pathFor(source string) string {
	var buf [192]byte // a Path for an IPv6 source and a long host still fits
	b := append(buf[:0], "<sip:"...)
	b = f.appendFlowToken(b, source)
	b = append(b, '@')
	if strings.IndexByte(f.host, ':') >= 0 { // as net.JoinHostPort writes it
		b = append(append(append(b, '['), f.host...), ']')
	} else {
		b = append(b, f.host...)
	}
	b = strconv.AppendInt(append(b, ':'), int64(f.port), 10)
	b = append(b, ";transport=tls;lr;ob>"...)
	return string(b)
}

// flowMACLen is the length of the flow token's MAC: the first bytes of
// an HMAC-SHA256 of the source under the edge's flow key.
const flowMACLen = 10

func (f *SIPFront) flowToken(source string) string {
	return string(f.appendFlowToken(nil, source))
}

// appendFlowToken appends source's flow token to b: base64url of the MAC
// then the source.
func (f *SIPFront) appendFlowToken(b []byte, source string) []byte {
	var buf [flowMACLen + 64]byte
	raw := append(f.flowMAC(buf[:0], source), source...)
	return base64.RawURLEncoding.AppendEncode(b, raw)
}

// flowMAC appends source's flowMACLen-byte MAC to b. The HMAC states are
// reused (macs): a new one per message costs several allocations.
func (f *SIPFront) flowMAC(b []byte, source string) []byte {
	m, ok := f.macs.Get().(*flowHMAC)
	if ok {
		m.h.Reset()
	} else {
		m = &flowHMAC{h: hmac.New(sha256.New, f.flowKey)}
	}
	m.in = append(m.in[:0], source...)
	m.h.Write(m.in)
	m.sum = m.h.Sum(m.sum[:0])
	b = append(b, m.sum[:flowMACLen]...)
	if cap(m.in) <= 256 {
		f.macs.Put(m)
	}
	return b
}

// flowHMAC is an HMAC-SHA256 state under the flow key with its input and
// output buffers (through the hash.Hash interface, a stack array would
// escape).
type flowHMAC struct {
	h   hash.Hash
	in  []byte
	sum []byte
}

// flowFromToken returns the phone address a flow token names, or false if
// the token was not minted by this edge.
func (f *SIPFront) flowFromToken(tok string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) <= flowMACLen {
		return "", false
	}
	source := string(raw[flowMACLen:])
	var buf [flowMACLen]byte
	return source, hmac.Equal(raw[:flowMACLen], f.flowMAC(buf[:0], source))
}

// Close stops the SIP side.
func (f *SIPFront) Close() { f.srv.Close(); f.ua.Close() }
