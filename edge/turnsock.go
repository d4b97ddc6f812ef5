package edge

// The sockets pion's TURN server reads and writes through: the UDP socket
// (turnSocket) and the accepted TCP/TLS connections (connLimiter,
// limitedConn). What they add to pion:
//   - ChannelData over UDP without padding (unpaddedUDP);
//   - a ChannelBind refused by the peer policy answered 403 Forbidden, as
//     RFC 8656 §12.2 says, where pion answers 401 (channelBindRefusal);
//   - caps on TCP/TLS connections per listener and per source IP;
//   - TCP/TLS connections that hold no allocation closed after
//     turn.tcp_idle_timeout (issue 9, item 12): one that never allocates,
//     or whose allocation ended.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun/v4"
)

// turnSocket is the TURN UDP socket as pion sees it.
type turnSocket struct {
	net.PacketConn
	t *TURN
}

func (s *turnSocket) WriteTo(p []byte, addr net.Addr) (int, error) {
	fixed, ok := s.t.channelBindRefusal(p, addr)
	if !ok {
		fixed, ok = s.t.tryAlternate(p, addr)
	}
	if ok {
		if _, err := s.PacketConn.WriteTo(fixed, addr); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return unpaddedUDP{s.PacketConn}.WriteTo(p, addr)
}

var channelBindError = stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse).Value()

// channelBindRefusal rewrites pion's answer to a ChannelBind whose peer
// the PermissionHandler refused — 401 Unauthorized with MESSAGE-INTEGRITY,
// which no other ChannelBind path sends (a 401 challenge carries none) —
// into 403 Forbidden signed with the same key (RFC 8656 §12.2: "the server
// rejects the request with a 403 (Forbidden) error"). A 401 tells a client
// its credential is wrong and invites it to retry; the peer is the
// problem. ok is false for anything else, which is written unchanged.
func (t *TURN) channelBindRefusal(p []byte, to net.Addr) ([]byte, bool) {
	if len(p) < 20 || binary.BigEndian.Uint16(p) != channelBindError || to == nil {
		return nil, false
	}
	m := &stun.Message{Raw: append([]byte(nil), p...)}
	var code stun.ErrorCodeAttribute
	if m.Decode() != nil || code.GetFrom(m) != nil || code.Code != stun.CodeUnauthorized || !m.Contains(stun.AttrMessageIntegrity) {
		return nil, false
	}
	key, ok := t.chanBindKeys.Get(to.String())
	if !ok {
		return nil, false
	}
	out, err := stun.Build(&stun.Message{TransactionID: m.TransactionID}, stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeForbidden, Reason: []byte("Forbidden")}, stun.MessageIntegrity(key))
	if err != nil {
		return nil, false
	}
	return out.Raw, true
}

// unpaddedUDP sends ChannelData messages over UDP without the padding
// pion/turn adds to a multiple of 4 bytes. RFC 8656 section 12.5 makes
// that padding optional over UDP, and clients that take the datagram's
// length for the data's (libre, hence baresip) then see two stray bytes
// on every G.711 SRTP packet (12 + 160 + 10 = 182) and fail its
// authentication. coturn does not pad over UDP either.
type unpaddedUDP struct{ net.PacketConn }

func (u unpaddedUDP) WriteTo(p []byte, addr net.Addr) (int, error) {
	if n := channelDataLen(p); n < len(p) {
		if _, err := u.PacketConn.WriteTo(p[:n], addr); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return u.PacketConn.WriteTo(p, addr)
}

// channelDataLen is the length of the ChannelData message in p without its
// padding (RFC 8656 section 12.4: channel numbers 0x4000-0x4FFF, the
// 16-bit length counts the application data only), or len(p) when p is
// not ChannelData or its padding is not 1 to 3 bytes.
func channelDataLen(p []byte) int {
	if len(p) < 4 || p[0]&0xF0 != 0x40 {
		return len(p)
	}
	n := 4 + int(binary.BigEndian.Uint16(p[2:4]))
	if n < len(p) && len(p)-n < 4 {
		return n
	}
	return len(p)
}

// connLimiter caps TURN TCP/TLS connections per listener and per source
// IP, closes the ones that hold no allocation for idle, and closes the
// accepted ones when it is closed (pion closes only the listener).
type connLimiter struct {
	net.Listener
	t              *TURN
	max, perSource int
	idle           time.Duration

	mu       sync.Mutex
	closed   bool
	conns    map[*limitedConn]struct{}
	bySource map[netip.Addr]int
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var src netip.Addr
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			src = ap.Addr().Unmap()
		}
		l.mu.Lock()
		if l.closed || len(l.conns) >= l.max || l.bySource[src] >= l.perSource {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		lc := &limitedConn{Conn: c, l: l, src: src, key: tupleKey(c.RemoteAddr(), c.LocalAddr())}
		l.conns[lc] = struct{}{}
		l.bySource[src]++
		l.mu.Unlock()
		l.t.trackTCP(lc)
		return lc, nil
	}
}

