package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// registrar is the SIP side of one listener: the Phone OAuth port (mra
// false) or the MRA port (mra true). Each has its own sipgo user agent so
// a handler always knows which port a request arrived on (S-11).
type registrar struct {
	s      *Server
	mra    bool
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	port   int // the port this listener serves, for Record-Route
	log    *slog.Logger
	guard  *sipx.Guard // the server's, shared by both ports

	inflight *sipx.InFlight
}

func (s *Server) newRegistrar(mra bool) (*registrar, error) {
	port := "phone-oauth"
	if mra {
		port = "mra"
	}
	log := s.log.With("sip", port)
	ua, err := sipx.NewUA("Edgeway core", s.cfg.Node, s.cfg.SIPIdleTimeout, log, nil)
	if err != nil {
		return nil, fmt.Errorf("core: SIP user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("core: SIP server: %w", err)
	}
	r := &registrar{s: s, mra: mra, ua: ua, srv: srv, log: log, guard: s.sipGuard}
	r.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(s.cfg.AdvertisedHost))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("core: SIP client: %w", err)
	}
	// Requests in flight per phone connection (issue 9 item 10); the MRA
	// port's connections carry whole edges and are not bounded.
	r.inflight = &sipx.InFlight{}
	if !mra {
		r.inflight.Limit = s.cfg.SIPMaxInFlight
	}
	r.inflight.Attach(ua)
	// Every handler is counted in flight, then goes through the guard:
	// nothing unvalidated is routed or stored, and a panic costs one
	// request, not the core.
	h := func(fn sipgo.RequestHandler) sipgo.RequestHandler { return r.inflight.Handler(r.guard.Wrap(fn)) }
	srv.OnRegister(h(r.onRegister))
	srv.OnAck(h(r.onAck))
	srv.OnOptions(h(r.onOptions))
	srv.OnNoRoute(h(r.onCall)) // INVITE, BYE, UPDATE, INFO, MESSAGE, CANCEL without a transaction
	return r, nil
}

// onOptions answers an OPTIONS ping to this node and routes any other.
func (r *registrar) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if req.Route() == nil && !hasToTag(req) && req.Recipient.User == "" {
		sipx.Respond(tx, req, 200, "OK", nil) // a ping to us
		return
	}
	r.onCall(req, tx)
}

// SIPRefused is the number of requests this node answered 400 for a
// missing, duplicated or malformed mandatory header, on both SIP ports.
func (s *Server) SIPRefused() uint64 { return s.sipGuard.Refused() }

// SIPDropped is the number of ACKs and responses this node dropped for a
// missing, duplicated or malformed mandatory header, on both SIP ports.
func (s *Server) SIPDropped() uint64 { return s.sipGuard.Dropped() }

// SIPPanics is the number of SIP handler panics this node recovered from.
func (s *Server) SIPPanics() uint64 { return s.sipGuard.Panics() }

func (r *registrar) Close() { r.srv.Close(); r.ua.Close() }

func serveSIP(ctx context.Context, r *registrar, ln net.Listener) error {
	err := r.srv.ServeTLS(ln)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("core: SIP listener %s: %w", ln.Addr(), err)
}

// regError is a refusal with its SIP status and, for 401, the RFC 6750
// error code for the Bearer challenge.
type regError struct {
	status int
	reason string
	bearer string // "" → plain challenge; "invalid_token" etc.
	err    error
}

func (e *regError) Error() string { return e.err.Error() }
func (e *regError) Unwrap() error { return e.err }

func unauthorized(code string, err error) *regError {
	return &regError{status: 401, reason: "Unauthorized", bearer: code, err: err}
}

func forbidden(err error) *regError {
	return &regError{status: 403, reason: "Forbidden", err: err}
}

// onRegister handles REGISTER (RFC 3261 §10.3, RFC 8898 bearer tokens,
// RFC 3327 Path).
func (r *registrar) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := r.register(ctx, req)
	if err != nil {
		var re *regError
		if !errors.As(err, &re) {
			r.log.Error("REGISTER failed", "err", err, "src", req.Source())
			res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
			_ = tx.Respond(res)
			return
		}
		r.log.Info("REGISTER refused", "status", re.status, "reason", re.err.Error(), "src", req.Source(), "aor", sipx.AOR(req.To()))
		resp := sip.NewResponseFromRequest(req, re.status, re.reason, nil)
		if re.status == 401 {
			resp.AppendHeader(sip.NewHeader("WWW-Authenticate", r.challenge(re)))
		} else {
			resp.AppendHeader(sip.NewHeader("Warning", fmt.Sprintf("399 %s %q", r.s.cfg.Node, re.err.Error())))
		}
		_ = tx.Respond(resp)
		return
	}
	_ = tx.Respond(res)
	if !r.mra && res.IsSuccess() {
		// Registered: the connection is off the pre-REGISTER timeout
		// (issue 9 item 11).
		sipx.MarkEstablished(r.ua, req.Source())
	}
}

