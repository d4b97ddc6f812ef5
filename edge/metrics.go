package edge

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeway/edgeway/internal/metrics"
)

// Metrics are this edge's Prometheus metrics (internal/metrics), on a
// registry of its own; the operations address serves them.
func (s *Server) Metrics() *metrics.Edge { return s.metrics }

// ErrNoCoreUp: readiness fails while no core of the list is up.
var ErrNoCoreUp = errors.New("no core of the list is up")

// ErrNoCoreChecked: readiness fails until a health check has found a core
// of the list up. A core counts as up until its checks fail
// (edge/cores.go), which must not make an edge that has not reached one
// yet look ready.
var ErrNoCoreChecked = errors.New("no core health-checked yet")

// Ready reports whether this edge can serve phones: a core of its list is
// up and has answered at least one health check (edge/cores.go, the first
// round runs as Serve starts; /readyz, issue 12 §2).
func (s *Server) Ready() error {
	cores := s.Cores()
	up := false
	for _, c := range cores {
		if c.Up && c.Passed > 0 {
			return nil
		}
		up = up || c.Up
	}
	if up {
		return fmt.Errorf("%w (%d configured)", ErrNoCoreChecked, len(cores))
	}
	return fmt.Errorf("%w (%d configured)", ErrNoCoreUp, len(cores))
}

// edgeCollector reads what the edge keeps itself at scrape time: flows
// and dialogs of the SIP front, the TURN relay's allocations and
// counters, the health of each core. Nothing here is touched per packet
// or per request beyond the atomic counters the relay already had.
type edgeCollector struct{ s *Server }

var (
	descFlows      = prometheus.NewDesc("edgeway_edge_registered_flows", "Phones' connections registered through this edge (RFC 5626 flows).", nil, nil)
	descDialogs    = prometheus.NewDesc("edgeway_edge_dialogs", "Call legs this edge routes for its phones.", nil, nil)
	descSIPBad     = prometheus.NewDesc("edgeway_edge_sip_malformed_total", "SIP messages refused (400) or dropped for a missing, duplicated or malformed mandatory header (RFC 3261 §8.2).", []string{"action"}, nil)
	descAllocs     = prometheus.NewDesc("edgeway_edge_turn_allocations", "Live TURN allocations (relay sockets).", nil, nil)
	descPackets    = prometheus.NewDesc("edgeway_edge_turn_relayed_packets_total", "Datagrams the TURN relay relayed, by direction (to_peer, from_peer).", []string{"direction"}, nil)
	descBytes      = prometheus.NewDesc("edgeway_edge_turn_relayed_bytes_total", "Bytes of the datagrams the TURN relay relayed, by direction (to_peer, from_peer).", []string{"direction"}, nil)
	descTURNRefuse = prometheus.NewDesc("edgeway_edge_turn_refusals_total",
		"TURN requests and datagrams refused, by reason: peer_policy (403 permission/channel/connect), peer_denied (datagram to a refused peer), over_bitrate (datagram dropped), capacity (turn.max_allocations), device_quota, redirected (300 Try Alternate), draining (508: a new allocation while the edge drains).", []string{"reason"}, nil)
	// The TURN UDP listener's socket work when turn.batch_io batches it
	// (internal/udpbatch): datagrams per system call is datagrams_total
	// over syscalls_total, by direction.
	descUDPDatagrams = prometheus.NewDesc("edgeway_edge_turn_udp_datagrams_total", "Datagrams the TURN UDP listener read and wrote (turn.batch_io), by direction (read, write).", []string{"direction"}, nil)
	descUDPSyscalls  = prometheus.NewDesc("edgeway_edge_turn_udp_syscalls_total", "System calls (recvmmsg, sendmmsg, sendto) that moved those datagrams (turn.batch_io), by direction (read, write).", []string{"direction"}, nil)
	descUDPDrops     = prometheus.NewDesc("edgeway_edge_turn_udp_drops_total",
		"Datagrams of the TURN UDP listener lost (turn.batch_io), by reason: write_error (the kernel refused it, or it was queued at close), queue_full (the write queue was full), truncated (longer than the read buffer).", []string{"reason"}, nil)
	descUDPWaits      = prometheus.NewDesc("edgeway_edge_turn_udp_write_waits_total", "Writes to the TURN UDP listener that waited for room in its write queue (turn.batch_io).", nil, nil)
	descCoreUp        = prometheus.NewDesc("edgeway_edge_core_up", "1 while the core is in use by this edge (health checks pass), by core URL.", []string{"core"}, nil)
	descCoreConnected = prometheus.NewDesc("edgeway_edge_core_connected", "1 while the edge holds an MRA connection to the core, by core URL.", []string{"core"}, nil)
	descCoreChecks    = prometheus.NewDesc("edgeway_edge_core_health_checks_passed_total", "Health checks the core answered since the edge started, by core URL.", []string{"core"}, nil)
)

func (c edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFlows, descDialogs, descSIPBad, descAllocs, descPackets, descBytes, descTURNRefuse, descUDPDatagrams, descUDPSyscalls, descUDPDrops, descUDPWaits, descCoreUp, descCoreConnected, descCoreChecks} {
		ch <- d
	}
}

func (c edgeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	if f := c.s.SIP(); f != nil {
		gauge(descFlows, float64(f.Flows()))
		gauge(descDialogs, float64(f.Dialogs()))
		counter(descSIPBad, f.Refused(), "refused")
		counter(descSIPBad, f.Dropped(), "dropped")
	}
	if t := c.s.TURN(); t != nil {
		gauge(descAllocs, float64(t.Allocations()))
		to, from := t.Relayed()
		counter(descPackets, to, "to_peer")
		counter(descPackets, from, "from_peer")
		to, from = t.RelayedBytes()
		counter(descBytes, to, "to_peer")
		counter(descBytes, from, "from_peer")
		r := t.Refusals()
		counter(descTURNRefuse, r.PeerPolicy, "peer_policy")
		counter(descTURNRefuse, r.PeerDenied, "peer_denied")
		counter(descTURNRefuse, r.OverBitrate, "over_bitrate")
		counter(descTURNRefuse, r.Capacity, "capacity")
		counter(descTURNRefuse, r.DeviceQuota, "device_quota")
		counter(descTURNRefuse, r.Redirected, "redirected")
		counter(descTURNRefuse, r.Draining, "draining")
		if u, ok := t.UDPStats(); ok {
			counter(descUDPDatagrams, u.DatagramsRead, "read")
			counter(descUDPDatagrams, u.DatagramsWritten, "write")
			counter(descUDPSyscalls, u.ReadSyscalls, "read")
			counter(descUDPSyscalls, u.WriteSyscalls, "write")
			counter(descUDPDrops, u.WriteErrors, "write_error")
			counter(descUDPDrops, u.WriteDrops, "queue_full")
			counter(descUDPDrops, u.Truncated, "truncated")
			counter(descUDPWaits, u.WriteWaits)
		}
	}
	for _, cs := range c.s.Cores() {
		gauge(descCoreUp, b2f(cs.Up), cs.URL)
		gauge(descCoreConnected, b2f(cs.Connected), cs.URL)
		counter(descCoreChecks, cs.Passed, cs.URL)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
