package sipx

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/reqid"
)

// ErrTooManyHops is RFC 3261 §16.3 step 3: Max-Forwards reached zero.
var ErrTooManyHops = errors.New("sip: Max-Forwards exhausted")

// PrepareForward copies req for forwarding by a proxy (RFC 3261 §16.6):
// Max-Forwards is decremented (added as 69 when missing); nothing else.
// req is left as it is. The copy has req's destination only if one was
// set on req: the caller names the next hop (SetDestination).
func PrepareForward(req *sip.Request) (*sip.Request, error) {
	if mf := req.MaxForwards(); mf != nil && mf.Val() <= 1 {
		return nil, ErrTooManyHops
	}
	fwd := forwardCopy(req)
	if mf := fwd.MaxForwards(); mf != nil {
		// sipgo's Clone shares the Max-Forwards value with req (its
		// headerClone returns the same pointer): a new one, not Dec.
		n := sip.MaxForwardsHeader(mf.Val() - 1)
		fwd.ReplaceHeader(&n)
	} else {
		mf := sip.MaxForwardsHeader(69)
		fwd.AppendHeader(&mf)
	}
	return fwd, nil
}

// forwardCopy is req.Clone() without what forwarding throws away: the
// destination Clone works out from the top Route or Request-URI (with
// fmt.Sprintf) before the proxy has chosen the next hop, and Clone's
// second copy of the Request-URI's parameters. Headers are cloned as
// Clone clones them.
func forwardCopy(req *sip.Request) *sip.Request {
	fwd := sip.NewRequest(req.Method, req.Recipient) // copies the URI's parameters
	fwd.SipVersion = req.SipVersion
	for _, h := range req.Headers() {
		fwd.AppendHeader(sip.HeaderClone(h))
	}
	fwd.SetBody(slices.Clone(req.Body()))
	fwd.SetTransport(req.Transport())
	fwd.SetSource(req.Source())
	fwd.SetDestination(req.MessageData.Destination()) // as set, not worked out
	fwd.Laddr = req.Laddr
	return fwd
}

// PopRoute removes the top Route header of req when self reports that it
// names this proxy (loose routing, RFC 3261 §16.4), and says whether it did.
func PopRoute(req *sip.Request, self func(sip.Uri) bool) bool {
	r := req.Route()
	if r == nil || !self(r.Address) {
		return false
	}
	req.RemoveHeader("Route")
	return true
}

// Relay sends fwd to its destination in a client transaction and relays
// every response to tx, without this proxy's Via (RFC 3261 §16.7). When the
// upstream cancels an INVITE, a CANCEL follows downstream (§16.10). rewrite,
// when set, may change a response before it goes upstream. It returns the
// final response, or nil when none came (a 408/503 has then been sent).
// A response that fails CheckResponse is dropped, never relayed: a bad
// provisional is skipped, a bad final one is answered 502 Bad Gateway
// upstream (RFC 3261 §21.5.3) and nil returned.
func (g *Guard) Relay(ctx context.Context, client *sipgo.Client, tx sip.ServerTransaction, req, fwd *sip.Request, rewrite func(*sip.Response)) *sip.Response {
	return g.relay(ctx, client, tx, req, fwd, rewrite, 503, "Service Unavailable")
}

// RelayToFlow is Relay for a request sent down a phone's flow (RFC 5626):
// when the connection cannot be written or closes before a final
// response, the answer upstream is 430 Flow Failed (§5.3, §11.6), which
// the core turns into 480 for the caller, rather than 503 or a 408 after
// Timer B.
func (g *Guard) RelayToFlow(ctx context.Context, client *sipgo.Client, tx sip.ServerTransaction, req, fwd *sip.Request, rewrite func(*sip.Response)) *sip.Response {
	return g.relay(ctx, client, tx, req, fwd, rewrite, 430, "Flow Failed")
}

