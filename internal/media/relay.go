package media

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/edgeway/edgeway/internal/logx"
)

// ErrTransport: AllocateRelay was asked for a transport other than udp,
// tcp or tls.
var ErrTransport = errors.New("media: TURN transport must be udp, tcp or tls")

// TURNError is a TURN server's error response to one of our requests
// (RFC 8656 §6.4, §18: 401 Unauthorized, 403 Forbidden, 437 Allocation
// Mismatch, 486 Allocation Quota Reached, 508 Insufficient Capacity, …).
type TURNError struct {
	Op     string // "allocate" or "create permission"
	Code   int
	Reason string
}

func (e *TURNError) Error() string {
	return fmt.Sprintf("media: TURN %s refused: %d %s", e.Op, e.Code, e.Reason)
}

// Relay is one TURN allocation (RFC 8656) held by pion/turn/v5's client:
// a relayed UDP transport address on the server and the net.PacketConn
// that sends and receives through it. The server only forwards; what goes
// through a Stream is SRTP.
type Relay struct {
	client *turn.Client
	base   net.PacketConn // our socket to the server (UDP, or TCP/TLS framed)
	conn   net.PacketConn // the relayed connection
	addr   netip.AddrPort
	server netip.AddrPort   // the TURN server that holds the allocation
	tried  []netip.AddrPort // servers asked, in order: the first, then each 300's alternate

	closeOnce sync.Once
	closeErr  error
}

// RelayOption is an optional setting of AllocateRelay.
type RelayOption func(*relayConfig)

type relayConfig struct {
	tls *tls.Config
	log *slog.Logger
}

// WithTLSConfig is the client TLS configuration for transport "tls" (TURN
// over TLS, port 5349 by convention). Without it AllocateRelay verifies the
// server against the system roots under the host name of server.
func WithTLSConfig(c *tls.Config) RelayOption { return func(rc *relayConfig) { rc.tls = c } }

// WithLogger sends pion/turn's log lines to l (default slog.Default())
// through logx.Pion: one level down (pion's Info at Debug, Warn at Info,
// Error at Warn), Trace dropped, each line with pion=<scope>.
func WithLogger(l *slog.Logger) RelayOption { return func(rc *relayConfig) { rc.log = l } }

