package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// Refusal is a refusal with its SIP status and, for 401, the RFC 6750
// error code for the Bearer challenge.
type Refusal struct {
	Status int
	Reason string
	Bearer string // "" → plain challenge; "invalid_token" etc.
	Err    error
}

func (e *Refusal) Error() string { return e.Err.Error() }
func (e *Refusal) Unwrap() error { return e.Err }

// Unauthorized is a 401 with the Bearer error code (RFC 6750 §3.1).
func Unauthorized(code string, err error) *Refusal {
	return &Refusal{Status: 401, Reason: "Unauthorized", Bearer: code, Err: err}
}

// Forbidden is a 403 naming the rule.
func Forbidden(err error) *Refusal {
	return &Refusal{Status: 403, Reason: "Forbidden", Err: err}
}

func badRequest(err error) *Refusal {
	return &Refusal{Status: 400, Reason: "Bad Request", Err: err}
}

// Tokens checks access tokens (core/oauth: S-2 signature, issuer,
// audience, expiry; R-2 revocation). A refusal is an *oauth.TokenError.
type Tokens interface {
	CheckAccessToken(ctx context.Context, raw string) (*token.Claims, error)
}

// Authorize extracts and verifies the Bearer token (RFC 8898 §2.2) and
// checks it has not been revoked. Digest is refused (S-16).
func Authorize(ctx context.Context, tokens Tokens, req *sip.Request) (*token.Claims, error) {
	cred, scheme, ok := sipx.BearerToken(req)
	if !ok {
		return nil, Unauthorized("", errors.New("no credentials: a Bearer access token is required (RFC 8898)"))
	}
	switch {
	case strings.EqualFold(scheme, "Digest"):
		return nil, Forbidden(policy.ErrDigestInOAuth)
	case !strings.EqualFold(scheme, "Bearer"):
		return nil, badRequest(fmt.Errorf("unsupported authorization scheme %q: use Bearer (RFC 8898)", scheme))
	}
	claims, err := tokens.CheckAccessToken(ctx, cred)
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) {
			return nil, Unauthorized("invalid_token", te)
		}
		return nil, err
	}
	return claims, nil
}

// Edges re-checks the edge behind an MRA connection (core/admission, S-12).
type Edges interface {
	EdgeOf(ctx context.Context, source string) (string, error)
}

// Lookups are the cached reads of every REGISTER (core/lookups).
type Lookups interface {
	policy.ProfileReader
	policy.ParamReader
	GetDevice(ctx context.Context, name string) (store.Device, error)
}

// Config is what the registrar needs of the core's configuration.
type Config struct {
	Node      string // recorded on each binding
	SIPDomain string // the domain of every line's AOR
	// MaxRegisterExpires caps a binding's lifetime in seconds.
	MaxRegisterExpires int
}

// Deps are the registrar's collaborators.
type Deps struct {
	// Mode reports the cluster SIP OAuth mode as this node's SIP service
	// last read it (S-13, S-14).
	Mode     func() bool
	Edges    Edges
	Tokens   Tokens
	Lookups  Lookups
	Location *Location
	Now      func() time.Time
	// Metrics counts the answers (edgeway_core_register_responses_total);
	// nil counts nothing.
	Metrics *metrics.Core
}

// Registrar handles REGISTER (RFC 3261 §10.3, RFC 8898 bearer tokens,
// RFC 3327 Path) on both SIP ports: a request passes the admission chain
// (registerChain), then its bindings change in the location service.
type Registrar struct {
	cfg Config
	d   Deps
}

// New builds a registrar.
func New(cfg Config, d Deps) *Registrar { return &Registrar{cfg: cfg, d: d} }

// Handler is the REGISTER handler of port p.
func (g *Registrar) Handler(p *Port) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) { g.onRegister(p, req, tx) }
}

// onRegister handles REGISTER (RFC 3261 §10.3, RFC 8898 bearer tokens,
// RFC 3327 Path).
func (g *Registrar) onRegister(p *Port, req *sip.Request, tx sip.ServerTransaction) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rid := reqid.FromTx(tx)
	res, err := g.register(ctx, p, req, rid)
	codes := g.d.Metrics.RegisterCodes(p.MRA())
	if err != nil {
		var re *Refusal
		if !errors.As(err, &re) {
			p.log.Error("REGISTER failed", "err", err, "src", req.Source(), reqid.Attr, rid)
			res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
			codes.Inc(503)
			_ = tx.Respond(res)
			return
		}
		p.log.Debug("REGISTER refused", "status", re.Status, "reason", re.Err.Error(), "src", req.Source(), "aor", sipx.AOR(req.To()), reqid.Attr, rid)
		codes.Inc(re.Status)
		_ = tx.Respond(p.Refusal(req, re))
		return
	}
	codes.Inc(res.StatusCode)
	_ = tx.Respond(res)
	if !p.MRA() && res.IsSuccess() {
		// Registered: the connection is off the pre-REGISTER timeout
		// (issue 9 item 11).
		sipx.MarkEstablished(p.ua, req.Source())
	}
}

