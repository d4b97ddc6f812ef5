package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is what the relay needs. Its fields carry the edge's turn.* keys
// (deploy/edge.yaml) after the edge's defaults, plus the few edge-level
// values the relay uses; error messages name those keys.
type Config struct {
	// Realm is the long-term credential realm (turn.realm).
	Realm string
	// Secret signs TURN credentials (turn.secret_file, internal/turncred).
	// New requires it; Validate does not (it is read when the edge starts).
	Secret []byte
	// PublicHost is the host phones reach the relay at (turn.public_host):
	// one of the edge's own addresses, never relayed to.
	PublicHost string
	// RelayAddress is the IP given in XOR-RELAYED-ADDRESS
	// (turn.relay_address, resolved by the edge when it was a name). New
	// requires it. RelayBind is where relay sockets are bound, RelayPorts
	// their range "min-max".
	RelayAddress string
	RelayBind    string
	RelayPorts   string
	// MaxAllocationsPerDevice (more → 486) and MaxAllocations (more → 508,
	// or 300 with AlternateServers) bound live allocations.
	MaxAllocationsPerDevice int
	MaxAllocations          int
	// AlternateServers are other edges' TURN addresses, "ip:port"
	// (alternate.go).
	AlternateServers []string
	// MaxBitrate is the relayed bytes per second per allocation and
	// direction (tokenbucket.go).
	MaxBitrate int
	// AllowedPeers and DeniedPeers are CIDR prefixes or addresses
	// (policy.go); AllowLoopbackPeers (deprecated) adds 127.0.0.0/8 and
	// ::1 to AllowedPeers.
	AllowedPeers       []string
	DeniedPeers        []string
	AllowLoopbackPeers bool
	// OwnPorts are the edge's own ports (TURN, SIP, HTTPS) and CoreAddrs
	// the core's addresses: never relayed to (policy.go).
	OwnPorts  []int
	CoreAddrs []netip.AddrPort
	// TCPIdleTimeout closes a TCP/TLS connection that holds no allocation
	// (0: never); MaxConnsPerSource caps TCP/TLS connections per source IP
	// (limiter.go); HandshakeTimeout bounds a TLS handshake.
	TCPIdleTimeout    time.Duration
	MaxConnsPerSource int
	HandshakeTimeout  time.Duration
	// AllocationLifetime is the default allocation lifetime (0: pion's,
	// 10 min; clients may ask for up to 1 h).
	AllocationLifetime time.Duration
	// BatchIO serves the UDP listener through internal/udpbatch: several
	// datagrams per recvmmsg and sendmmsg instead of one recvfrom and one
	// sendto each (turn.batch_io; the edge defaults it to true). It applies
	// when Listeners.UDP is a *net.UDPConn.
	BatchIO bool
}

// Validate reports every field that is malformed, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Realm == "" {
		errs = append(errs, errors.New("turn.realm must not be empty"))
	}
	if ip := net.ParseIP(c.RelayAddress); c.RelayAddress != "" && (ip == nil || ip.IsUnspecified()) {
		errs = append(errs, fmt.Errorf("turn.relay_address %q must be an IP address phones can reach", c.RelayAddress))
	}
	if net.ParseIP(c.RelayBind) == nil {
		errs = append(errs, fmt.Errorf("turn.relay_bind %q must be an IP address", c.RelayBind))
	}
	if _, _, err := c.relayPortRange(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := c.peerPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if c.TCPIdleTimeout < 0 {
		errs = append(errs, errors.New("turn.tcp_idle_timeout must be positive"))
	}
	if _, err := c.alternateServers(); err != nil {
		errs = append(errs, err)
	}
	for name, v := range map[string]int{"turn.max_allocations_per_device": c.MaxAllocationsPerDevice, "turn.max_allocations": c.MaxAllocations, "turn.max_bitrate": c.MaxBitrate} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %d must be positive", name, v))
		}
	}
	return errors.Join(errs...)
}

// peerPrefixes returns AllowedPeers and DeniedPeers parsed.
func (c Config) peerPrefixes() (allowed, denied []netip.Prefix, err error) {
	a, errA := parsePeerPrefixes("turn.allowed_peers", c.AllowedPeers)
	d, errD := parsePeerPrefixes("turn.denied_peers", c.DeniedPeers)
	if c.AllowLoopbackPeers {
		a = append(a, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	}
	return a, d, errors.Join(errA, errD)
}

// alternateServers parses AlternateServers: each an IP address and a
// port, as ALTERNATE-SERVER carries (no names).
func (c Config) alternateServers() ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, len(c.AlternateServers))
	for _, s := range c.AlternateServers {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil || ap.Port() == 0 || ap.Addr().IsUnspecified() {
			return nil, fmt.Errorf("turn.alternate_servers: %q: want ip:port, as ALTERNATE-SERVER carries an address (RFC 8489 §14.15)", s)
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return out, nil
}

// relayPortRange parses RelayPorts, "min-max".
func (c Config) relayPortRange() (lo, hi uint16, err error) {
	a, b, ok := strings.Cut(c.RelayPorts, "-")
	x, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	y, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if !ok || err1 != nil || err2 != nil || x == 0 || x > y {
		return 0, 0, fmt.Errorf("turn.relay_ports %q: want min-max within 1-65535", c.RelayPorts)
	}
	return uint16(x), uint16(y), nil
}