// AllocateRelay connects to the TURN server at server (host:port) over
// transport ("udp", "tcp" or "tls"), authenticates with the long-term
// credential (RFC 8489 §9.2) username/credential in realm, and allocates a
// relayed UDP transport address. ctx bounds the connection and the
// Allocate transaction. The caller must Close the Relay.
//
// Refusals by the server come back as *TURNError (errors.As). A 300 Try
// Alternate whose ALTERNATE-SERVER comes with a valid MESSAGE-INTEGRITY
// under our credential (RFC 8489 §10) is followed: the Allocate is sent
// again to the alternate, over the same transport (TLS still verifies the
// first server's name), at most MaxRedirects times and never to a server
// already asked.
func AllocateRelay(ctx context.Context, server, transport, username, credential, realm string, opts ...RelayOption) (*Relay, error) {
	rc := relayConfig{log: slog.Default()}
	for _, o := range opts {
		o(&rc)
	}
	host, portStr, err := net.SplitHostPort(server)
	if err != nil {
		return nil, fmt.Errorf("media: TURN server %q: %w", server, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("media: TURN server %q: bad port", server)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("media: resolving TURN server %q: %w", host, err)
	}
	serverAP := netip.AddrPortFrom(ips[0].Unmap(), uint16(port))
	var tried []netip.AddrPort
	for {
		tried = append(tried, serverAP)
		r, alt, err := allocateOnce(ctx, serverAP, host, transport, username, credential, realm, rc)
		var te *TURNError
		if err == nil {
			r.tried = tried
			return r, nil
		}
		if !errors.As(err, &te) || te.Code != int(stun.CodeTryAlternate) {
			return nil, err
		}
		switch {
		case !alt.IsValid():
			return nil, fmt.Errorf("%w (no authenticated ALTERNATE-SERVER to follow)", err)
		case slices.Contains(tried, alt):
			return nil, fmt.Errorf("%w: redirected back to %s, already asked (%v)", err, alt, tried)
		case len(tried) > MaxRedirects:
			return nil, fmt.Errorf("%w: more than %d redirects (%v)", err, MaxRedirects, tried)
		}
		rc.log.Debug("TURN server redirects the allocation", "server", serverAP, "alternate", alt)
		serverAP = alt
	}
}

// MaxRedirects bounds the 300 Try Alternate answers AllocateRelay follows
// for one allocation.
const MaxRedirects = 3

// allocateOnce is one Allocate at one server. On a 300 it also returns
// the authenticated ALTERNATE-SERVER, if the answer carried one.
func allocateOnce(ctx context.Context, serverAP netip.AddrPort, host, transport, username, credential, realm string, rc relayConfig) (*Relay, netip.AddrPort, error) {
	var err error
	family := turn.RequestedAddressFamilyIPv4
	if serverAP.Addr().Is6() {
		family = turn.RequestedAddressFamilyIPv6
	}

	var base net.PacketConn
	switch transport {
	case "udp":
		network, wildcard := "udp4", "0.0.0.0:0"
		if serverAP.Addr().Is6() {
			network, wildcard = "udp6", "[::]:0"
		}
		var lc net.ListenConfig
		base, err = lc.ListenPacket(ctx, network, wildcard)
	case "tcp":
		var d net.Dialer
		var c net.Conn
		if c, err = d.DialContext(ctx, "tcp", serverAP.String()); err == nil {
			base = turn.NewSTUNConn(c)
		}
	case "tls":
		cfg := rc.tls
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		d := tls.Dialer{Config: cfg}
		var c net.Conn
		if c, err = d.DialContext(ctx, "tcp", serverAP.String()); err == nil {
			base = turn.NewSTUNConn(c)
		}
	default:
		return nil, netip.AddrPort{}, fmt.Errorf("%w, not %q", ErrTransport, transport)
	}
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("media: connecting to TURN server %s over %s: %w", serverAP, transport, err)
	}

	watch := &redirectWatch{PacketConn: base, username: username, password: credential, realm: realm}
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr:         serverAP.String(),
		TURNServerAddr:         serverAP.String(),
		Conn:                   watch,
		Username:               username,
		Password:               credential,
		Realm:                  realm,
		LoggerFactory:          logx.Pion(rc.log),
		RequestedAddressFamily: family,
	})
	if err != nil {
		_ = base.Close()
		return nil, netip.AddrPort{}, fmt.Errorf("media: TURN client for %s: %w", serverAP, err)
	}
	if err := client.Listen(); err != nil {
		client.Close()
		_ = base.Close()
		return nil, netip.AddrPort{}, fmt.Errorf("media: TURN client for %s: %w", serverAP, err)
	}
	conn, err := client.AllocateWithContext(ctx)
	if err != nil {
		client.Close()
		_ = base.Close()
		return nil, watch.alternate(), fmt.Errorf("media: TURN allocation on %s over %s: %w", serverAP, transport, turnError("allocate", err))
	}
	r := &Relay{client: client, base: base, conn: conn, server: serverAP}
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		r.addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return r, netip.AddrPort{}, nil
}

// turnError turns pion's STUN error response into a *TURNError.
func turnError(op string, err error) error {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return &TURNError{Op: op, Code: int(te.ErrorCodeAttr.Code), Reason: string(te.ErrorCodeAttr.Reason)}
	}
	return err
}

// Server is the TURN server that holds the allocation: the one asked
// first, or the alternate a 300 Try Alternate sent the client to.
func (r *Relay) Server() netip.AddrPort { return r.server }

