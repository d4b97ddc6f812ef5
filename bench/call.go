package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Call is one call of a simulated phone, placed or answered.
type Call struct {
	// RemoteSDP is the other side's session description (offer or answer).
	RemoteSDP []byte
	// Status is the final response to the INVITE (placed calls).
	Status int

	client   *sipgo.DialogClientSession
	server   *sipgo.DialogServerSession
	localSDP []byte // what this side offered or answered
	done     chan struct{}
	once     sync.Once

	mu       sync.Mutex
	received []sip.RequestMethod // in-dialog requests from the other side, but BYE and ACK
}

// Received lists the in-dialog requests (re-INVITE, UPDATE, INFO,
// OPTIONS, …) the other side sent, in order.
func (c *Call) Received() []sip.RequestMethod {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sip.RequestMethod(nil), c.received...)
}

// Request sends an in-dialog request (RFC 3261 §12.2.1.1) along the
// call's route set and returns the final response. A re-INVITE carries
// the call's SDP again (a session refresh) and is ACKed on 2xx.
func (c *Call) Request(ctx context.Context, method sip.RequestMethod) (*sip.Response, error) {
	var target sip.Uri
	switch {
	case c.client != nil && c.client.InviteResponse != nil && c.client.InviteResponse.Contact() != nil:
		target = c.client.InviteResponse.Contact().Address
	case c.server != nil && c.server.InviteRequest.Contact() != nil:
		target = c.server.InviteRequest.Contact().Address
	default:
		return nil, errors.New("phone: the call has no remote target")
	}
	req := sip.NewRequest(method, target)
	if method == sip.INVITE || method == sip.UPDATE {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		req.SetBody(c.localSDP)
	}
	do, write := c.doers()
	res, err := do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("phone: in-dialog %s: %w", method, err)
	}
	if method == sip.INVITE && res.IsSuccess() {
		if err := write(sip.NewRequest(sip.ACK, target)); err != nil {
			return res, fmt.Errorf("phone: ACK of re-INVITE: %w", err)
		}
	}
	return res, nil
}

func (c *Call) doers() (func(context.Context, *sip.Request) (*sip.Response, error), func(*sip.Request) error) {
	if c.client != nil {
		return c.client.Do, c.client.WriteRequest
	}
	return c.server.Do, c.server.WriteRequest
}

func (c *Call) record(m sip.RequestMethod) {
	c.mu.Lock()
	c.received = append(c.received, m)
	c.mu.Unlock()
}

// Done is closed when the call ends, by either side.
func (c *Call) Done() <-chan struct{} { return c.done }

func (c *Call) end() { c.once.Do(func() { close(c.done) }) }

// Hangup sends BYE (RFC 3261 §15).
func (c *Call) Hangup(ctx context.Context) error {
	defer c.end()
	var err error
	switch {
	case c.client != nil:
		err = c.client.Bye(ctx)
	case c.server != nil:
		err = c.server.Bye(ctx)
	}
	return err
}

// Answerer decides how an incoming call is answered: the SDP answer to
// send with 200 OK, or a status to refuse with (e.g. 486).
type Answerer func(offer []byte) (answer []byte, refuse int)

func (p *Phone) contactHeader() sip.ContactHeader {
	var u sip.Uri
	_ = sip.ParseUri(p.contact, &u)
	return sip.ContactHeader{Address: u}
}

// initCalls makes the phone able to receive calls on the connection it
// keeps to the edge (or core): a server on the same user agent.
func (p *Phone) initCalls() error {
	srv, err := sipgo.NewServer(p.ua)
	if err != nil {
		return err
	}
	p.srv = srv
	p.dialogsOut = sipgo.NewDialogClientCache(p.client, p.contactHeader())
	p.dialogsIn = sipgo.NewDialogServerCache(p.client, p.contactHeader())
	p.incoming = make(chan *Call, 8)
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.dialogsIn.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dialogsIn.ReadBye(req, tx); err == nil {
			p.endCall(req)
			return
		}
		if err := p.dialogsOut.ReadBye(req, tx); err == nil {
			p.endCall(req)
			return
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	})
	srv.OnUpdate(p.onInDialog)
	srv.OnInfo(p.onInDialog)
	srv.OnOptions(p.onInDialog)
	return nil
}

