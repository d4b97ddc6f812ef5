package edge

import (
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/sipx"
)

// Drain (issue 12 §2). The listeners are closed by the assembler
// (internal/node gates them); what arrives on connections already open is
// decided here, once StartDrain has been called:
//   - a new call from a phone (an initial INVITE: no To-tag) is answered
//     503 Service Unavailable with Retry-After (RFC 3261 §21.5.4, §20.33),
//     so the phone tries another edge of its list (RFC 3263 §4.3) instead
//     of starting a call the drain would cut;
//   - requests inside a dialog (ACK, BYE, re-INVITE, UPDATE, INFO…) go on
//     as always, so the calls up can end;
//   - REGISTER goes on too: the binding names this connection's flow
//     (RFC 5626), and refusing its refresh would make a phone in a call
//     re-register elsewhere mid-call for nothing: when the drain ends the
//     connection closes and the phone's flow recovery (RFC 5626 §4.5)
//     registers it through another edge;
//   - calls from the core to a phone registered here are still delivered:
//     this edge is the only way to the phone until its connection closes;
//   - a new TURN allocation, on UDP too, is refused (edge/relay/quota.go reserve:
//     508 Insufficient Capacity) or redirected with 300 Try Alternate when
//     turn.alternate_servers names other edges (edge/relay/alternate.go);
//     live allocations keep relaying, refreshing and binding channels.

// DrainRetryAfter is the Retry-After (seconds) of the 503 a new call gets
// during a drain: soon, and by then at another edge.
const DrainRetryAfter = sipx.DrainRetryAfter

// StartDrain makes the edge refuse new calls and new TURN allocations on
// what is already open (see above). It cannot be undone: a drain ends with
// the process.
func (s *Server) StartDrain() {
	if !s.draining.Swap(true) {
		s.log.Info("drain: refusing new calls (503) and new TURN allocations; dialogs, registrations and live allocations go on")
	}
}

// Draining reports whether StartDrain has been called.
func (s *Server) Draining() bool { return s.draining.Load() }

// refuseDraining answers a new call during a drain: 503 with Retry-After
// and Reason "draining".
func (f *SIPFront) refuseDraining(req *sip.Request, tx sip.ServerTransaction) {
	f.log.Debug("new call refused: the edge is draining", "src", req.Source())
	f.m.Refused(metrics.EdgeDraining)
	_ = tx.Respond(sipx.DrainingResponse(req))
}
