package relay

// The TCP/TLS connections pion's TURN server reads and writes through
// (connLimiter, limitedConn). What they add to pion:
//   - caps on TCP/TLS connections per listener and per source IP;
//   - TCP/TLS connections that hold no allocation closed after
//     turn.tcp_idle_timeout (issue 9, item 12): one that never allocates,
//     or whose allocation ended;
//   - the same answer rewriting as the UDP socket (sock.go).

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// connLimiter caps TURN TCP/TLS connections per listener and per source
// IP, closes the ones that hold no allocation for idle, and closes the
// accepted ones when it is closed (pion closes only the listener).
type connLimiter struct {
	net.Listener
	t              *Server
	max, perSource int
	idle           time.Duration

	mu       sync.Mutex
	closed   bool
	conns    map[*limitedConn]struct{}
	bySource map[netip.Addr]int
}

// newConnLimiter wraps ln with the caps of t: turn.max_allocations
// connections, max_conns_per_source per source IP, turn.tcp_idle_timeout.
func newConnLimiter(ln net.Listener, t *Server) *connLimiter {
	return &connLimiter{Listener: ln, t: t, max: t.cfg.MaxAllocations, perSource: t.cfg.MaxConnsPerSource, idle: t.cfg.TCPIdleTimeout,
		conns: map[*limitedConn]struct{}{}, bySource: map[netip.Addr]int{}}
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
func (t *Server) trackTCP(c *limitedConn) {
	t.mu.Lock()
	t.tcpConns[c.key] = c
	t.mu.Unlock()
	if c.l.idle > 0 {
		c.idleMu.Lock()
		c.idle = time.AfterFunc(c.l.idle, c.idleExpired)
		c.idleMu.Unlock()
	}
}

func (t *Server) untrackTCP(c *limitedConn) {
	t.mu.Lock()
	if t.tcpConns[c.key] == c {
		delete(t.tcpConns, c.key)
	}
	t.mu.Unlock()
}

// tcpAllocated is told of every allocation created and deleted (pion's
// EventHandler); for TCP and TLS connections it pauses or restarts the
// idle timer.
func (t *Server) tcpAllocated(client, server net.Addr, yes bool) {
	t.mu.Lock()
	c := t.tcpConns[tupleKey(client, server)]
	t.mu.Unlock()
	if c != nil {
		c.setAllocated(yes)
	}
}