// challenge builds the RFC 8898 §2.3 / RFC 6750 §3 Bearer challenge. The
// edge replaces authz_server with its own public token URL for MRA phones.
func (r *registrar) challenge(re *regError) string {
	desc := ""
	if re.bearer != "" {
		desc = re.err.Error()
	}
	return sipx.BearerChallenge(r.s.cfg.SIPDomain, r.s.cfg.Issuer+"/oauth2/token", re.bearer, desc)
}

func (r *registrar) register(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if !r.s.sipOAuthMode.Load() {
		return nil, forbidden(ErrModeDisabled)
	}
	edge := ""
	if r.mra {
		// S-12 holds for the life of the connection, not only at its
		// handshake: an entry deleted since then stops this edge here.
		var err error
		if edge, err = r.s.gate.EdgeOf(ctx, req.Source()); admission.Refused(err) {
			return nil, forbidden(err)
		} else if err != nil {
			return nil, err
		}
	}
	claims, err := r.authorize(ctx, req)
	if err != nil {
		return nil, err
	}
	dev, err := r.s.look.GetDevice(ctx, claims.Device())
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized("invalid_token", fmt.Errorf("token names unknown device %s", claims.Device()))
	} else if err != nil {
		return nil, err
	}
	if err := policy.CheckDeviceOAuth(ctx, r.s.look, dev); err != nil {
		return nil, forbidden(err)
	}
	explicit, err := policy.ParamIs(ctx, r.s.look, ParamAccessTokenForDevices, "explicit", "implicit")
	if err != nil {
		return nil, err
	}
	if explicit && claims.Origin != token.GrantActivationCode {
		return nil, forbidden(ErrExplicitOnly)
	}

	to := req.To()
	if to == nil {
		return nil, &regError{status: 400, reason: "Bad Request", err: errors.New("missing To header")}
	}
	if !strings.EqualFold(to.Address.Host, r.s.cfg.SIPDomain) {
		return nil, forbidden(fmt.Errorf("domain %q is not served here (%s)", to.Address.Host, r.s.cfg.SIPDomain))
	}
	// The token's device must own the AOR's line.
	if to.Address.User != dev.Line {
		return nil, unauthorized("invalid_token", fmt.Errorf("token is for device %s, which does not own line %s", dev.Name, to.Address.User))
	}
	aor := sipx.AOR(to)

	contacts, star, err := sipx.Contacts(req)
	if err != nil {
		return nil, &regError{status: 400, reason: "Bad Request", err: err}
	}
	defExpires := r.s.cfg.MaxRegisterExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			return nil, &regError{status: 400, reason: "Bad Request", err: fmt.Errorf("bad Expires %q", h.Value())}
		}
		defExpires = n
	}
	now := r.s.now()
	if star {
		if defExpires != 0 || len(contacts) > 0 {
			return nil, &regError{status: 400, reason: "Bad Request", err: errors.New("Contact: * needs Expires: 0 and no other contact (RFC 3261 §10.2.2)")}
		}
		if _, err := r.s.loc.Update(ctx, aor, func([]store.Registration) (bindingChange, error) {
			return bindingChange{DeleteAll: true}, nil
		}); err != nil {
			return nil, err
		}
		return r.okResponse(req, nil, now), nil
	}

	callID := ""
	if c := req.CallID(); c != nil {
		callID = c.Value()
	}
	var cseq uint32
	if c := req.CSeq(); c != nil {
		cseq = c.SeqNo
	}
	// Path is kept only from the edge (RFC 3327): on the Phone OAuth port
	// there is no proxy in between, so a Path there is the phone's own.
	var path []string
	if r.mra {
		path = sipx.HeaderValues(req, "Path")
	}
	// A binding never outlives the token that authorised it.
	tokenLeft := int(claims.ExpiresAt.Sub(now) / time.Second)
	// The location service runs this on the AOR's live bindings, with no
	// other change to the AOR in between, and returns the bindings only
	// once the change is durable: the 200 below acknowledges nothing a
	// crash could lose.
	bindings, err := r.s.loc.Update(ctx, aor, func(existing []store.Registration) (bindingChange, error) {
		var ch bindingChange
		if err := checkOrdering(existing, contacts, callID, cseq); err != nil {
			return ch, err
		}
		if n := newBindings(existing, contacts, defExpires); n > maxBindingsPerAOR {
			return ch, forbidden(fmt.Errorf("too many bindings for %s: at most %d", aor, maxBindingsPerAOR))
		}
		for _, c := range contacts {
			exp := min(contactExpires(c, defExpires), r.s.cfg.MaxRegisterExpires, max(tokenLeft, 0))
			contact := c.Address.String()
			if exp == 0 {
				ch.Delete = append(ch.Delete, contact)
				continue
			}
			ch.Put = append(ch.Put, store.Registration{
				AOR: aor, Contact: contact, Device: dev.Name, Path: path, CallID: callID, CSeq: cseq,
				ExpiresAt: now.Add(time.Duration(exp) * time.Second), MRA: r.mra, Edge: edge,
				Node: r.s.cfg.Node, Source: req.Source(), UpdatedAt: now,
			})
		}
		return ch, nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("REGISTER accepted", "aor", aor, "device", dev.Name, "mra", r.mra, "edge", edge, "contacts", len(contacts), "tok", sipx.Fingerprint(claims.ID))
	return r.okResponse(req, bindings, now), nil
}

// authorize extracts and verifies the Bearer token (RFC 8898 §2.2) and
// checks it has not been revoked.
func (r *registrar) authorize(ctx context.Context, req *sip.Request) (*token.Claims, error) {
	cred, scheme, ok := sipx.BearerToken(req)
	if !ok {
		return nil, unauthorized("", errors.New("no credentials: a Bearer access token is required (RFC 8898)"))
	}
	switch {
	case strings.EqualFold(scheme, "Digest"):
		return nil, forbidden(ErrDigestInOAuth)
	case !strings.EqualFold(scheme, "Bearer"):
		return nil, &regError{status: 400, reason: "Bad Request", err: fmt.Errorf("unsupported authorization scheme %q: use Bearer (RFC 8898)", scheme)}
	}
	claims, err := r.s.auth.CheckAccessToken(ctx, cred)
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) {
			return nil, unauthorized("invalid_token", te)
		}
		return nil, err
	}
	return claims, nil
}

