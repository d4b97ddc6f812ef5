package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Grant label values (edgeway_core_tokens_*): the OAuth grant types the
// token endpoint serves, "other" for anything else (bounded cardinality).
const (
	GrantActivation = "activation_code"
	GrantRefresh    = "refresh_token"
	GrantPassword   = "password"
	GrantOther      = "other"
)

var grants = [...]string{GrantActivation, GrantRefresh, GrantPassword, GrantOther}

// tokenErrors are the RFC 6749 §5.2 error codes the token endpoint
// answers; anything else counts as "other".
var tokenErrors = [...]string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
	"unsupported_grant_type", "invalid_scope", "access_denied", "slow_down", "temporarily_unavailable", "other"}

// MRA peer refusal reasons (edgeway_core_mra_peers_refused_total).
const (
	PeerNotConfigured = iota // trusted chain, names match no Expressway-C entry (S-12)
	PeerUntrusted            // handshake failed: no certificate, untrusted chain, TLS error (S-11)
	PeerConnLimit            // the listener's connection cap (issue 9 item 11)
	peerReasons
)

var peerReasonNames = [peerReasons]string{"not_configured", "handshake", "conn_limit"}

// Core is a core node's metrics.
type Core struct {
	Reg *prometheus.Registry

	// RegisterPhone and RegisterMRA count REGISTER answers on the Phone
	// OAuth and MRA ports by status code.
	RegisterPhone, RegisterMRA *Codes
	// InvitePhone and InviteMRA count new calls (INVITEs that start a
	// dialog) the core refused, by port and status code.
	InvitePhone, InviteMRA *Codes
	// configRefused counts config downloads (6971) refused, by file kind
	// and HTTP status.
	configRefused *prometheus.CounterVec

	issued        [len(grants)]prometheus.Counter
	refused       [len(grants)][len(tokenErrors)]prometheus.Counter
	activations   [3]prometheus.Counter // redeemed, refused, throttled
	peersAdmitted prometheus.Counter
	peersRefused  [peerReasons]prometheus.Counter
	commit        prometheus.Observer
	commitErrors  prometheus.Counter
}

// NewCore builds a core node's metrics on a registry of its own.
func NewCore() *Core {
	r := NewRegistry()
	m := &Core{Reg: r}
	reg := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_core_register_responses_total",
		Help: "REGISTER requests the core answered, by SIP port (phone_oauth, mra) and final status code."}, []string{"port", "code"})
	issued := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_core_tokens_issued_total",
		Help: "Access tokens the OAuth token endpoint issued, by grant type."}, []string{"grant"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_core_token_refusals_total",
		Help: "Token requests the OAuth token endpoint refused, by grant type and RFC 6749 error code."}, []string{"grant", "error"})
	act := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_core_activation_attempts_total",
		Help: "Activation-code grants (S-17), by result: redeemed, refused, throttled (slow_down)."}, []string{"result"})
	admitted := prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeway_core_mra_peers_admitted_total",
		Help: "MRA-port TLS connections admitted as a configured Expressway-C (S-11, S-12)."})
	peers := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_core_mra_peers_refused_total",
		Help: "MRA-port connections refused, by reason: not_configured (S-12), handshake (S-11 chain or TLS), conn_limit."}, []string{"reason"})
	commit := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "edgeway_core_store_operation_seconds",
		Help:    "Store operation latency by operation (location_commit: one group-commit transaction of bindings).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"op"})
	commitErr := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_core_store_errors_total",
		Help: "Store operations that failed, by operation."}, []string{"op"})
	inv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_core_invite_refusals_total",
		Help: "INVITEs starting a call that the core refused, by SIP port (phone_oauth, mra) and status code."}, []string{"port", "code"})
	m.configRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_core_config_refusals_total",
		Help: "Config downloads (6971) the core refused, by file (device_config, phone_edge_trust) and HTTP status code."}, []string{"file", "code"})
	r.MustRegister(reg, issued, refused, act, admitted, peers, commit, commitErr, inv, m.configRefused)
	m.InvitePhone = newCodes(inv, "port", "phone_oauth")
	m.InviteMRA = newCodes(inv, "port", "mra")
	m.RegisterPhone = newCodes(reg, "port", "phone_oauth")
	m.RegisterMRA = newCodes(reg, "port", "mra")
	for i, g := range grants {
		m.issued[i] = issued.WithLabelValues(g)
		for j, e := range tokenErrors {
			m.refused[i][j] = refused.WithLabelValues(g, e)
		}
	}
	for i, res := range []string{"redeemed", "refused", "throttled"} {
		m.activations[i] = act.WithLabelValues(res)
	}
	m.peersAdmitted = admitted
	for i, n := range peerReasonNames {
		m.peersRefused[i] = peers.WithLabelValues(n)
	}
	m.commit = commit.WithLabelValues("location_commit")
	m.commitErrors = commitErr.WithLabelValues("location_commit")
	return m
}

