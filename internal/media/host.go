package media

import (
	"fmt"
	"net"
	"net/netip"
)

// Transport is where a Stream's packets go in and out: a TURN relay on the
// edge (phones outside, Relay) or the phone's own UDP socket (phones on
// premises, Host). Addr is the address to offer in the SDP.
type Transport interface {
	PacketConn() net.PacketConn
	Addr() netip.AddrPort
	// Permit lets the peers' packets in (a TURN permission, RFC 8656
	// section 9); a host socket needs none.
	Permit(peers ...net.Addr) error
	Close() error
}

var (
	_ Transport = (*Relay)(nil)
	_ Transport = (*Host)(nil)
)

// Host is a UDP socket of the phone's own (a host candidate): what an
// on-premises phone, which gets no TURN credentials from the core, offers.
// A phone outside reaches it through its relay on the edge.
type Host struct {
	conn net.PacketConn
	addr netip.AddrPort
}

// ListenHost opens a UDP socket on ip, on a port the system picks.
func ListenHost(ip netip.Addr) (*Host, error) {
	if !ip.IsValid() || ip.IsUnspecified() {
		return nil, fmt.Errorf("media: host address %v: need a concrete address to offer in the SDP", ip)
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, fmt.Errorf("media: host socket: %w", err)
	}
	return &Host{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}, nil
}

func (h *Host) PacketConn() net.PacketConn { return h.conn }
func (h *Host) Addr() netip.AddrPort       { return h.addr }
func (h *Host) Permit(...net.Addr) error   { return nil }
func (h *Host) Close() error               { return h.conn.Close() }
