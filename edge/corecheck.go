package edge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
)

// The SIP side of the core list (edge/cores.go): which core a phone's
// request goes to, and the health checks.

// routeCore is the core that fwd's top Route names (this edge's own entry
// already popped): a request inside a dialog goes to the node holding the
// dialog (RFC 3261 §16.12). Nil when the Route names no core of the list,
// or there is none.
func (f *SIPFront) routeCore(fwd *sip.Request) *coreNode {
	r := fwd.Route()
	if r == nil {
		return nil
	}
	return f.cores.byRoute(sipURI{host: r.Address.Host, port: r.Address.Port})
}

// pickCore is the first core of the list, up ones first, that this edge
// holds a connection to or can open one to now; nil when none can be
// reached. A core it cannot connect to is taken out at once.
func (f *SIPFront) pickCore() *coreNode {
	for _, c := range f.cores.order() {
		if f.connectedTo(c) {
			return c
		}
		ctx, cancel := context.WithTimeout(context.Background(), f.probeTimeout)
		err := f.probe(ctx, c)
		cancel()
		if err == nil {
			return c
		}
		f.cores.fail(c, err)
	}
	return nil
}

// noCore answers a request no core can take: 503 with Retry-After
// (RFC 3261 §21.5.4), so the phone tries again.
func (f *SIPFront) noCore(req *sip.Request, tx sip.ServerTransaction) {
	f.log.Debug("no core reachable", "method", req.Method, "src", req.Source(), reqid.Attr, reqid.FromTx(tx))
	f.m.Refused(metrics.EdgeNoCore)
	res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	res.AppendHeader(sip.NewHeader("Retry-After", "5"))
	_ = tx.Respond(res)
}

// connectedTo reports whether the edge holds a connection to c's MRA port.
func (f *SIPFront) connectedTo(c *coreNode) bool {
	for _, a := range c.addrs {
		if sipx.HasConnection(f.ua, a) {
			return true
		}
	}
	return false
}

// probe sends c an OPTIONS over its MRA connection, opening one if need
// be; concurrent probes of one node share one attempt.
func (f *SIPFront) probe(ctx context.Context, c *coreNode) error {
	_, err, _ := f.cores.probes.Do(c.cfg.MRA, func() (any, error) { return nil, f.options(ctx, c) })
	return err
}

// options is one OPTIONS ping to c's MRA port (RFC 3261 §11), answered
// 200 by a core that is up and admits this edge (S-12: the handshake
// itself fails otherwise). Its top Via names this edge's SIP address,
// which is how the core learns that this connection reaches this edge's
// phones (core/admission Gate.Announce).
func (f *SIPFront) options(ctx context.Context, c *coreNode) error {
	uri := sip.Uri{Scheme: "sip", Host: c.host, Port: c.port, UriParams: sip.NewParams()}
	uri.UriParams.Add("transport", "tls")
	req := sip.NewRequest(sip.OPTIONS, uri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "edge", Host: f.host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", Host: c.host, Port: c.port}, Params: sip.NewParams()})
	req.SetDestination(c.cfg.MRA)
	req.SetTransport("TLS")
	res, err := f.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("OPTIONS to %s: %w", c.cfg.MRA, err)
	}
	if sipx.IsDraining(res) {
		return fmt.Errorf("OPTIONS to %s: %d %s: %w", c.cfg.MRA, res.StatusCode, res.Reason, errCoreDraining)
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("OPTIONS to %s: %d %s", c.cfg.MRA, res.StatusCode, res.Reason)
	}
	return nil
}

// errCoreDraining: the core answered its health check 503 with Reason
// "draining" (sipx.DrainingResponse): it is going away, and is taken out
// at once rather than after core_down_after checks.
var errCoreDraining = errors.New("the core is draining")

// recheckInterval spaces the health checks a draining 503 triggers out of
// schedule (recheckIfDraining): at most one per core per interval.
const recheckInterval = time.Second

// recheckIfDraining runs after a request sent to c was answered: when the
// answer was a 503 saying "draining", it checks c at once, out of
// schedule, instead of waiting for the next round (which may be
// core_health_interval away, and the node out only after core_down_after
// of them). The 503 itself is not believed — it may have been relayed by
// c from a phone — only c's own answer to the OPTIONS is, so a phone
// cannot take a core out; and at most one such check per core runs per
// recheckInterval. It runs in the request's goroutine after the answer
// went to the phone, bounded by the probe timeout.
func (f *SIPFront) recheckIfDraining(c *coreNode, res *sip.Response) {
	if c == nil || !sipx.IsDraining(res) || !f.cores.mayRecheck(c, time.Now(), recheckInterval) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.probeTimeout)
	err := f.probe(ctx, c)
	cancel()
	f.cores.report(c, err)
}

// checkCores health-checks every core each interval, all at once, until
// ctx ends; the first round runs at once.
func (f *SIPFront) checkCores(ctx context.Context, every, timeout time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, c := range f.cores.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, timeout)
				err := f.probe(cctx, c)
				cancel()
				if ctx.Err() == nil {
					f.cores.report(c, err)
				}
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