// Tried lists the servers asked for this allocation, in order.
func (r *Relay) Tried() []netip.AddrPort { return slices.Clone(r.tried) }

// redirectWatch is the client's socket to the TURN server as pion's
// client sees it: it notes the ALTERNATE-SERVER of an Allocate's 300 Try
// Alternate whose MESSAGE-INTEGRITY checks under our long-term key (pion's
// client reports only the error code). The realm is the one given, or the
// last one the server named in a challenge.
type redirectWatch struct {
	net.PacketConn
	username, password string

	mu    sync.Mutex
	realm string
	alt   netip.AddrPort
}

var allocateErrorType = stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse)

func (w *redirectWatch) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := w.PacketConn.ReadFrom(p)
	if err == nil && n >= 20 && stun.IsMessage(p[:n]) {
		w.inspect(p[:n])
	}
	return n, addr, err
}

func (w *redirectWatch) inspect(raw []byte) {
	m := &stun.Message{Raw: append([]byte(nil), raw...)}
	if m.Decode() != nil || m.Type.Class != stun.ClassErrorResponse {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var realm stun.Realm
	if realm.GetFrom(m) == nil { // pion signs with the realm of the last challenge
		w.realm = realm.String()
	}
	var code stun.ErrorCodeAttribute
	if m.Type != allocateErrorType || code.GetFrom(m) != nil || code.Code != stun.CodeTryAlternate {
		return
	}
	// RFC 8489 §10: a 300 to an authenticated request without a valid
	// MESSAGE-INTEGRITY is ignored (a forged redirect).
	if w.realm == "" || stun.NewLongTermIntegrity(w.username, w.realm, w.password).Check(m) != nil {
		return
	}
	var alt stun.AlternateServer
	if alt.GetFrom(m) != nil {
		return
	}
	ip, ok := netip.AddrFromSlice(alt.IP)
	if !ok || alt.Port <= 0 || alt.Port > 65535 {
		return
	}
	w.alt = netip.AddrPortFrom(ip.Unmap(), uint16(alt.Port))
}

// RemoteAddr is the stream's peer (TCP, TLS), nil over UDP: pion's
// client asks, to know which datagrams come from the server.
func (w *redirectWatch) RemoteAddr() net.Addr {
	if c, ok := w.PacketConn.(interface{ RemoteAddr() net.Addr }); ok {
		return c.RemoteAddr()
	}
	return nil
}

func (w *redirectWatch) alternate() netip.AddrPort {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.alt
}

// PacketConn is the relayed connection: WriteTo sends through the server
// to a permitted peer, ReadFrom returns what permitted peers sent to Addr.
func (r *Relay) PacketConn() net.PacketConn { return r.conn }

// Addr is the relayed transport address, the one to put in SDP.
func (r *Relay) Addr() netip.AddrPort { return r.addr }

// Permit installs permissions for the peers' IP addresses (RFC 8656 §9,
// CreatePermission). Until then the server drops what they send to Addr;
// the phone permits the address in the peer's SDP before media starts.
// pion refreshes the permissions while the Relay is open.
func (r *Relay) Permit(peers ...net.Addr) error {
	if err := r.client.CreatePermission(peers...); err != nil {
		return fmt.Errorf("media: TURN permission for %v: %w", peers, turnError("create permission", err))
	}
	return nil
}

// Close releases the allocation (a Refresh with lifetime 0) and closes
// the connection to the server. It is safe to call more than once.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.closeErr = r.conn.Close() // sends the deallocating Refresh
		r.client.Close()
		if err := r.base.Close(); err != nil && r.closeErr == nil && !errors.Is(err, net.ErrClosed) {
			r.closeErr = err
		}
		if r.closeErr != nil {
			r.closeErr = fmt.Errorf("media: releasing TURN allocation %s: %w", r.addr, r.closeErr)
		}
	})
	return r.closeErr
}