// okResponse lists the AOR's current bindings with their remaining expiry
// (RFC 3261 §10.3 step 8) and echoes Path (RFC 3327 §5.3). The bindings
// are the location service's, after the request's changes.
func (r *registrar) okResponse(req *sip.Request, regs []store.Registration, now time.Time) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range regs {
		left := int(b.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
		res.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<%s>;expires=%d", b.Contact, left)))
	}
	// RFC 3327 §5.3: echo the stored Path to a UA that supports it.
	if r.mra && supports(req, "path") {
		for _, p := range sipx.HeaderValues(req, "Path") {
			res.AppendHeader(sip.NewHeader("Path", p))
		}
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(http.TimeFormat)))
	res.AppendHeader(sip.NewHeader("Supported", "path"))
	return res
}

// maxBindingsPerAOR bounds the contacts one line may register.
const maxBindingsPerAOR = 10

// supports reports whether req lists option in a Supported header.
func supports(req *sip.Request, option string) bool {
	for _, v := range sipx.HeaderValues(req, "Supported") {
		if strings.EqualFold(strings.TrimSpace(v), option) {
			return true
		}
	}
	return false
}

// checkOrdering applies RFC 3261 §10.3 step 7: a request on the Call-ID of
// an existing binding must have a higher CSeq, or it is an old request
// arriving late and must change nothing.
func checkOrdering(existing []store.Registration, contacts []sip.ContactHeader, callID string, cseq uint32) error {
	for _, b := range existing {
		if b.CallID != callID || b.CSeq < cseq {
			continue
		}
		for _, c := range contacts {
			if c.Address.String() == b.Contact {
				return &regError{status: 500, reason: "Server Internal Error",
					err: fmt.Errorf("CSeq %d is not higher than %d already seen on this Call-ID (RFC 3261 §10.3 step 7)", cseq, b.CSeq)}
			}
		}
	}
	return nil
}

// newBindings counts the bindings the AOR would have after the request.
func newBindings(existing []store.Registration, contacts []sip.ContactHeader, defExpires int) int {
	seen := make(map[string]bool, len(existing)+len(contacts))
	for _, b := range existing {
		seen[b.Contact] = true
	}
	for _, c := range contacts {
		seen[c.Address.String()] = contactExpires(c, defExpires) > 0
	}
	n := 0
	for _, keep := range seen {
		if keep {
			n++
		}
	}
	return n
}

// contactExpires is a contact's requested expiry: its expires parameter,
// else the request's Expires (RFC 3261 §10.2.1.1).
func contactExpires(c sip.ContactHeader, defExpires int) int {
	if v, ok := c.Params.Get("expires"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return n
		}
	}
	return defExpires
}