// regState is what the admission chain learns about a REGISTER as it
// runs: each check reads what the ones before it found.
type regState struct {
	mra    bool
	req    *sip.Request
	edge   string        // the Expressway-C the MRA connection matches (checkEdge)
	claims *token.Claims // the Bearer token's (checkToken)
	dev    store.Device  // the token's device (checkDevice)
}

// check is one named step of the REGISTER admission chain.
type check struct {
	name string
	run  func(g *Registrar, ctx context.Context, st *regState) error
}

// registerChain is every check a REGISTER passes before its bindings
// change, in order, each one rule: the first refusal answers the request.
var registerChain = []check{
	{"S-13/S-14 SIP OAuth mode", (*Registrar).checkMode},
	{"S-12 Expressway-C behind the MRA connection", (*Registrar).checkEdge},
	{"RFC 8898/S-16/R-2 Bearer token", (*Registrar).checkToken},
	{"token's device", (*Registrar).checkDevice},
	{"S-5/S-15 device may use OAuth", (*Registrar).checkDeviceOAuth},
	{"RFC 8705 certificate-bound token", (*Registrar).checkBinding},
	{"S-9 explicit tokens", (*Registrar).checkExplicit},
	{"served domain", (*Registrar).checkDomain},
	{"device owns the line", (*Registrar).checkLine},
}

