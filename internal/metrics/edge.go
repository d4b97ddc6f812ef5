package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Edge SIP refusal reasons (edgeway_edge_sip_refusals_total): what the edge
// answers itself, before or instead of a core.
const (
	EdgeNoCredentials   = iota // 401: no Authorization (RFC 8898)
	EdgeInvalidToken           // 401 invalid_token: signature, issuer, audience or expiry (S-2)
	EdgeKeysUnavailable        // 503: the core's keys could not be fetched to check the token
	EdgeNoCore                 // 503: no core of the list is up
	EdgeTooManyHops            // 483: Max-Forwards exhausted (RFC 3261 §16.6)
	EdgeDraining               // 503 + Retry-After: a new call on an open connection while the edge drains (RFC 3261 §21.5.4)
	edgeReasons
)

var edgeReasonNames = [edgeReasons]string{"no_credentials", "invalid_token", "keys_unavailable", "no_core", "too_many_hops", "draining"}

// Edge is an edge node's metrics: the counters its SIP front moves, on a
// registry of its own; the edge adds a collector for what it keeps itself
// (TURN, flows, cores).
type Edge struct {
	Reg *prometheus.Registry
	// Register counts the final answers to phones' REGISTERs, whether the
	// edge or a core gave them.
	Register *Codes
	refusals [edgeReasons]prometheus.Counter
	// activations: attempts passed on to a core, and throttled at the
	// edge (its failure budget, issue 9).
	activations, throttled prometheus.Counter
}

// NewEdge builds an edge's metrics on a registry of its own.
func NewEdge() *Edge {
	r := NewRegistry()
	m := &Edge{Reg: r}
	reg := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_edge_register_responses_total",
		Help: "Final answers to phones' REGISTER requests at the edge (its own or a core's, relayed), by status code."}, []string{"code"})
	ref := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_edge_sip_refusals_total",
		Help: "SIP requests the edge refused itself, by reason: no_credentials, invalid_token (RFC 8898, S-2), keys_unavailable, no_core, too_many_hops, draining (a new call while the edge drains)."}, []string{"reason"})
	act := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_edge_activation_attempts_total",
		Help: "Activation-code grants through the edge, by result: attempted (every one), throttled (429 slow_down: the edge's failure budget is spent, issue 9)."}, []string{"result"})
	r.MustRegister(reg, ref, act)
	m.activations, m.throttled = act.WithLabelValues("attempted"), act.WithLabelValues("throttled")
	m.Register = newCodes(reg)
	for i, n := range edgeReasonNames {
		m.refusals[i] = ref.WithLabelValues(n)
	}
	return m
}

// Refused counts a request the edge refused (an Edge… reason).
func (m *Edge) Refused(reason int) {
	if m != nil && reason >= 0 && reason < edgeReasons {
		m.refusals[reason].Inc()
	}
}

// RegisterCodes is the REGISTER answer counter, nil for a nil m.
func (m *Edge) RegisterCodes() *Codes {
	if m == nil {
		return nil
	}
	return m.Register
}

// Activation counts an activation grant through the edge (attempted) or
// one the edge throttled (attempted false).
func (m *Edge) Activation(attempted bool) {
	switch {
	case m == nil:
	case attempted:
		m.activations.Inc()
	default:
		m.throttled.Inc()
	}
}
