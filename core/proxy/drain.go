package proxy

import (
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/sipx"
)

// DrainRetryAfter is the Retry-After (seconds) of the 503s a draining node
// answers (issue 12 §2).
const DrainRetryAfter = sipx.DrainRetryAfter

// draining reports whether the node drains (Deps.Draining).
func (x *Proxy) draining() bool { return x.d.Draining != nil && x.d.Draining() }

// refuseDraining answers 503 Service Unavailable with Retry-After
// (RFC 3261 §21.5.4, §20.33) and Reason "draining" (RFC 3326) while the
// node drains: to an edge's health check OPTIONS, so the edge takes this
// node out at once and sends new work to the next core of its list
// (edge/cores.go), and to a new call, which would outlive the drain.
// Requests inside a dialog and REGISTERs are served.
func refuseDraining(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sipx.DrainingResponse(req))
}
