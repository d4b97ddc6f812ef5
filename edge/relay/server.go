package relay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/pion/turn/v5"

	"github.com/edgeway/edgeway/internal/logx"
	"github.com/edgeway/edgeway/internal/udpbatch"
	"github.com/edgeway/edgeway/mtls"
)

// Refusals the relay address generator hands pion (which answers 508).
var (
	errTURNCapacity    = errors.New("relay: turn.max_allocations reached")
	errTURNDeviceQuota = errors.New("relay: device allocation quota reached")
	errTURNNoTCPRelay  = errors.New("relay: TCP relays (RFC 6062) are not offered")
	errTURNClosed      = errors.New("relay: closed")
	errTURNDraining    = errors.New("relay: draining: no new allocations")
)

// Listeners are the sockets the relay answers on; a nil one is not
// served. TLS is a plain TCP listener: TLS with the edge's public
// certificate is added on it.
type Listeners struct {
	UDP net.PacketConn // turn.listen, UDP
	TCP net.Listener   // turn.listen, TCP
	TLS net.Listener   // turn.tls_listen
}

// Given reports whether any socket is set.
func (l Listeners) Given() bool { return l.UDP != nil || l.TCP != nil || l.TLS != nil }

// Close closes every socket that is set (for sockets New did not take).
func (l Listeners) Close() {
	for _, c := range []io.Closer{l.UDP, l.TCP, l.TLS} {
		if c != nil {
			_ = c.Close()
		}
	}
}

// Deps are what the relay uses but does not own the configuration of.
type Deps struct {
	// Listeners are the bound sockets; New takes them (Close closes them).
	Listeners Listeners
	// Cert is the edge's public certificate, for TLS.
	Cert mtls.CertSource
	// Log receives the relay's log and pion's (logx.Pion). Default: none.
	Log *slog.Logger
	// Draining is the edge's drain flag (drain.go); nil: never drains.
	Draining *atomic.Bool
	// Now is the clock credentials are checked against (default time.Now).
	Now func() time.Time
}

// Server is a running TURN relay. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	secret  []byte
	log     *slog.Logger
	now     func() time.Time
	srv     *turn.Server
	policy  *peerPolicy
	revoked *revokedFamilies
	// chanBindKeys: the long-term key of each client's last authenticated
	// ChannelBind, by client address, to sign the 403 that replaces pion's
	// 401 (sock.go). Bounded LRU, safe for concurrent use.
	chanBindKeys *lru.Cache[string, []byte]
	// alternates are turn.alternate_servers (alternate.go); allocKeys the
	// long-term key of each client's last authenticated Allocate while the
	// relay is full, and redirects the Allocates the QuotaHandler sent to
	// an alternate, by client address. Bounded LRUs.
	alternates []netip.AddrPort
	altNext    atomic.Uint64
	allocKeys  *lru.Cache[string, []byte]
	redirects  *lru.Cache[string, alternateRedirect]
	// draining is the edge's drain flag: no new allocations (nil: never).
	draining *atomic.Bool
	// udp is the UDP listener batched by turn.batch_io (nil: not batched);
	// pion reads and writes it through turnSocket, and closes it.
	udp *udpbatch.Conn

	mu        sync.Mutex
	closed    bool
	total     int
	perDevice map[string]int          // devices with live allocations; at most max_allocations entries
	relays    map[*relayConn]struct{} // live relay sockets
	tcpConns  map[string]*limitedConn // TURN TCP/TLS connections by "client|server" address

	meter
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg and starts serving TURN on d.Listeners, as pion's
// turn.NewServer does: its read loops run until Close. On an error the
// listeners are left to the caller.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	relayIP := net.ParseIP(cfg.RelayAddress)
	if len(cfg.Secret) == 0 || relayIP == nil || !d.Listeners.Given() {
		return nil, errors.New("relay: secret, relay address and a socket are required")
	}
	lo, hi, _ := cfg.relayPortRange()
	allowed, denied, _ := cfg.peerPrefixes()
	alternates, _ := cfg.alternateServers()
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	keys, err := lru.New[string, []byte](4096)
	if err != nil {
		return nil, err
	}
	allocKeys, err := lru.New[string, []byte](4096)
	if err != nil {
		return nil, err
	}
	redirects, err := lru.New[string, alternateRedirect](4096)
	if err != nil {
		return nil, err
	}
	t := &Server{
		cfg: cfg, secret: cfg.Secret, log: d.Log, now: d.Now, chanBindKeys: keys, revoked: newRevokedFamilies(maxRevokedFamilies),
		alternates: alternates, allocKeys: allocKeys, redirects: redirects, draining: d.Draining,
		perDevice: map[string]int{}, relays: map[*relayConn]struct{}{}, tcpConns: map[string]*limitedConn{},
	}
	t.policy = newPeerPolicy(peerPolicyConfig{allowed: allowed, denied: denied, core: cfg.CoreAddrs, ownIPs: ownIPs(cfg, relayIP, d.Listeners), ownPorts: cfg.OwnPorts})
	if shared := t.policy.sharedCoreAddrs(); len(shared) > 0 {
		d.Log.Warn("TURN: the core shares an address with this edge; relays are kept from the core's ports there, not from the whole address", "core", shared)
	}

	gen := func() turn.RelayAddressGenerator {
		return &relayGenerator{t: t, inner: &turn.RelayAddressGeneratorPortRange{
			RelayAddress: relayIP, MinPort: lo, MaxPort: hi, Address: cfg.RelayBind, MaxRetries: 40,
		}}
	}
	sc := turn.ServerConfig{
		Realm:              cfg.Realm,
		AuthHandler:        t.authenticate,
		QuotaHandler:       t.quota,
		LoggerFactory:      logx.Pion(d.Log),
		AllocationLifetime: cfg.AllocationLifetime,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(src, dst net.Addr, _, _, _ string, _ net.Addr, _ int) { t.tcpAllocated(src, dst, true) },
			OnAllocationDeleted: func(src, dst net.Addr, _, _, _ string) { t.tcpAllocated(src, dst, false) },
		},
	}
	l := d.Listeners
	if l.UDP != nil {
		pc := l.UDP
		if cfg.BatchIO {
			if uc, ok := l.UDP.(*net.UDPConn); ok {
				t.udp = udpbatch.New(uc, udpbatch.Options{})
				pc = t.udp
			} else {
				d.Log.Warn("TURN: turn.batch_io is on but the UDP listener is not a UDP socket; serving it unbatched", "type", fmt.Sprintf("%T", l.UDP))
			}
		}
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: &turnSocket{PacketConn: pc, t: t}, RelayAddressGenerator: gen(), PermissionHandler: t.permit})
	}
	if l.TCP != nil {
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: newConnLimiter(l.TCP, t), RelayAddressGenerator: gen(), PermissionHandler: t.permit})
	}
	if l.TLS != nil {
		if d.Cert == nil {
			return nil, errors.New("relay: TLS needs the public certificate")
		}
		tlsLn := mtls.NewListener(l.TLS, mtls.ServerConfigFrom(d.Cert), mtls.ListenerOptions{
			HandshakeTimeout:  cfg.HandshakeTimeout,
			MaxConnsPerSource: cfg.MaxConnsPerSource,
			OnReject: func(remote net.Addr, _ []string, err error) {
				d.Log.Debug("TURN TLS handshake failed", "remote", remote, "err", err)
			},
		})
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: newConnLimiter(tlsLn, t), RelayAddressGenerator: gen(), PermissionHandler: t.permit})
	}
	if t.srv, err = turn.NewServer(sc); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	return t, nil
}

