package relay

// Metering: what the relay counts, read by the edge's metrics collector
// (edge/metrics.go) at scrape time. Atomic counters, touched per datagram
// or per refusal, safe for concurrent use.

import (
	"sync/atomic"
)

// meter holds the relay's counters.
type meter struct {
	dropped    atomic.Uint64 // datagrams over the bitrate limit
	denied     atomic.Uint64 // datagrams to peers the policy refuses
	refused    atomic.Uint64 // permissions, channels and connections the policy refused (403)
	toPeers    atomic.Uint64 // datagrams relayed from clients to peers
	fromPeers  atomic.Uint64 // datagrams relayed from peers to clients
	toBytes    atomic.Uint64 // bytes of toPeers
	fromBytes  atomic.Uint64 // bytes of fromPeers
	atCap      atomic.Uint64 // allocations refused: turn.max_allocations reached (508)
	quotaHits  atomic.Uint64 // allocations refused: the device's quota (486/508)
	drainHits  atomic.Uint64 // allocations refused: the edge drains (508)
	redirected atomic.Uint64 // allocations answered 300 Try Alternate
}

// Relayed counts the datagrams relayed so far: from clients to peers and
// from peers to clients.
func (t *Server) Relayed() (toPeers, fromPeers uint64) { return t.toPeers.Load(), t.fromPeers.Load() }

// RelayedBytes is the bytes of the datagrams Relayed counts.
func (t *Server) RelayedBytes() (toPeers, fromPeers uint64) {
	return t.toBytes.Load(), t.fromBytes.Load()
}

// DroppedDatagrams counts relayed datagrams dropped by the bitrate limit.
func (t *Server) DroppedDatagrams() uint64 { return t.dropped.Load() }

// DeniedDatagrams counts datagrams an allocation tried to send to a peer
// the policy refuses: the edge's own TURN, SIP or HTTPS ports, the core.
func (t *Server) DeniedDatagrams() uint64 { return t.denied.Load() }

// RefusedPeers counts the CreatePermission, ChannelBind and Connect
// requests refused (403) because of their peer.
func (t *Server) RefusedPeers() uint64 { return t.refused.Load() }

// Refusals are the relay's refusals by reason, as the edge's
// edgeway_edge_turn_refusals_total reports them.
type Refusals struct {
	PeerPolicy  uint64 // 403 to CreatePermission, ChannelBind, Connect
	PeerDenied  uint64 // datagrams to a refused peer, dropped
	OverBitrate uint64 // datagrams beyond turn.max_bitrate, dropped
	Capacity    uint64 // allocations refused: turn.max_allocations (508)
	DeviceQuota uint64 // allocations refused: the device's quota (486/508)
	Redirected  uint64 // allocations answered 300 Try Alternate
	Draining    uint64 // allocations refused (508) while the edge drains
}

// Refusals reads the refusal counters.
func (t *Server) Refusals() Refusals {
	return Refusals{
		PeerPolicy: t.refused.Load(), PeerDenied: t.denied.Load(), OverBitrate: t.dropped.Load(),
		Capacity: t.atCap.Load(), DeviceQuota: t.quotaHits.Load(), Redirected: t.redirected.Load(), Draining: t.drainHits.Load(),
	}
}
