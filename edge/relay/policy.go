package relay

// Which peers the TURN relay may reach (issue 9, items 5 and 6). One
// peerPolicy answers for CreatePermission, ChannelBind and RFC 6062 Connect
// (pion consults the PermissionHandler on all three) and again for every
// datagram a relay sends (relayConn.WriteTo), so a peer address can never
// be relayed to unless the policy allows it. RFC 8656 §21 (security
// considerations): a TURN server is an open door into the network it sits
// in unless it restricts peers; refusals are 403 Forbidden (RFC 8656 §9.2,
// §12.2; RFC 6062 §5.2).
//
// In order, first match wins:
//  1. the core's addresses (core_url, core_config_url, core_mra, resolved
//     at start) and the edge's own listeners: always refused. When the
//     core shares an address with the edge (one host, as in development),
//     refusing the address would refuse the edge's own relays, so there
//     only the core's ports are refused, datagram by datagram, like the
//     edge's own ports.
//  2. turn.denied_peers: refused.
//  3. turn.allowed_peers: allowed (it overrides only the default list).
//  4. the default list (defaultDeniedPeers): refused.
//  5. anything else: allowed.
//
// An IPv6 address that carries an IPv4 address — IPv4-mapped
// (::ffff:a.b.c.d), NAT64 (64:ff9b::/96, RFC 6052) or 6to4 (2002::/16) —
// is judged by the IPv4 address it carries, so no spelling reaches what
// the plain one cannot. The NAT64 local-use prefix 64:ff9b:1::/48 (RFC
// 8215), whose IPv4 position depends on the operator's prefix length, is
// refused as a whole.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Reasons a peer is refused; errors.Is tells them apart.
var (
	errPeerCore     = errors.New("relay: peer is the core (never relayed to)")
	errPeerOwn      = errors.New("relay: peer is one of the edge's own listeners")
	errPeerDenied   = errors.New("relay: peer is in turn.denied_peers")
	errPeerDefault  = errors.New("relay: peer is in the default-denied ranges (loopback, private, link-local, multicast, reserved); add it to turn.allowed_peers to relay to it")
	errPeerInvalid  = errors.New("relay: peer address is not a valid IP address")
	errPeerNAT64LUP = errors.New("relay: peer is in the NAT64 local-use prefix 64:ff9b:1::/48")
)

// defaultDeniedPeers are refused unless turn.allowed_peers allows them:
// addresses that are not on the public Internet (RFC 6890 and its IPv6
// counterparts), which is where a relay for phones outside has business.
var defaultDeniedPeers = mustPrefixes(
	// IPv4
	"0.0.0.0/8",      // "this network" (RFC 791), 0.0.0.0 reaches the host itself
	"10.0.0.0/8",     // private (RFC 1918)
	"100.64.0.0/10",  // shared address space, carrier-grade NAT (RFC 6598)
	"127.0.0.0/8",    // loopback
	"169.254.0.0/16", // link-local (RFC 3927), cloud metadata at 169.254.169.254
	"172.16.0.0/12",  // private (RFC 1918)
	"192.168.0.0/16", // private (RFC 1918)
	"198.18.0.0/15",  // benchmarking (RFC 2544)
	"224.0.0.0/4",    // multicast
	"240.0.0.0/4",    // reserved (RFC 1112), with the limited broadcast 255.255.255.255
	// IPv6
	"::/128",    // unspecified
	"::1/128",   // loopback
	"::/96",     // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
	"100::/64",  // discard-only (RFC 6666)
	"fc00::/7",  // unique local (RFC 4193)
	"fe80::/10", // link-local
	"fec0::/10", // site-local (deprecated, RFC 3879)
	"ff00::/8",  // multicast
)

var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052
	nat64LocalUse  = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215
	sixToFour      = netip.MustParsePrefix("2002::/16")      // RFC 3056
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// peerPolicy decides which peers relays may reach. It is built once, when
// TURN starts, and read-only afterwards: safe for concurrent use.
type peerPolicy struct {
	allowed, denied []netip.Prefix // turn.allowed_peers, turn.denied_peers
	core            map[netip.Addr]bool
	// Ports refused on addresses the edge itself has (loopback, its
	// listeners' and interfaces' addresses): its own listeners, and the
	// core's ports when the core shares an address with the edge.
	ownIPs   map[netip.Addr]bool
	ownPorts map[int]bool
	// corePorts are the core's ports on an address it shares with the
	// edge (one host): refused on that address only.
	corePorts map[netip.AddrPort]bool
}