// onInDialog answers a request within a call (UPDATE, INFO, OPTIONS,
// re-INVITE) with 200, and an offer with the call's SDP; 481 outside one
// (RFC 3261 §12.2.2).
func (p *Phone) onInDialog(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	c := p.calls[req.CallID().Value()]
	p.mu.Unlock()
	if c == nil || !hasTag(req) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	c.record(req.Method)
	var body []byte
	if len(req.Body()) > 0 && (req.IsInvite() || req.Method == sip.UPDATE) {
		body = c.localSDP
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	h := p.contactHeader()
	res.AppendHeader(&h)
	_ = tx.Respond(res)
}

func hasTag(req *sip.Request) bool {
	if to := req.To(); to != nil {
		_, ok := to.Params.Get("tag")
		return ok
	}
	return false
}

func (p *Phone) endCall(req *sip.Request) {
	p.mu.Lock()
	c := p.calls[req.CallID().Value()]
	delete(p.calls, req.CallID().Value())
	p.mu.Unlock()
	if c != nil {
		c.end()
	}
}

// SetAnswerer sets how incoming calls are answered (nil: 486 Busy Here).
func (p *Phone) SetAnswerer(a Answerer) {
	p.mu.Lock()
	p.answerer = a
	p.mu.Unlock()
}

// SetRefusalHeaders sets headers added to every refusal an Answerer asks
// for (a Retry-After, a Reason), as a phone of another make might send.
func (p *Phone) SetRefusalHeaders(hs ...sip.Header) {
	p.mu.Lock()
	p.refusalHdr = hs
	p.mu.Unlock()
}

// Incoming delivers calls this phone answered.
func (p *Phone) Incoming() <-chan *Call { return p.incoming }

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if hasTag(req) { // a re-INVITE
		p.onInDialog(req, tx)
		return
	}
	p.mu.Lock()
	answer, refusalHdr := p.answerer, p.refusalHdr
	p.mu.Unlock()
	ds, err := p.dialogsIn.ReadInvite(req, tx)
	if err != nil {
		return
	}
	if answer == nil {
		_ = ds.Respond(486, "Busy Here", nil)
		return
	}
	sdp, refuse := answer(req.Body())
	if refuse != 0 {
		_ = ds.Respond(refuse, "Refused", nil, refusalHdr...)
		return
	}
	_ = ds.Respond(180, "Ringing", nil)
	c := &Call{RemoteSDP: req.Body(), server: ds, localSDP: sdp, done: make(chan struct{}), Status: 200}
	p.mu.Lock()
	p.calls[req.CallID().Value()] = c
	p.mu.Unlock()
	if err := ds.Respond(200, "OK", sdp, sip.NewHeader("Content-Type", "application/sdp")); err != nil {
		c.end()
		return
	}
	select {
	case p.incoming <- c:
	default:
	}
}

// ErrCallRefused is a placed call that got a final non-2xx answer.
var ErrCallRefused = errors.New("call refused")

// RefusedError is the final non-2xx answer to a placed call; it is
// ErrCallRefused.
type RefusedError struct {
	Status int
	Reason string
	// RetryAfter is the answer's Retry-After value ("" without one;
	// RFC 3261 §20.33): when a 503's sender says to try again.
	RetryAfter string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v: %d %s", ErrCallRefused, e.Status, e.Reason)
}

func (e *RefusedError) Is(target error) bool { return target == ErrCallRefused }

// Dial calls line (in the phone's domain) with an SDP offer, through the
// edge (or the core on premises), with the phone's bearer token. It
// returns when the call is answered (200 OK, ACK sent) or refused.
func (p *Phone) Dial(ctx context.Context, line string, offer []byte) (*Call, error) {
	to := sip.Uri{Scheme: "sip", User: line, Host: p.cfg.Domain}
	req := sip.NewRequest(sip.INVITE, to)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.Line, Host: p.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", randHex(6))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	ch := p.contactHeader()
	req.AppendHeader(&ch)
	req.AppendHeader(sip.NewHeader("Authorization", "Bearer "+p.Tokens().AccessToken))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	// The edge (or core) as a pre-loaded Route (RFC 3261 §8.1.2): CANCEL and
	// ACK copy it, so they go where the INVITE went and never to the
	// domain's name.
	edge := p.Edge().SIP
	req.AppendHeader(sip.NewHeader("Route", fmt.Sprintf("<sip:%s;transport=tls;lr>", edge)))
	req.SetDestination(edge)
	req.SetTransport("TLS")
	sess, err := p.dialogsOut.WriteInvite(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("phone %s: INVITE: %w", p.cfg.Device, err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			re := &RefusedError{Status: de.Res.StatusCode, Reason: de.Res.Reason}
			if h := de.Res.GetHeader("Retry-After"); h != nil {
				re.RetryAfter = h.Value()
			}
			return &Call{Status: de.Res.StatusCode, done: closedChan()}, re
		}
		return nil, fmt.Errorf("phone %s: waiting for an answer: %w", p.cfg.Device, err)
	}
	if err := sess.Ack(ctx); err != nil {
		return nil, fmt.Errorf("phone %s: ACK: %w", p.cfg.Device, err)
	}
	c := &Call{RemoteSDP: sess.InviteResponse.Body(), Status: sess.InviteResponse.StatusCode, client: sess, localSDP: offer, done: make(chan struct{})}
	p.mu.Lock()
	p.calls[req.CallID().Value()] = c
	p.mu.Unlock()
	return c, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
