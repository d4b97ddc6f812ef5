package relay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/edgeway/edgeway/internal/media"
)

// Issue 12 §2, drain: once the edge drains, a new Allocate over UDP —
// where no listener can be closed — is refused 508 Insufficient Capacity
// (RFC 8656 §7.2: the server cannot take it) and counted, while an
// allocation made before keeps refreshing (RFC 8656 §7.3), binding
// permissions and relaying both ways. Over TCP too, on a connection open
// before the drain.
func TestTURNDrainRefusesNewAllocations(t *testing.T) {
	var draining atomic.Bool
	f := startTURN(t, turnFixtureOptions{draining: &draining})
	for _, network := range []string{"udp", "tcp"} {
		addr := f.udp
		if network == "tcp" {
			addr = f.tcp
		}
		draining.Store(false)
		u, p := creds("SEP00000000D"+network, time.Hour)
		live := dialRaw(t, network, addr, u, p)
		res := live.allocate(false)
		if !isSuccess(res) {
			t.Fatalf("%s: Allocate before the drain: %v", network, res)
		}
		relayed := relayedAddr(t, res)
		later := dialRaw(t, network, addr, u, p) // a connection open before the drain

		draining.Store(true)
		refusedBefore := f.srv.DrainRefused()
		if res := later.allocate(false); errorCode(res) != stun.CodeInsufficientCapacity {
			t.Fatalf("%s: Allocate during the drain: %v, want 508", network, res)
		}
		if got := f.srv.DrainRefused(); got != refusedBefore+1 {
			t.Fatalf("%s: drain refusals counted %d, want %d", network, got, refusedBefore+1)
		}
		// The allocation made before the drain goes on.
		if res := live.refresh(600); !isSuccess(res) {
			t.Fatalf("%s: Refresh of a live allocation during the drain: %v", network, res)
		}
		peer := udpPeer(t)
		peerAP := peer.LocalAddr().(*net.UDPAddr).AddrPort()
		if res := live.peerRequest(stun.MethodCreatePermission, peerAP); !isSuccess(res) {
			t.Fatalf("%s: CreatePermission during the drain: %v", network, res)
		}
		if _, err := peer.WriteTo([]byte("to the phone"), net.UDPAddrFromAddrPort(relayed)); err != nil {
			t.Fatal(err)
		}
		if m := live.read(5 * time.Second); m == nil || m.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
			t.Fatalf("%s: no Data indication from the peer through the live relay during the drain: %v", network, m)
		}
		if res := live.refresh(0); !isSuccess(res) { // the phone hangs up: its allocation ends
			t.Fatalf("%s: Refresh 0: %v", network, res)
		}
		waitFor(t, "the allocation to end", func() bool { return f.srv.Allocations() == 0 })
	}
}

// With turn.alternate_servers set, a draining edge sends new allocations
// to an alternate (300 Try Alternate, RFC 8489 §10) instead of 508, as
// when it is full; the client follows it, and the allocation made before
// the drain keeps relaying.
func TestTURNDrainRedirectsToAlternate(t *testing.T) {
	b := startTURN(t, turnFixtureOptions{})
	var draining atomic.Bool
	a := startTURN(t, turnFixtureOptions{draining: &draining, cfg: func(c *Config) { c.AlternateServers = []string{b.udp} }})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alloc := func(device string) *media.Relay { t.Helper(); return a.mediaRelay(ctx, t, device) }
	before := alloc("SEP0000000000E1")
	draining.Store(true)
	after := alloc("SEP0000000000E2")
	aAddr, bAddr := netip.MustParseAddrPort(a.udp), netip.MustParseAddrPort(b.udp)
	if before.Server() != aAddr {
		t.Fatalf("relay before the drain on %s, want A %s", before.Server(), aAddr)
	}
	if after.Server() != bAddr || !slices.Equal(after.Tried(), []netip.AddrPort{aAddr, bAddr}) {
		t.Fatalf("relay during the drain on %s (asked %v), want redirected from A %s to B %s", after.Server(), after.Tried(), aAddr, bAddr)
	}
	if na, red := a.srv.Allocations(), a.srv.Redirected(); na != 1 || red != 1 {
		t.Fatalf("A holds %d allocations and redirected %d; want 1 and 1", na, red)
	}
	peer := udpPeer(t)
	if err := before.Permit(peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	from := relayUntilReceived(t, before.PacketConn(), peer, []byte("via A while it drains"))
	if _, err := peer.WriteTo([]byte("back via A"), from); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = before.PacketConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := before.PacketConn().ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("back via A")) {
		t.Fatalf("read through A's relay during the drain: %q, %v", buf[:n], err)
	}
	var te *media.TURNError
	if _, err := media.AllocateRelay(ctx, a.udp, "udp", "nobody", "nothing", ""); !errors.As(err, &te) || te.Code != int(stun.CodeUnauthorized) {
		t.Fatalf("unauthenticated Allocate to a draining edge: %v, want 401 (no redirect before authentication)", err)
	}
}
