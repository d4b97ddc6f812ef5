package relay

import "testing"

// Refusals reports each counter under its own reason, as the edge's
// edgeway_edge_turn_refusals_total labels them.
func TestRefusals(t *testing.T) {
	var s Server
	s.refused.Add(1)
	s.denied.Add(2)
	s.dropped.Add(3)
	s.atCap.Add(4)
	s.quotaHits.Add(5)
	s.redirected.Add(6)
	s.drainHits.Add(7)
	want := Refusals{PeerPolicy: 1, PeerDenied: 2, OverBitrate: 3, Capacity: 4, DeviceQuota: 5, Redirected: 6, Draining: 7}
	if got := s.Refusals(); got != want {
		t.Errorf("Refusals() = %+v, want %+v", got, want)
	}
	if s.RefusedPeers() != 1 || s.DeniedDatagrams() != 2 || s.DroppedDatagrams() != 3 || s.Redirected() != 6 || s.DrainRefused() != 7 {
		t.Error("a single-counter getter disagrees with Refusals")
	}
	s.toPeers.Add(10)
	s.fromPeers.Add(20)
	s.toBytes.Add(1000)
	s.fromBytes.Add(2000)
	if to, from := s.Relayed(); to != 10 || from != 20 {
		t.Errorf("Relayed() = %d, %d", to, from)
	}
	if to, from := s.RelayedBytes(); to != 1000 || from != 2000 {
		t.Errorf("RelayedBytes() = %d, %d", to, from)
	}
}