func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	conns := make([]*limitedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	err := l.Listener.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	return err
}

type limitedConn struct {
	net.Conn
	l    *connLimiter
	src  netip.Addr
	key  string // tupleKey, as pion's allocation events name the connection
	once sync.Once

	idleMu    sync.Mutex
	idle      *time.Timer // closes the connection; stopped while it holds an allocation
	allocated bool
	closed    bool
}

// Write is one STUN message or ChannelData per call (pion's STUNConn).
func (c *limitedConn) Write(p []byte) (int, error) {
	fixed, ok := c.l.t.channelBindRefusal(p, c.Conn.RemoteAddr())
	if !ok {
		fixed, ok = c.l.t.tryAlternate(p, c.Conn.RemoteAddr())
	}
	if ok {
		if _, err := c.Conn.Write(fixed); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// setAllocated stops the idle timer while the connection holds an
// allocation, and restarts it when the allocation ends.
func (c *limitedConn) setAllocated(yes bool) {
	c.idleMu.Lock()
	defer c.idleMu.Unlock()
	if c.closed || c.idle == nil {
		return
	}
	c.allocated = yes
	if yes {
		c.idle.Stop()
	} else {
		c.idle.Reset(c.l.idle)
	}
}

// idleExpired is the idle timer's function.
func (c *limitedConn) idleExpired() {
	c.idleMu.Lock()
	expired := !c.allocated && !c.closed
	c.idleMu.Unlock()
	if expired {
		c.l.t.log.Debug("closing a TURN connection that holds no allocation", "remote", c.RemoteAddr(), "after", c.l.idle)
		_ = c.Close()
	}
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.idleMu.Lock()
		c.closed = true
		if c.idle != nil {
			c.idle.Stop()
		}
		c.idleMu.Unlock()
		c.l.t.untrackTCP(c)
		c.l.mu.Lock()
		defer c.l.mu.Unlock()
		delete(c.l.conns, c)
		if n := c.l.bySource[c.src] - 1; n > 0 {
			c.l.bySource[c.src] = n
		} else {
			delete(c.l.bySource, c.src)
		}
	})
	return err
}

// tupleKey names a TCP connection by its two ends, as pion's allocation
// events do (client address, server address).
func tupleKey(client, server net.Addr) string {
	if client == nil || server == nil {
		return ""
	}
	return client.String() + "|" + server.String()
}

// trackTCP registers an accepted connection and starts its idle timer.
func (t *TURN) trackTCP(c *limitedConn) {
	t.mu.Lock()
	t.tcpConns[c.key] = c
	t.mu.Unlock()
	if c.l.idle > 0 {
		c.idleMu.Lock()
		c.idle = time.AfterFunc(c.l.idle, c.idleExpired)
		c.idleMu.Unlock()
	}
}

func (t *TURN) untrackTCP(c *limitedConn) {
	t.mu.Lock()
	if t.tcpConns[c.key] == c {
		delete(t.tcpConns, c.key)
	}
	t.mu.Unlock()
}

// tcpAllocated is told of every allocation created and deleted (pion's
// EventHandler); for TCP and TLS connections it pauses or restarts the
// idle timer.
func (t *TURN) tcpAllocated(client, server net.Addr, yes bool) {
	t.mu.Lock()
	c := t.tcpConns[tupleKey(client, server)]
	t.mu.Unlock()
	if c != nil {
		c.setAllocated(yes)
	}
}
