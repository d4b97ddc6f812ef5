package relay

import (
	"errors"
	"net/netip"
	"testing"
)

// Every default-denied range, in its IPv4 spelling and the IPv4-mapped,
// NAT64 and 6to4 spellings of the same address; turn.allowed_peers lifts
// the default but never the core's addresses; turn.denied_peers wins over
// allowed_peers; the edge's own ports are refused on its addresses.
func TestPeerPolicy(t *testing.T) {
	mustPrefix := func(ss ...string) []netip.Prefix {
		ps, err := parsePeerPrefixes("test", ss)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	// An edge in a DMZ: public relay address, core at 10.1.2.3.
	dmz := newPeerPolicy(peerPolicyConfig{
		core:     []netip.AddrPort{netip.MustParseAddrPort("10.1.2.3:5091"), netip.MustParseAddrPort("10.1.2.3:8443")},
		ownIPs:   []netip.Addr{netip.MustParseAddr("203.0.113.10")},
		ownPorts: []int{3478, 5061, 8443},
	})
	defaults := []string{
		"0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254", "127.0.0.1", "127.0.0.2",
		"127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.168.1.1", "198.18.0.1", "198.19.255.255",
		"224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
	}
	for _, v4 := range defaults {
		a := netip.MustParseAddr(v4)
		b := a.As4()
		for _, spelling := range []netip.Addr{
			a,
			netip.AddrFrom16(a.As16()), // ::ffff:a.b.c.d
			netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 10: 0, 11: 0, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}), // 64:ff9b::a.b.c.d
			netip.AddrFrom16([16]byte{0x20, 0x02, b[0], b[1], b[2], b[3], 15: 1}),                                 // 2002:aabb:ccdd::1
		} {
			if err := dmz.checkIP(spelling); !errors.Is(err, errPeerDefault) {
				t.Errorf("%s (%s): %v, want refused by default", spelling, v4, err)
			}
		}
	}
	for _, v6 := range []string{"::", "::1", "::7f00:1", "100::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "ff02::1", "ff0e::1"} {
		if err := dmz.checkIP(netip.MustParseAddr(v6)); !errors.Is(err, errPeerDefault) {
			t.Errorf("%s: %v, want refused by default", v6, err)
		}
	}
	if err := dmz.checkIP(netip.MustParseAddr("64:ff9b:1::8.8.8.8")); !errors.Is(err, errPeerNAT64LUP) {
		t.Errorf("NAT64 local-use prefix: %v, want refused", err)
	}
	if err := dmz.checkIP(netip.Addr{}); !errors.Is(err, errPeerInvalid) {
		t.Errorf("invalid address: %v", err)
	}
	// Public addresses, in every spelling, are relayed to.
	for _, ok := range []string{"8.8.8.8", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2001:4860:4860::8888", "203.0.113.10", "100.128.0.1", "198.20.0.1", "172.32.0.1"} {
		if err := dmz.checkIP(netip.MustParseAddr(ok)); err != nil {
			t.Errorf("%s: %v, want allowed", ok, err)
		}
	}
	// The core, in every spelling, whatever else says.
	for _, core := range []string{"10.1.2.3", "::ffff:10.1.2.3", "64:ff9b::a01:203"} {
		if err := dmz.checkIP(netip.MustParseAddr(core)); !errors.Is(err, errPeerCore) {
			t.Errorf("core %s: %v, want errPeerCore", core, err)
		}
	}
	// The edge's own listeners: its address is a peer (relay to relay), its
	// listener ports on it are not; on other addresses those ports are fine.
	for _, own := range []string{"203.0.113.10:3478", "203.0.113.10:5061", "[::ffff:203.0.113.10]:8443"} {
		if err := dmz.checkAddr(netip.MustParseAddrPort(own)); !errors.Is(err, errPeerOwn) {
			t.Errorf("own listener %s: %v, want errPeerOwn", own, err)
		}
	}
	for _, ok := range []string{"203.0.113.10:40000", "198.51.100.7:3478"} {
		if err := dmz.checkAddr(netip.MustParseAddrPort(ok)); err != nil {
			t.Errorf("%s: %v, want allowed", ok, err)
		}
	}

	// Operator lists.
	op := newPeerPolicy(peerPolicyConfig{
		allowed:  mustPrefix("10.0.0.0/8", "127.0.0.1", "::ffff:192.168.7.0/120", "fd00::/8"),
		denied:   mustPrefix("10.9.0.0/16", "8.8.4.0/24"),
		core:     []netip.AddrPort{netip.MustParseAddrPort("10.1.2.3:5091"), netip.MustParseAddrPort("127.0.0.1:6971")},
		ownIPs:   []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		ownPorts: []int{3478},
	})
	for _, tc := range []struct {
		addr string
		want error
	}{
		{"10.0.0.1", nil},               // allowed_peers lifts the default
		{"::ffff:10.0.0.1", nil},        // in every spelling
		{"64:ff9b::a00:1", nil},         //
		{"192.168.7.9", nil},            // a mapped prefix is read as IPv4
		{"192.168.8.1", errPeerDefault}, // outside it
		{"fd00::5", nil},
		{"127.0.0.1", nil},
		{"127.0.0.2", errPeerDefault}, // one loopback address allowed, not the range
		{"10.1.2.3", errPeerCore},     // never the core, even inside allowed_peers
		{"::ffff:10.1.2.3", errPeerCore},
		{"10.9.1.1", errPeerDenied}, // denied_peers wins over allowed_peers
		{"8.8.4.4", errPeerDenied},  // and refuses public addresses too
		{"::ffff:8.8.4.4", errPeerDenied},
		{"8.8.8.8", nil},
	} {
		if err := op.checkIP(netip.MustParseAddr(tc.addr)); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("operator lists: %s: %v, want %v", tc.addr, err, tc.want)
		}
	}
	// The core shares 127.0.0.1 with the edge (one host): the address stays
	// a peer, the core's ports on it are refused, like the edge's own.
	for _, tc := range []struct {
		addr string
		want error
	}{
		{"127.0.0.1:6971", errPeerCore},
		{"[::ffff:127.0.0.1]:6971", errPeerCore},
		{"127.0.0.1:3478", errPeerOwn},
		{"127.0.0.1:40000", nil},
	} {
		if err := op.checkAddr(netip.MustParseAddrPort(tc.addr)); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("shared host: %s: %v, want %v", tc.addr, err, tc.want)
		}
	}
	if got := op.sharedCoreAddrs(); len(got) != 1 || got[0] != netip.MustParseAddrPort("127.0.0.1:6971") {
		t.Errorf("sharedCoreAddrs = %v", got)
	}

	if _, err := parsePeerPrefixes("turn.allowed_peers", []string{"10.0.0.0/33", "example.com"}); err == nil {
		t.Error("bad prefixes parse")
	}
}

// The deprecated allow_loopback_peers is allowed_peers 127.0.0.0/8 and ::1,
// and the core stays refused.
func TestAllowLoopbackPeersDeprecated(t *testing.T) {
	c := Config{AllowLoopbackPeers: true}
	allowed, denied, err := c.peerPrefixes()
	if err != nil || len(denied) != 0 {
		t.Fatal(err)
	}
	p := newPeerPolicy(peerPolicyConfig{allowed: allowed, core: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:5091")}})
	if err := p.checkIP(netip.MustParseAddr("127.0.0.5")); err != nil {
		t.Errorf("loopback with allow_loopback_peers: %v", err)
	}
	if err := p.checkIP(netip.MustParseAddr("127.0.0.2")); !errors.Is(err, errPeerCore) {
		t.Errorf("core with allow_loopback_peers: %v", err)
	}
}
