package relay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/edgeway/edgeway/internal/media"
)

// RFC 8656 §7.2 step 8, RFC 8489 §10 (issue 11 §2): edge A's relay holds
// turn.max_allocations = 1 and names edge B in turn.alternate_servers.
// The first client gets its relay on A; the second is answered 300 Try
// Alternate with B in ALTERNATE-SERVER, follows it (internal/media) and
// gets its relay on B, which carries media both ways.
func TestTURNAlternateServer(t *testing.T) {
	b := startTURN(t, turnFixtureOptions{})
	a := startTURN(t, turnFixtureOptions{cfg: func(c *Config) {
		c.MaxAllocations = 1
		c.AlternateServers = []string{b.udp}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alloc := func(device string) *media.Relay { t.Helper(); return a.mediaRelay(ctx, t, device) }
	first, second := alloc("SEP0000000000A1"), alloc("SEP0000000000A2")
	aAddr, bAddr := netip.MustParseAddrPort(a.udp), netip.MustParseAddrPort(b.udp)
	if first.Server() != aAddr || !slices.Equal(first.Tried(), []netip.AddrPort{aAddr}) {
		t.Fatalf("first relay on %s (asked %v), want on A %s only", first.Server(), first.Tried(), aAddr)
	}
	if second.Server() != bAddr || !slices.Equal(second.Tried(), []netip.AddrPort{aAddr, bAddr}) {
		t.Fatalf("second relay on %s (asked %v), want redirected from A %s to B %s", second.Server(), second.Tried(), aAddr, bAddr)
	}
	if na, nb, red := a.srv.Allocations(), b.srv.Allocations(), a.srv.Redirected(); na != 1 || nb != 1 || red != 1 {
		t.Fatalf("allocations A=%d B=%d, redirects by A=%d; want 1, 1, 1", na, nb, red)
	}
	if rb := b.srv.RelayAddrs(); len(rb) != 1 || rb[0] != second.Addr() {
		t.Fatalf("B's relays %v, want the second client's %s", rb, second.Addr())
	}

	// Media through the relay on B, both ways.
	peer := udpPeer(t)
	if err := second.Permit(peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	from := relayUntilReceived(t, second.PacketConn(), peer, []byte("to the peer via B"))
	if got := from.(*net.UDPAddr).AddrPort(); got != second.Addr() {
		t.Fatalf("the peer got the datagram from %s, want B's relay %s", got, second.Addr())
	}
	if _, err := peer.WriteTo([]byte("back via B"), from); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = second.PacketConn().SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := second.PacketConn().ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("back via B")) {
		t.Fatalf("read through B's relay: %q, %v", buf[:n], err)
	}
	// The relay counts a datagram once its write returned, which may be
	// after the peer read it: wait for the count, bounded.
	waitFor(t, "B to count the datagrams it relayed both ways", func() bool {
		to, back := b.srv.Relayed()
		return to > 0 && back > 0
	})
}

// The 300 comes only after authentication, signed with the request's key
// (RFC 8656 §7.2: the server authenticates the Allocate first; RFC 8489
// §10). A request without credentials, or with a wrong one, gets 401 and
// learns nothing of the alternates; a device over its own quota still gets
// 486; once the relay has room again, Allocates succeed there.
func TestTURNAlternateServerAfterAuthentication(t *testing.T) {
	alt := netip.MustParseAddrPort("127.0.0.1:3478")
	a := startTURN(t, turnFixtureOptions{cfg: func(c *Config) {
		c.MaxAllocations = 1
		c.MaxAllocationsPerDevice = 1
		c.AlternateServers = []string{alt.String()}
	}})
	u1, p1 := creds("SEP0000000000B1", time.Hour)
	holder := dialRaw(t, "udp", a.udp, u1, p1)
	if res := holder.allocate(false); !isSuccess(res) {
		t.Fatalf("first Allocate: %v", res)
	}

	u2, p2 := creds("SEP0000000000B2", time.Hour)
	anon := dialRaw(t, "udp", a.udp, u2, p2)
	res := anon.roundTrip(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}})
	if code := errorCode(res); code != stun.CodeUnauthorized || res.Contains(stun.AttrAlternateServer) {
		t.Fatalf("unauthenticated Allocate to a full relay: %v, want 401 without ALTERNATE-SERVER", res)
	}
	forged := dialRaw(t, "udp", a.udp, u2, "not-the-credential")
	if res := forged.allocate(false); errorCode(res) != stun.CodeUnauthorized || res.Contains(stun.AttrAlternateServer) {
		t.Fatalf("Allocate with a wrong credential to a full relay: %v, want 401 without ALTERNATE-SERVER", res)
	}

	good := dialRaw(t, "udp", a.udp, u2, p2)
	res = good.allocate(false)
	if code := errorCode(res); code != stun.CodeTryAlternate {
		t.Fatalf("authenticated Allocate to a full relay: %v, want 300", res)
	}
	var as stun.AlternateServer
	if err := as.GetFrom(res); err != nil || !as.IP.Equal(alt.Addr().AsSlice()) || as.Port != int(alt.Port()) {
		t.Fatalf("ALTERNATE-SERVER %v (%v), want %s", as, err, alt)
	}
	if err := stun.MessageIntegrity(good.key).Check(res); err != nil {
		t.Fatalf("300 MESSAGE-INTEGRITY does not check under the client's key: %v", err)
	}
	if err := stun.Fingerprint.Check(res); err != nil {
		t.Fatalf("300 FINGERPRINT: %v", err)
	}

	// The holder's device asks again from another socket: its own quota
	// (486), not a redirect.
	again := dialRaw(t, "udp", a.udp, u1, p1)
	if code := errorCode(again.allocate(false)); code != stun.CodeAllocQuotaReached {
		t.Fatalf("device over its quota on a full relay: %d, want 486", code)
	}
	if n := a.srv.Redirected(); n != 1 {
		t.Fatalf("redirects = %d, want 1", n)
	}

	// Room again: the holder lets go, and the next Allocate stays here.
	if res := holder.refresh(0); !isSuccess(res) {
		t.Fatalf("deallocate: %v", res)
	}
	waitFor(t, "the relay to have room", func() bool { return a.srv.Allocations() == 0 })
	if res := dialRaw(t, "udp", a.udp, u2, p2).allocate(false); !isSuccess(res) {
		t.Fatalf("Allocate with room again: %v (code %d)", res, errorCode(res))
	}
}

// A redirect back to a server already asked ends the chase: two full
// relays naming each other cost the client two 300s, not a loop.
func TestTURNAlternateServerLoopRefused(t *testing.T) {
	// Each full once it holds one allocation, each naming the other.
	var socks [2]net.PacketConn
	for i := range socks {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		socks[i] = c
	}
	full := func(sock, other net.PacketConn) turnFixtureOptions {
		return turnFixtureOptions{udp: sock, cfg: func(c *Config) {
			c.MaxAllocations = 1
			c.AlternateServers = []string{other.LocalAddr().String()}
		}}
	}
	a, b := startTURN(t, full(socks[0], socks[1])), startTURN(t, full(socks[1], socks[0]))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, f := range []*turnFixture{a, b} {
		u, p := creds("SEP00000000FULL", time.Hour)
		r, err := media.AllocateRelay(ctx, f.udp, "udp", u, p, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
	}
	u, p := creds("SEP0000000000C1", time.Hour)
	_, err := media.AllocateRelay(ctx, a.udp, "udp", u, p, "")
	var te *media.TURNError
	if !errors.As(err, &te) || te.Code != 300 {
		t.Fatalf("A full → B full → A: %v, want the 300 reported", err)
	}
	if a.srv.Redirected() != 1 || b.srv.Redirected() != 1 {
		t.Fatalf("redirects A=%d B=%d, want 1 each (no loop)", a.srv.Redirected(), b.srv.Redirected())
	}
}

// mediaRelay allocates a UDP relay on f for device as a phone's media
// stack does (media.AllocateRelay, which follows a signed 300 Try
// Alternate), closed when the test ends.
func (f *turnFixture) mediaRelay(ctx context.Context, t *testing.T, device string) *media.Relay {
	t.Helper()
	u, p := creds(device, time.Hour)
	r, err := media.AllocateRelay(ctx, f.udp, "udp", u, p, "")
	if err != nil {
		t.Fatalf("allocation for %s through %s: %v", device, f.udp, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}