func grantIndex(grant string) int {
	switch grant {
	case GrantActivation:
		return 0
	case GrantRefresh:
		return 1
	case GrantPassword:
		return 2
	}
	return 3
}

func errorIndex(code string) int {
	for i, e := range tokenErrors[:len(tokenErrors)-1] {
		if e == code {
			return i
		}
	}
	return len(tokenErrors) - 1
}

// RegisterCodes is the REGISTER answer counter of the MRA port (mra) or
// the Phone OAuth port; nil for a nil m.
func (m *Core) RegisterCodes(mra bool) *Codes {
	switch {
	case m == nil:
		return nil
	case mra:
		return m.RegisterMRA
	}
	return m.RegisterPhone
}

// InviteRefusals is the refused-call counter of the MRA port (mra) or the
// Phone OAuth port; nil for a nil m.
func (m *Core) InviteRefusals(mra bool) *Codes {
	switch {
	case m == nil:
		return nil
	case mra:
		return m.InviteMRA
	}
	return m.InvitePhone
}

// Config file label values (edgeway_core_config_refusals_total).
const (
	ConfigDevice         = "device_config"
	ConfigPhoneEdgeTrust = "phone_edge_trust"
)

// ConfigRefused counts a config download refused with HTTP status code
// (file: a Config… constant).
func (m *Core) ConfigRefused(file string, code int) {
	if m == nil {
		return
	}
	if code < 100 || code > 599 {
		code = 0
	}
	m.configRefused.WithLabelValues(file, strconv.Itoa(code)).Inc()
}

// TokenIssued counts a token issued under grant (a Grant… constant).
func (m *Core) TokenIssued(grant string) {
	if m == nil {
		return
	}
	g := grantIndex(grant)
	m.issued[g].Inc()
	if g == 0 {
		m.activations[0].Inc()
	}
}

// TokenRefused counts a token request refused with the RFC 6749 error code.
func (m *Core) TokenRefused(grant, code string) {
	if m == nil {
		return
	}
	g := grantIndex(grant)
	m.refused[g][errorIndex(code)].Inc()
	if g == 0 {
		if code == "slow_down" {
			m.activations[2].Inc()
		} else {
			m.activations[1].Inc()
		}
	}
}

// PeerAdmitted counts an edge admitted on the MRA port.
func (m *Core) PeerAdmitted() {
	if m != nil {
		m.peersAdmitted.Inc()
	}
}

// PeerRefused counts an MRA-port connection refused (a Peer… reason).
func (m *Core) PeerRefused(reason int) {
	if m != nil && reason >= 0 && reason < peerReasons {
		m.peersRefused[reason].Inc()
	}
}

// LocationCommit observes one group-commit transaction of bindings.
func (m *Core) LocationCommit(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.commit.Observe(d.Seconds())
	if err != nil {
		m.commitErrors.Inc()
	}
}