// Close stops the server: sockets, listeners, their connections and every
// relay socket are closed when it returns. Later calls return the first
// call's error.
func (t *Server) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		t.closeErr = t.srv.Close()
		// pion closes the relays from its read loops as they end; close them
		// here too so that their ports are free when Close returns.
		t.mu.Lock()
		relays := make([]*relayConn, 0, len(t.relays))
		for r := range t.relays {
			relays = append(relays, r)
		}
		t.mu.Unlock()
		for _, r := range relays {
			_ = r.Close()
		}
	})
	return t.closeErr
}

// UDPStats are the batched UDP listener's counters (datagrams and system
// calls each way, drops); ok is false when turn.batch_io is off or there
// is no UDP listener.
func (t *Server) UDPStats() (s udpbatch.Stats, ok bool) {
	if t.udp == nil {
		return udpbatch.Stats{}, false
	}
	return t.udp.Stats(), true
}

// Allocations is the number of live allocations.
func (t *Server) Allocations() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// DeviceAllocations is the number of live allocations of device.
func (t *Server) DeviceAllocations(device string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.perDevice[device]
}

// RelayAddrs are the relayed transport addresses of the live allocations.
func (t *Server) RelayAddrs() []netip.AddrPort {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(t.relays))
	for r := range t.relays {
		out = append(out, r.relayed)
	}
	return out
}

// ownIPs are the edge's own addresses: relay, relay bind, public host,
// listeners and every interface address.
func ownIPs(cfg Config, relayIP net.IP, l Listeners) []netip.Addr {
	var out []netip.Addr
	add := func(ip net.IP) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	add(relayIP)
	add(net.ParseIP(cfg.RelayBind))
	add(net.ParseIP(cfg.PublicHost))
	var addrs []net.Addr
	if l.TCP != nil {
		addrs = append(addrs, l.TCP.Addr())
	}
	if l.TLS != nil {
		addrs = append(addrs, l.TLS.Addr())
	}
	if l.UDP != nil {
		addrs = append(addrs, l.UDP.LocalAddr())
	}
	for _, a := range addrs {
		switch v := a.(type) {
		case *net.TCPAddr:
			add(v.IP)
		case *net.UDPAddr:
			add(v.IP)
		}
	}
	if ifAddrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifAddrs {
			if n, ok := a.(*net.IPNet); ok {
				add(n.IP)
			}
		}
	}
	return out
}
