package relay

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/turn/v5"
)

// relayGenerator allocates UDP relay sockets in turn.relay_ports, counted
// against the quotas and wrapped in the bitrate limit.
type relayGenerator struct {
	t     *Server
	mu    sync.Mutex // pion's generator shares one random source
	inner *turn.RelayAddressGeneratorPortRange
}

func (g *relayGenerator) Validate() error { return g.inner.Validate() }

func (g *relayGenerator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	device, family := splitUserID(c.UserID)
	if err := g.t.reserve(device); err != nil {
		return nil, nil, err
	}
	g.mu.Lock()
	conn, addr, err := g.inner.AllocatePacketConn(c)
	g.mu.Unlock()
	if err != nil {
		g.t.unreserve(device)
		return nil, nil, err
	}
	r, open := g.t.newRelayConn(conn, addr, device, family)
	if !open { // Close ran while this socket was made: it would outlive it
		_ = r.Close()
		return nil, nil, errTURNClosed
	}
	if g.t.familyRevoked(family) { // revoked since this request was authenticated
		_ = r.Close()
		return nil, nil, errTURNFamilyRevoked
	}
	return r, addr, nil
}

func (g *relayGenerator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTURNNoTCPRelay
}

// AllocateConn is RFC 6062 Connect's outgoing connection. pion consults
// the PermissionHandler first (403); the peer is checked here again, by
// address and port, in case a TCP relay is ever offered.
func (g *relayGenerator) AllocateConn(c turn.AllocateConnConfig) (net.Conn, error) {
	if ta, ok := c.RemoteAddr.(*net.TCPAddr); ok {
		if err := g.t.policy.checkAddr(ta.AddrPort()); err != nil {
			return nil, err
		}
	}
	return nil, errTURNNoTCPRelay
}

// newRelayConn wraps a new relay socket and records it for Close; open is
// false when Close has already begun (its list of relays to close is
// taken), in which case the caller closes r itself.
func (t *Server) newRelayConn(conn net.PacketConn, relayed net.Addr, device, family string) (r *relayConn, open bool) {
	r = &relayConn{PacketConn: conn, t: t, device: device, family: family, relayed: addrPort(relayed),
		toPeer: newTokenBucket(t.cfg.MaxBitrate), fromPeer: newTokenBucket(t.cfg.MaxBitrate)}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.relays[r] = struct{}{}
	return r, !t.closed
}

func addrPort(a net.Addr) netip.AddrPort {
	if ua, ok := a.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// relayConn is one allocation's relay socket. pion writes what the client
// sends to peers with WriteTo (from the listener's read loop) and reads
// what peers send with ReadFrom (from the allocation's goroutine).
type relayConn struct {
	net.PacketConn
	t                *Server
	device, family   string         // family: the credential's token family tag, or ""
	relayed          netip.AddrPort // the address the client was given (XOR-RELAYED-ADDRESS)
	toPeer, fromPeer *tokenBucket
	once             sync.Once
	// okPeer is the last peer the policy allowed: a media stream sends
	// every datagram to one peer, so WriteTo checks the policy (prefix
	// scans, map lookups) once per peer change, not once per datagram.
	// The policy never changes after start, so a cached verdict stays true.
	okPeer atomic.Pointer[netip.AddrPort]
}

// WriteTo drops datagrams to peers the policy refuses (pion granted no
// permission to those, so this is defense in depth, and it also covers the
// ports refused on addresses that are allowed, like the edge's own
// listeners) and beyond the bitrate; a dropped datagram still reports
// success, as UDP would.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		c.t.denied.Add(1)
		return len(p), nil
	}
	ap := ua.AddrPort()
	if last := c.okPeer.Load(); last == nil || *last != ap {
		if c.t.policy.checkAddr(ap) != nil {
			c.t.denied.Add(1)
			return len(p), nil
		}
		c.okPeer.Store(&ap)
	}
	if !c.toPeer.take(len(p)) {
		c.t.dropped.Add(1)
		return len(p), nil
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.t.toPeers.Add(1)
		c.t.toBytes.Add(uint64(n))
	}
	return n, err
}

// ReadFrom skips datagrams beyond the bitrate.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if c.fromPeer.take(n) {
			c.t.fromPeers.Add(1)
			c.t.fromBytes.Add(uint64(n))
			return n, addr, nil
		}
		c.t.dropped.Add(1)
	}
}

// Close releases the allocation's place in the quotas, once.
func (c *relayConn) Close() error {
	err := c.PacketConn.Close()
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.relays, c)
		c.t.mu.Unlock()
		c.t.unreserve(c.device)
	})
	return err
}
