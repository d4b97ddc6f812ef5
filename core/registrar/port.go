package registrar

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
)

// PortConfig is what one SIP listener needs of the core's configuration.
type PortConfig struct {
	// MRA is true for the MRA port (mutual TLS, edges only), false for
	// the Phone OAuth port (S-11).
	MRA bool
	// Node names this core node in Warning headers and the user agent.
	Node string
	// SIPDomain and Issuer make the Bearer challenge (RFC 8898 §2.3).
	SIPDomain, Issuer string
	// AdvertisedHost is this node's name in Record-Route and Via.
	AdvertisedHost string
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration
	// MaxInFlight bounds the requests of one Phone OAuth connection worked
	// on at once (issue 9 item 10); the MRA port is not bounded.
	MaxInFlight int
}

// Handlers are a port's request handlers: REGISTER (the Registrar), and
// ACK, OPTIONS and everything else (core/proxy).
type Handlers struct {
	Register, Ack, Options, Call sipgo.RequestHandler
}

// Port is the SIP side of one listener: the Phone OAuth port (MRA false)
// or the MRA port (MRA true). Each has its own sipgo user agent so a
// handler always knows which port a request arrived on (S-11).
type Port struct {
	cfg    PortConfig
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	number int // the port this listener serves, for Record-Route
	log    *slog.Logger
	guard  *sipx.Guard // the node's, shared by both ports
	h      Handlers

	inflight *sipx.InFlight
	// rids makes the request IDs of requests that bring none this port
	// believes (withRID).
	rids reqid.Source
}

// NewPort builds a listener's user agent, server and client; Handle then
// gives it its handlers, and Serve serves it.
func NewPort(cfg PortConfig, guard *sipx.Guard, log *slog.Logger) (*Port, error) {
	name := "phone-oauth"
	if cfg.MRA {
		name = "mra"
	}
	log = log.With("sip", name)
	ua, err := sipx.NewUA("Edgeway core", cfg.Node, cfg.IdleTimeout, log, nil)
	if err != nil {
		return nil, fmt.Errorf("core: SIP user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("core: SIP server: %w", err)
	}
	p := &Port{cfg: cfg, ua: ua, srv: srv, log: log, guard: guard}
	p.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(cfg.AdvertisedHost))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("core: SIP client: %w", err)
	}
	// Requests in flight per phone connection (issue 9 item 10); the MRA
	// port's connections carry whole edges and are not bounded.
	p.inflight = &sipx.InFlight{}
	if !cfg.MRA {
		p.inflight.Limit = cfg.MaxInFlight
	}
	p.inflight.Attach(ua)
	return p, nil
}

// Handle installs the port's handlers. Every handler is counted in
// flight, gets its request ID (withRID), then goes through the guard:
// nothing unvalidated is routed or stored, and a panic costs one request,
// not the core.
func (p *Port) Handle(h Handlers) {
	p.h = h
	wrap := func(fn sipgo.RequestHandler) sipgo.RequestHandler {
		return p.inflight.Handler(p.withRID(p.guard.Wrap(fn)))
	}
	p.srv.OnRegister(wrap(h.Register))
	p.srv.OnAck(wrap(h.Ack))
	p.srv.OnOptions(wrap(h.Options))
	p.srv.OnNoRoute(wrap(h.Call)) // INVITE, BYE, UPDATE, INFO, MESSAGE, CANCEL without a transaction
}

// withRID settles the request ID of every request (issue 12 §2) and puts
// it on the transaction (reqid.Tx; handlers log reqid.FromTx as "rid"):
// on the MRA port, whose every connection is an admitted edge (S-11,
// S-12), the edge's reqid.Header when it is well formed; on the Phone
// OAuth port, or when the edge's is missing or malformed, an ID of this
// port's own. The header never goes further (core/proxy strips it).
func (p *Port) withRID(fn sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if tx != nil {
			tx = &reqid.Tx{ServerTransaction: tx, ID: reqid.Adopt(req, p.cfg.MRA, &p.rids)}
		}
		fn(req, tx)
	}
}

// Dispatch runs req through the request ID and the guard to the handler
// sipgo's server would pick, without a socket (fuzz targets and tests).
func (p *Port) Dispatch(req *sip.Request, tx sip.ServerTransaction) {
	h := p.h.Call
	switch req.Method {
	case sip.REGISTER:
		h = p.h.Register
	case sip.ACK:
		h = p.h.Ack
	case sip.OPTIONS:
		h = p.h.Options
	}
	p.withRID(p.guard.Wrap(h))(req, tx)
}

// Serve serves the port on ln (TLS already on it) until ctx ends.
func (p *Port) Serve(ctx context.Context, ln net.Listener) error {
	err := p.srv.ServeTLS(ln)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("core: SIP listener %s: %w", ln.Addr(), err)
}

// Close stops the server and the user agent.
func (p *Port) Close() { p.srv.Close(); p.ua.Close() }

// MRA reports whether this is the MRA port.
func (p *Port) MRA() bool { return p.cfg.MRA }

// Number is the TCP port this listener serves (0 until SetNumber).
func (p *Port) Number() int { return p.number }

// SetNumber records the TCP port this listener serves, for Record-Route.
func (p *Port) SetNumber(n int) { p.number = n }

// InFlight is the port's per-connection request accounting.
func (p *Port) InFlight() *sipx.InFlight { return p.inflight }

// Client sends requests out of this port.
func (p *Port) Client() *sipgo.Client { return p.client }

// Guard is the node's request guard, which relays through this port.
func (p *Port) Guard() *sipx.Guard { return p.guard }

// Log is the port's logger.
func (p *Port) Log() *slog.Logger { return p.log }

// HasConnection reports whether the port holds a connection from remote.
func (p *Port) HasConnection(remote string) bool { return sipx.HasConnection(p.ua, remote) }

// RecordRoute is this node's Record-Route on this listener.
func (p *Port) RecordRoute() sip.Header {
	return sip.NewHeader("Record-Route", fmt.Sprintf("<sip:%s:%d;transport=tls;lr>", p.cfg.AdvertisedHost, p.number))
}

// Refusal answers req with a refusal: a 401 carries the Bearer challenge
// (RFC 8898 §2.3, RFC 6750 §3; the edge replaces authz_server with its own
// public token URL for MRA phones), any other a Warning naming the rule.
func (p *Port) Refusal(req *sip.Request, re *Refusal) *sip.Response {
	res := sip.NewResponseFromRequest(req, re.Status, re.Reason, nil)
	if re.Status == 401 {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", p.challenge(re)))
	} else {
		res.AppendHeader(sip.NewHeader("Warning", fmt.Sprintf("399 %s %q", p.cfg.Node, re.Err.Error())))
	}
	return res
}

// challenge builds the RFC 8898 §2.3 / RFC 6750 §3 Bearer challenge.
func (p *Port) challenge(re *Refusal) string {
	desc := ""
	if re.Bearer != "" {
		desc = re.Err.Error()
	}
	return sipx.BearerChallenge(p.cfg.SIPDomain, p.cfg.Issuer+"/oauth2/token", re.Bearer, desc)
}