// peerPolicyConfig is what newPeerPolicy builds from.
type peerPolicyConfig struct {
	allowed, denied []netip.Prefix
	core            []netip.AddrPort // the core's resolved addresses
	ownIPs          []netip.Addr
	ownPorts        []int
}

func newPeerPolicy(c peerPolicyConfig) *peerPolicy {
	p := &peerPolicy{allowed: c.allowed, denied: c.denied, core: map[netip.Addr]bool{},
		ownIPs: map[netip.Addr]bool{}, ownPorts: map[int]bool{}, corePorts: map[netip.AddrPort]bool{}}
	for _, ip := range c.ownIPs {
		if ip.IsValid() {
			p.ownIPs[ip.Unmap()] = true
		}
	}
	for _, port := range c.ownPorts {
		if port != 0 {
			p.ownPorts[port] = true
		}
	}
	for _, ap := range c.core {
		ip := ap.Addr().Unmap()
		if !ip.IsValid() {
			continue
		}
		if p.ownIPs[ip] { // exactly one of the edge's addresses, not any loopback
			p.corePorts[netip.AddrPortFrom(ip, ap.Port())] = true
			continue
		}
		p.core[ip] = true
	}
	return p
}

func (p *peerPolicy) isOwnIP(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsUnspecified() || p.ownIPs[ip]
}

// sharedCoreAddrs are the core addresses the edge shares (refused by port
// only), for the start-up log.
func (p *peerPolicy) sharedCoreAddrs() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(p.corePorts))
	for ap := range p.corePorts {
		out = append(out, ap)
	}
	return out
}

// spellings are the addresses ip stands for: itself without an IPv4-mapped
// prefix, and the IPv4 address a NAT64 or 6to4 address carries.
func spellings(ip netip.Addr) []netip.Addr {
	ip = ip.Unmap()
	out := []netip.Addr{ip}
	if !ip.Is6() {
		return out
	}
	b := ip.As16()
	switch {
	case nat64WellKnown.Contains(ip):
		out = append(out, netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	case sixToFour.Contains(ip):
		out = append(out, netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	return out
}

// checkIP is the decision for a peer IP address (CreatePermission,
// ChannelBind and Connect: TURN permissions are per IP address, RFC 8656
// §9). nil means allowed.
func (p *peerPolicy) checkIP(ip netip.Addr) error {
	if !ip.IsValid() {
		return errPeerInvalid
	}
	if nat64LocalUse.Contains(ip) {
		return errPeerNAT64LUP
	}
	all := spellings(ip)
	for _, a := range all {
		if p.core[a] {
			return errPeerCore
		}
	}
	for _, a := range all {
		if inAny(p.denied, a) {
			return errPeerDenied
		}
	}
	for _, a := range all {
		if inAny(p.allowed, a) {
			continue
		}
		if inAny(defaultDeniedPeers, a) {
			return errPeerDefault
		}
	}
	return nil
}

// checkAddr is checkIP plus the ports refused on the edge's own addresses
// (its listeners; the core's ports where the core shares its address):
// for every relayed datagram and Connect's outgoing connection. (pion's
// PermissionHandler sees only the peer's IP address, so a ChannelBind to
// an own port on an allowed address is granted, and its datagrams are
// dropped here.)
func (p *peerPolicy) checkAddr(ap netip.AddrPort) error {
	if err := p.checkIP(ap.Addr()); err != nil {
		return err
	}
	for _, a := range spellings(ap.Addr()) {
		if p.corePorts[netip.AddrPortFrom(a, ap.Port())] {
			return errPeerCore
		}
		if p.ownPorts[int(ap.Port())] && p.isOwnIP(a) {
			return errPeerOwn
		}
	}
	return nil
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parsePeerPrefixes parses a turn.allowed_peers / turn.denied_peers list:
// CIDR prefixes or single addresses.
func parsePeerPrefixes(key string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			if p.Addr().Is4In6() {
				p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
			}
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %q is not an IP prefix (CIDR) or address", key, s))
	}
	return out, errors.Join(errs...)
}

// permit is the pion PermissionHandler (false → 403 to CreatePermission
// and Connect, 401 to ChannelBind which sock.go makes 403): the peer
// policy (this file).
func (t *Server) permit(client net.Addr, peer net.IP) bool {
	ip, _ := netip.AddrFromSlice(peer)
	if err := t.policy.checkIP(ip); err != nil {
		t.refused.Add(1)
		t.log.Debug("TURN peer refused", "client", client, "peer", peer, "err", err)
		return false
	}
	return true
}