// relay answers failCode when the next hop's connection fails.
func (g *Guard) relay(ctx context.Context, client *sipgo.Client, tx sip.ServerTransaction, req, fwd *sip.Request, rewrite func(*sip.Response), failCode int, failReason string) *sip.Response {
	log := g.log
	ctx, cancel := context.WithTimeout(ctx, 64*500*time.Millisecond) // Timer B/F
	defer cancel()
	// An upstream CANCEL is listened for before the INVITE goes on: one
	// that arrives in between would otherwise be missed (sipgo's OnCancel
	// does not call back for a CANCEL it already answered), leaving the
	// call ringing downstream until Timer B.
	var cancelled chan struct{}
	if fwd.IsInvite() {
		cancelled = make(chan struct{})
		var once sync.Once
		if !tx.OnCancel(func(*sip.Request) { once.Do(func() { close(cancelled) }) }) {
			// Cancelled (sipgo has answered 487) or ended already:
			// nothing to forward.
			return nil
		}
	}
	down, err := client.TransactionRequest(ctx, fwd, sipgo.ClientRequestAddVia)
	if err != nil {
		log.Warn("next hop unreachable", "dest", fwd.Destination(), "method", fwd.Method, "err", err, reqid.Attr, reqid.FromTx(tx))
		Respond(tx, req, failCode, failReason, nil)
		return nil
	}
	defer down.Terminate()
	// A CANCEL goes downstream once the upstream cancelled and a
	// provisional response came (RFC 3261 §9.1: not before one), at most
	// once.
	provisional, cancelWanted := false, false
	sendCancel := func() {
		c := cancelFor(fwd)
		go func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 32*time.Second)
			defer ccancel()
			if ctx, err := client.TransactionRequest(cctx, c, noBuild); err == nil {
				defer ctx.Terminate()
				select {
				case <-ctx.Responses():
				case <-ctx.Done():
				case <-cctx.Done():
				}
			}
		}()
	}
	for {
		select {
		case <-cancelled:
			cancelled, cancelWanted = nil, true
			if provisional {
				sendCancel()
			} // else sent with the first provisional
		case res := <-down.Responses():
			if res.IsProvisional() && !provisional {
				provisional = true
				if cancelWanted {
					sendCancel()
				}
			}
			back, err := g.Upstream(fwd, res, rewrite)
			if err != nil {
				if res.IsProvisional() {
					continue
				}
				Respond(tx, req, 502, "Bad Gateway", nil)
				return nil
			}
			if err := tx.Respond(back); err != nil {
				log.Debug("relaying response upstream", "status", res.StatusCode, "err", err, reqid.Attr, reqid.FromTx(tx))
			}
			if !res.IsProvisional() {
				return res
			}
		case <-down.Done():
			if errors.Is(down.Err(), sip.ErrTransactionTransport) {
				// The connection closed under the transaction.
				log.Info("next hop's connection failed", "dest", fwd.Destination(), "method", fwd.Method, "err", down.Err(), reqid.Attr, reqid.FromTx(tx))
				Respond(tx, req, failCode, failReason, nil)
				return nil
			}
			log.Warn("no final response from next hop", "dest", fwd.Destination(), "method", fwd.Method, "err", down.Err(), reqid.Attr, reqid.FromTx(tx))
			Respond(tx, req, 408, "Request Timeout", nil)
			return nil
		case <-ctx.Done():
			Respond(tx, req, 408, "Request Timeout", nil)
			return nil
		}
	}
}

// Upstream is what a proxy does to each response to fwd before relaying
// it (RFC 3261 §16.7): check it (CheckResponse; an error means drop it),
// then copy it without this proxy's Via, the top one, and let rewrite,
// when set, change the copy. res itself is left as it came.
func (g *Guard) Upstream(fwd *sip.Request, res *sip.Response, rewrite func(*sip.Response)) (*sip.Response, error) {
	if err := g.CheckResponse(fwd, res); err != nil {
		return nil, err
	}
	back := withoutTopVia(res)
	if rewrite != nil {
		rewrite(back)
	}
	return back, nil
}

// withoutTopVia is res.Clone() then RemoveHeader("Via"), without cloning
// the Via only to drop it, and without the destination Clone works out
// from it (fmt.Sprintf of the Via's host and port): the copy is relayed
// by a server transaction, which writes on its own connection.
func withoutTopVia(res *sip.Response) *sip.Response {
	back := sip.NewResponse(res.StatusCode, res.Reason)
	back.SipVersion = res.SipVersion
	dropped := false
	for _, h := range res.Headers() {
		if !dropped && h.Name() == "Via" {
			dropped = true // ours, the top one
			continue
		}
		back.AppendHeader(sip.HeaderClone(h))
	}
	back.SetBody(res.Body())
	back.SetTransport(res.Transport())
	back.SetSource(res.Source())
	return back
}

// noBuild sends a request as it is (it already has its Via).
func noBuild(*sipgo.Client, *sip.Request) error { return nil }

// cancelFor builds the CANCEL of a forwarded INVITE: same Request-URI,
// top Via, From, To, Call-ID, Route, and CSeq number (RFC 3261 §9.1).
func cancelFor(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(sip.HeaderClone(inv.Via()))
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	sip.CopyHeaders("Route", inv, c)
	c.SetDestination(inv.Destination())
	c.SetTransport(inv.Transport())
	c.SetBody(nil)
	return c
}

// SendStateless forwards a request that has no transaction (an ACK for a
// 2xx, RFC 3261 §16.11) with this proxy's Via.
func SendStateless(client *sipgo.Client, fwd *sip.Request) error {
	return client.WriteRequest(fwd, sipgo.ClientRequestAddVia)
}

// HasConnection reports whether ua holds an open TLS connection to addr:
// proxies send to phones only over the flow the phone opened, never by
// dialing the address a phone wrote.
func HasConnection(ua *sipgo.UserAgent, addr string) bool {
	c, err := ua.TransportLayer().GetConnection("tls", addr)
	return err == nil && c != nil
}
