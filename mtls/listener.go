package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Listener defaults.
const (
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultMaxConns          = 100000
	DefaultMaxConnsPerSource = 1000
)

// ListenerOptions tunes NewListener. Zero values select the defaults.
type ListenerOptions struct {
	HandshakeTimeout  time.Duration // default 10s
	MaxConns          int           // concurrent connections (handshaking or open) per listener; default 100000; excess accepted sockets are closed at once
	MaxConnsPerSource int           // per remote IP; default 1000
	// EstablishTimeout, when positive, closes a connection whose handshake
	// completed unless Established is called for it within this long: a
	// client that connects and never proves itself (for SIP: never
	// registers) gives its slot back instead of holding it until the
	// application's idle timeout. Zero: no such timeout.
	EstablishTimeout time.Duration
	// OnReject is called when a handshake fails; names are the CertNames of
	// the client leaf if one was presented (possibly empty), nil otherwise.
	// It is also called, with nil names and an error wrapping ErrConnLimit or
	// ErrSourceConnLimit, when a socket is closed for exceeding a limit;
	// that call is made on the accept goroutine and must not block. And it
	// is called, with nil names and an error wrapping ErrNotEstablished,
	// from a timer goroutine when EstablishTimeout closes a connection.
	// Handshake failures caused by closing the listener are not reported.
	OnReject func(remote net.Addr, names []string, err error)
	// OnAccept is called after a successful handshake, before the
	// connection is handed to Accept.
	OnAccept func(conn *tls.Conn)
}

// NewListener wraps a plain net.Listener: Accept returns only *tls.Conn whose
// handshake completed within HandshakeTimeout. Each handshake runs in its own
// goroutine, so silent or slow clients cannot stall Accept. Connections are
// counted from TCP accept until the *tls.Conn is closed; sockets over
// MaxConns or MaxConnsPerSource are closed at once.
//
// Close stops accepting, closes the inner listener and every connection that
// is still handshaking or waiting for Accept; connections already returned by
// Accept are the caller's.
//
// The *tls.Conn's NetConn() is a wrapper around the accepted socket (it does
// the connection accounting), not the socket itself.
//
// cfg must not be modified after the call. The listener observes the client
// certificate through cfg's VerifyConnection/VerifyPeerCertificate (all
// configs from this package verify there); with crypto/tls' built-in client
// verification (RequireAndVerifyClientCert) a certificate rejected by it is
// not seen and OnReject gets nil names.
func NewListener(inner net.Listener, cfg *tls.Config, o ListenerOptions) net.Listener {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConnsPerSource <= 0 {
		o.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		inner:     inner,
		opts:      o,
		ctx:       ctx,
		cancel:    cancel,
		conns:     make(chan *tls.Conn),
		fatal:     make(chan struct{}),
		perSource: make(map[netip.Addr]int),
	}
	if inner == nil || cfg == nil {
		l.inner = nilListener{}
		if inner != nil {
			l.inner = inner
		}
		l.fatalErr = errors.New("mtls: NewListener: nil net.Listener or tls.Config")
		close(l.fatal)
		return l
	}
	l.base = cfg.Clone()
	l.base.GetConfigForClient = l.configForClient(cfg)
	go l.acceptLoop()
	return l
}

type listener struct {
	inner  net.Listener
	base   *tls.Config
	opts   ListenerOptions
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	conns  chan *tls.Conn

	fatal    chan struct{} // closed when the inner listener fails for good
	fatalErr error         // written before fatal is closed

	closeOnce sync.Once
	closeErr  error

	mu        sync.Mutex
	total     int
	perSource map[netip.Addr]int
}

// Accept returns the next connection whose TLS handshake completed.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
	case <-l.fatal:
		return nil, l.fatalErr
	}
}

// Close closes the inner listener and all connections not yet returned by
// Accept. It does not wait for callbacks in progress.
func (l *listener) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.closeErr = l.inner.Close()
	})
	return l.closeErr
}

// Addr returns the inner listener's address.
func (l *listener) Addr() net.Addr { return l.inner.Addr() }

func (l *listener) acceptLoop() {
	var delay time.Duration
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			if isTemporary(err) {
				// Back off as net/http does (EMFILE and friends).
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay *= 2; delay > time.Second {
					delay = time.Second
				}
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-l.ctx.Done():
					t.Stop()
					return
				}
				continue
			}
			l.fatalErr = fmt.Errorf("mtls: accepting on %s: %w", l.inner.Addr(), err)
			close(l.fatal)
			return
		}
		delay = 0
		tc, err := l.track(raw)
		if err != nil {
			remote := raw.RemoteAddr()
			_ = raw.Close()
			l.reject(remote, nil, fmt.Errorf("mtls: refusing connection from %s: %w", remote, err))
			continue
		}
		go l.serve(tc)
	}
}

func isTemporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var tmp interface{ Temporary() bool }
	if errors.As(err, &tmp) && tmp.Temporary() {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serve handshakes one connection and hands it to Accept.
func (l *listener) serve(tc *trackedConn) {
	conn := tls.Server(tc, l.base)
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.HandshakeTimeout)
	defer cancel()
	// The deadline bounds the handshake even if a callback ignores ctx; the
	// context also aborts it when the listener closes.
	err := tc.SetDeadline(time.Now().Add(l.opts.HandshakeTimeout))
	if err == nil {
		err = conn.HandshakeContext(ctx)
	}
	if err == nil {
		err = tc.SetDeadline(time.Time{})
	}
	if err != nil {
		_ = conn.Close()
		if l.ctx.Err() != nil {
			return // listener closed; not a rejection
		}
		var names []string
		if leaf := tc.leaf.Load(); leaf != nil {
			names = CertNames(leaf)
			if names == nil {
				names = []string{}
			}
		}
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			err = fmt.Errorf("%w: %w", ErrHandshakeTimeout, err)
		}
		l.reject(tc.RemoteAddr(), names, fmt.Errorf("mtls: TLS handshake with %s: %w", tc.RemoteAddr(), err))
		return
	}
	if d := l.opts.EstablishTimeout; d > 0 {
		tc.armEstablish(d)
	}
	if l.opts.OnAccept != nil {
		l.opts.OnAccept(conn)
	}
	select {
	case l.conns <- conn:
	case <-l.ctx.Done():
		_ = conn.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (l *listener) reject(remote net.Addr, names []string, err error) {
	if l.opts.OnReject != nil {
		l.opts.OnReject(remote, names, err)
	}
}

// configForClient returns the GetConfigForClient hook installed on the
// listener's base config. It gives each handshake a clone of cfg (or of what
// cfg's own GetConfigForClient returns) whose verification callbacks also
// record the client leaf on the connection, for OnReject. Session ticket
// keys still come from the shared base config (crypto/tls uses the original
// config's keys unless the returned one sets its own), so resumption works
// across connections.
func (l *listener) configForClient(cfg *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		src := cfg
		if cfg.GetConfigForClient != nil {
			c, err := cfg.GetConfigForClient(hello)
			if err != nil {
				return nil, err
			}
			if c != nil {
				src = c
			}
		}
		tc, ok := hello.Conn.(*trackedConn)
		// A config that asks for no client certificate (the edge's phone
		// ports) has no leaf to record: no per-connection clone, which
		// the *tls.Conn would keep for its lifetime (about 0.5 KiB an
		// idle phone).
		if !ok || src.ClientAuth == tls.NoClientCert {
			if src == cfg {
				return nil, nil
			}
			return src, nil
		}
		per := src.Clone()
		per.GetConfigForClient = nil
		vc := per.VerifyConnection
		per.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				tc.leaf.Store(cs.PeerCertificates[0])
			}
			if vc != nil {
				return vc(cs)
			}
			return nil
		}
		if vpc := per.VerifyPeerCertificate; vpc != nil {
			per.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
				if len(raw) > 0 && tc.leaf.Load() == nil {
					if leaf, err := x509.ParseCertificate(raw[0]); err == nil {
						tc.leaf.Store(leaf)
					}
				}
				return vpc(raw, chains)
			}
		}
		return per, nil
	}
}

// track counts a freshly accepted socket against the limits.
func (l *listener) track(c net.Conn) (*trackedConn, error) {
	src := sourceAddr(c.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.opts.MaxConns {
		return nil, ErrConnLimit
	}
	if l.perSource[src] >= l.opts.MaxConnsPerSource {
		return nil, ErrSourceConnLimit
	}
	l.total++
	l.perSource[src]++
	return &trackedConn{Conn: c, l: l, src: src}, nil
}

func (l *listener) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.perSource[src] - 1; n > 0 {
		l.perSource[src] = n
	} else {
		delete(l.perSource, src)
	}
}

// sourceAddr is the per-source accounting key: the remote IP, unmapped.
// Addresses that are not IP (for example Unix sockets) share the zero key.
func sourceAddr(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// nilListener stands in for a missing inner listener so that methods of a
// misconfigured listener return errors instead of panicking.
type nilListener struct{}

func (nilListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (nilListener) Close() error              { return nil }
func (nilListener) Addr() net.Addr            { return &net.TCPAddr{} }

// trackedConn sits under the *tls.Conn: closing the TLS connection closes
// it, which releases the connection's slot exactly once.
type trackedConn struct {
	net.Conn
	l    *listener
	src  netip.Addr
	once sync.Once
	leaf atomic.Pointer[x509.Certificate] // client leaf seen during the handshake

	estMu       sync.Mutex
	established bool
	estTimer    *time.Timer // closes the connection unless established; nil when unarmed
}

// Close releases the slot, then closes the socket: a client that sees
// the connection end finds the slot free again.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.release(c.src)
		c.estMu.Lock()
		if c.estTimer != nil {
			c.estTimer.Stop()
		}
		c.estMu.Unlock()
	})
	return c.Conn.Close()
}

// armEstablish closes the connection after d unless established first.
// Closing the socket makes the application's pending Read fail with
// net.ErrClosed, so its read loop ends as for any closed connection.
func (c *trackedConn) armEstablish(d time.Duration) {
	c.estMu.Lock()
	defer c.estMu.Unlock()
	if c.established {
		return
	}
	c.estTimer = time.AfterFunc(d, func() {
		c.estMu.Lock()
		est := c.established
		c.estMu.Unlock()
		if !est {
			c.l.reject(c.RemoteAddr(), nil, fmt.Errorf("mtls: closing connection from %s: %w after %s", c.RemoteAddr(), ErrNotEstablished, d))
			_ = c.Close()
		}
	})
}

func (c *trackedConn) establish() {
	c.estMu.Lock()
	defer c.estMu.Unlock()
	c.established = true
	if c.estTimer != nil {
		c.estTimer.Stop()
		c.estTimer = nil // not kept for the connection's lifetime
	}
}

// Established marks a connection accepted from a listener of this package
// as proven (for SIP: it registered), stopping its EstablishTimeout. conn
// is the *tls.Conn Accept returned or a wrapper whose NetConn, Conn field
// or Unwrap leads to it. It reports whether conn came from such a
// listener.
func Established(conn net.Conn) bool {
	for range 4 {
		switch c := conn.(type) {
		case *trackedConn:
			c.establish()
			return true
		case *tls.Conn:
			conn = c.NetConn()
		case interface{ Unwrap() net.Conn }:
			conn = c.Unwrap()
		default:
			return false
		}
	}
	return false
}
