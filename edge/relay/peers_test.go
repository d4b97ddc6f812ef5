package relay

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// Issue 9, item 6: CreatePermission, ChannelBind and RFC 6062 Connect to
// private, shared, benchmarking, link-local, loopback, multicast and
// reserved addresses, and to the core, are refused with 403 Forbidden —
// over UDP and TCP, in the IPv4 spelling and the IPv4-mapped one (a
// 16-byte XOR-PEER-ADDRESS that pion would relay to the IPv4 address).
// The one loopback address allowed (turn.allowed_peers) is granted.
func TestTURNPeerPolicyOverSockets(t *testing.T) {
	core := netip.MustParseAddrPort("127.0.0.2:5091")
	f := startTURN(t, turnFixtureOptions{core: []netip.AddrPort{core}})
	refused := []string{
		"10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "198.18.0.1", // the list
		"127.0.0.2",                       // the core
		"127.0.0.3", "0.0.0.0", "0.1.2.3", // loopback not allowed, this network
		"169.254.169.254", "224.0.0.1", "255.255.255.255", "240.0.0.1",
	}
	for _, network := range []string{"udp4", "tcp4"} {
		t.Run(network, func(t *testing.T) {
			addr := f.udp
			if network == "tcp4" {
				addr = f.tcp
			}
			u, p := creds("SEP00AABBCC01", time.Hour)
			c := dialRaw(t, network, addr, u, p)
			if res := c.allocate(false); !isSuccess(res) {
				t.Fatalf("Allocate: %v (code %d)", res, errorCode(res))
			}
			before := f.srv.RefusedPeers()
			n := 0
			for _, s := range refused {
				v4 := netip.MustParseAddr(s)
				for _, spelling := range []netip.Addr{v4, netip.AddrFrom16(v4.As16())} {
					peer := netip.AddrPortFrom(spelling, 5004)
					for _, m := range []stun.Method{stun.MethodCreatePermission, stun.MethodChannelBind, stun.MethodConnect} {
						res := c.peerRequest(m, peer)
						if code := errorCode(res); code != stun.CodeForbidden {
							t.Errorf("%v to %v: %v (code %d), want 403 Forbidden", m, peer, res, code)
						}
						if res != nil && !res.Contains(stun.AttrMessageIntegrity) {
							t.Errorf("%v to %v: the 403 is not signed (MESSAGE-INTEGRITY)", m, peer)
						}
						n++
					}
				}
			}
			if got := f.srv.RefusedPeers() - before; got != uint64(n) {
				t.Errorf("RefusedPeers counted %d refusals, want %d", got, n)
			}
			// The allowed loopback address: permission and channel granted;
			// Connect passes the policy and meets the missing TCP relay (447).
			allowed := netip.MustParseAddrPort("127.0.0.1:5004")
			for _, spelling := range []netip.AddrPort{allowed, netip.AddrPortFrom(netip.AddrFrom16(allowed.Addr().As16()), 5004)} {
				if res := c.peerRequest(stun.MethodCreatePermission, spelling); !isSuccess(res) {
					t.Errorf("CreatePermission to allowed %v: %v (code %d)", spelling, res, errorCode(res))
				}
			}
			if res := c.peerRequest(stun.MethodChannelBind, allowed); !isSuccess(res) {
				t.Errorf("ChannelBind to allowed %v: %v (code %d)", allowed, res, errorCode(res))
			}
			if res := c.peerRequest(stun.MethodConnect, allowed); errorCode(res) != stun.CodeConnTimeoutOrFailure {
				t.Errorf("Connect to allowed %v: %v (code %d), want 447 (no TCP relays)", allowed, res, errorCode(res))
			}
		})
	}
}

// The NAT64 (64:ff9b::/96) spelling of refused IPv4 addresses, and IPv6
// loopback, ULA, link-local, site-local and multicast peers, are refused on
// an IPv6 allocation.
func TestTURNPeerPolicyIPv6(t *testing.T) {
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	f := startTURN(t, turnFixtureOptions{cfg: func(c *Config) { c.RelayBind = "::1" }})
	u, p := creds("SEP00AABBCC02", time.Hour)
	c := dialRaw(t, "udp4", f.udp, u, p)
	if res := c.allocate(true); !isSuccess(res) {
		t.Fatalf("IPv6 Allocate: %v (code %d)", res, errorCode(res))
	}
	for _, s := range []string{"64:ff9b::a00:1", "64:ff9b::7f00:2", "64:ff9b::a9fe:a9fe", "64:ff9b:1::808:808", "2002:a00:1::1",
		"::1", "::", "fc00::1", "fd00::1", "fe80::1", "fec0::1", "ff02::1"} {
		peer := netip.AddrPortFrom(netip.MustParseAddr(s), 5004)
		for _, m := range []stun.Method{stun.MethodCreatePermission, stun.MethodChannelBind} {
			if res := c.peerRequest(m, peer); errorCode(res) != stun.CodeForbidden {
				t.Errorf("%v to %v: %v (code %d), want 403", m, peer, res, errorCode(res))
			}
		}
	}
	// A public IPv6 peer (documentation prefix, never answered) is granted.
	if res := c.peerRequest(stun.MethodCreatePermission, netip.MustParseAddrPort("[2001:db8::1]:5004")); !isSuccess(res) {
		t.Errorf("CreatePermission to a public IPv6 peer: %v (code %d)", res, errorCode(res))
	}
}