// admit runs the admission chain.
func (g *Registrar) admit(ctx context.Context, st *regState) error {
	for _, c := range registerChain {
		if err := c.run(g, ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// checkMode refuses every REGISTER while this node's SIP service runs with
// SIP OAuth mode off (S-13; a change takes effect at a restart, S-14).
func (g *Registrar) checkMode(_ context.Context, _ *regState) error {
	if !g.d.Mode() {
		return Forbidden(policy.ErrModeDisabled)
	}
	return nil
}

// checkEdge re-checks the edge behind an MRA connection: S-12 holds for
// the life of the connection, not only at its handshake, so an entry
// deleted since then stops this edge here.
func (g *Registrar) checkEdge(ctx context.Context, st *regState) error {
	if !st.mra {
		return nil
	}
	edge, err := g.d.Edges.EdgeOf(ctx, st.req.Source())
	if admission.Refused(err) {
		return Forbidden(err)
	} else if err != nil {
		return err
	}
	st.edge = edge
	return nil
}

// checkToken needs a valid, unrevoked Bearer access token (RFC 8898, S-2,
// R-2) and refuses Digest (S-16).
func (g *Registrar) checkToken(ctx context.Context, st *regState) error {
	claims, err := Authorize(ctx, g.d.Tokens, st.req)
	if err != nil {
		return err
	}
	st.claims = claims
	return nil
}

// checkDevice needs the token's device to exist.
func (g *Registrar) checkDevice(ctx context.Context, st *regState) error {
	dev, err := g.d.Lookups.GetDevice(ctx, st.claims.Device())
	if errors.Is(err, store.ErrNotFound) {
		return Unauthorized("invalid_token", fmt.Errorf("token names unknown device %s", st.claims.Device()))
	} else if err != nil {
		return err
	}
	st.dev = dev
	return nil
}

// checkDeviceOAuth needs a device model that may use OAuth (S-5) and a
// security profile with it enabled, Encrypted over TLS (S-15).
func (g *Registrar) checkDeviceOAuth(ctx context.Context, st *regState) error {
	if err := policy.CheckDeviceOAuth(ctx, g.d.Lookups, st.dev); err != nil {
		return Forbidden(err)
	}
	return nil
}

// checkExplicit: with OAuth Access Token for Devices explicit, only tokens
// of the activation-code grant may register (S-9).
func (g *Registrar) checkExplicit(ctx context.Context, st *regState) error {
	explicit, err := policy.ParamIs(ctx, g.d.Lookups, policy.ParamAccessTokenForDevices, "explicit", "implicit")
	if err != nil {
		return err
	}
	// An approved device grant (RFC 8628) is an explicit onboarding too.
	if explicit && st.claims.Origin != token.GrantActivationCode && st.claims.Origin != token.GrantDeviceCode {
		return Forbidden(policy.ErrExplicitOnly)
	}
	return nil
}

// checkDomain needs the AOR in this cluster's SIP domain.
func (g *Registrar) checkDomain(_ context.Context, st *regState) error {
	to := st.req.To()
	if to == nil {
		return badRequest(errors.New("missing To header"))
	}
	if !strings.EqualFold(to.Address.Host, g.cfg.SIPDomain) {
		return Forbidden(fmt.Errorf("domain %q is not served here (%s)", to.Address.Host, g.cfg.SIPDomain))
	}
	return nil
}

// checkLine: the token's device must own the AOR's line.
func (g *Registrar) checkLine(_ context.Context, st *regState) error {
	if user := st.req.To().Address.User; user != st.dev.Line {
		return Unauthorized("invalid_token", fmt.Errorf("token is for device %s, which does not own line %s", st.dev.Name, user))
	}
	return nil
}

func (g *Registrar) register(ctx context.Context, p *Port, req *sip.Request, rid string) (*sip.Response, error) {
	st := &regState{mra: p.MRA(), req: req}
	if err := g.admit(ctx, st); err != nil {
		return nil, err
	}
	claims, dev, edge := st.claims, st.dev, st.edge
	aor := sipx.AOR(req.To())

	contacts, star, err := sipx.Contacts(req)
	if err != nil {
		return nil, badRequest(err)
	}
	defExpires := g.cfg.MaxRegisterExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			return nil, badRequest(fmt.Errorf("bad Expires %q", h.Value()))
		}
		defExpires = n
	}
	now := g.d.Now()
	if star {
		if defExpires != 0 || len(contacts) > 0 {
			return nil, badRequest(errors.New("Contact: * needs Expires: 0 and no other contact (RFC 3261 §10.2.2)"))
		}
		if _, err := g.d.Location.Update(ctx, aor, func([]store.Registration) (bindingChange, error) {
			return bindingChange{DeleteAll: true}, nil
		}); err != nil {
			return nil, err
		}
		return okResponse(p, req, nil, now), nil
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
	if p.MRA() {
		path = sipx.HeaderValues(req, "Path")
	}
	// A binding never outlives the token that authorised it.
	tokenLeft := int(claims.ExpiresAt.Sub(now) / time.Second)
	// The location service runs this on the AOR's live bindings, with no
	// other change to the AOR in between, and returns the bindings only
	// once the change is durable: the 200 below acknowledges nothing a
	// crash could lose.
	// Each contact's binding key (its URI as written), made once.
	keys := make([]string, len(contacts))
	for i := range contacts {
		keys[i] = contacts[i].Address.String()
	}
	bindings, err := g.d.Location.Update(ctx, aor, func(existing []store.Registration) (bindingChange, error) {
		var ch bindingChange
		if err := checkOrdering(existing, keys, callID, cseq); err != nil {
			return ch, err
		}
		if n := newBindings(existing, contacts, keys, defExpires); n > maxBindingsPerAOR {
			return ch, Forbidden(fmt.Errorf("too many bindings for %s: at most %d", aor, maxBindingsPerAOR))
		}
		for i, c := range contacts {
			exp := min(contactExpires(c, defExpires), g.cfg.MaxRegisterExpires, max(tokenLeft, 0))
			contact := keys[i]
			if exp == 0 {
				ch.Delete = append(ch.Delete, contact)
				continue
			}
			ch.Put = append(ch.Put, store.Registration{
				AOR: aor, Contact: contact, Device: dev.Name, Path: path, CallID: callID, CSeq: cseq,
				ExpiresAt: now.Add(time.Duration(exp) * time.Second), MRA: p.MRA(), Edge: edge,
				Node: g.cfg.Node, Source: req.Source(), UpdatedAt: now,
			})
		}
		return ch, nil
	})
	if err != nil {
		return nil, err
	}
	if p.log.Enabled(ctx, slog.LevelDebug) { // the attributes cost allocations on every REGISTER
		p.log.Debug("REGISTER accepted", "aor", aor, "device", dev.Name, "mra", p.MRA(), "edge", edge, "contacts", len(contacts), "tok", sipx.Fingerprint(claims.ID), reqid.Attr, rid)
	}
	return okResponse(p, req, bindings, now), nil
}

// okResponse lists the AOR's current bindings with their remaining expiry
// (RFC 3261 §10.3 step 8) and echoes Path (RFC 3327 §5.3). The bindings
// are the location service's, after the request's changes.
func okResponse(p *Port, req *sip.Request, regs []store.Registration, now time.Time) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range regs {
		left := int(b.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
		res.AppendHeader(sip.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(left)))
	}
	// RFC 3327 §5.3: echo the stored Path to a UA that supports it.
	if p.MRA() && supports(req, "path") {
		for _, v := range sipx.HeaderValues(req, "Path") {
			res.AppendHeader(sip.NewHeader("Path", v))
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
// keys are the request's contact URIs as written.
func checkOrdering(existing []store.Registration, keys []string, callID string, cseq uint32) error {
	for _, b := range existing {
		if b.CallID != callID || b.CSeq < cseq {
			continue
		}
		for _, k := range keys {
			if k == b.Contact {
				return &Refusal{Status: 500, Reason: "Server Internal Error",
					Err: fmt.Errorf("CSeq %d is not higher than %d already seen on this Call-ID (RFC 3261 §10.3 step 7)", cseq, b.CSeq)}
			}
		}
	}
	return nil
}

// newBindings counts the bindings the AOR would have after the request.
func newBindings(existing []store.Registration, contacts []sip.ContactHeader, keys []string, defExpires int) int {
	seen := make(map[string]bool, len(existing)+len(contacts))
	for _, b := range existing {
		seen[b.Contact] = true
	}
	for i, c := range contacts {
		seen[keys[i]] = contactExpires(c, defExpires) > 0
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
