package edge

// The edge's TURN relay (RFC 8656, pion/turn): phones outside the
// enterprise relay their SRTP through it. Credentials are the TURN REST
// API kind (internal/turncred), handed out with each token response and
// expiring no later than the access token.
//
// What pion/turn decides and what this file adds:
//   - 401: pion, when the AuthHandler (turncred.Verify) refuses the
//     username (malformed, expired, wrong realm) or MESSAGE-INTEGRITY does
//     not match the key (a forged credential).
//   - 486 Allocation Quota Reached: pion, when the QuotaHandler says the
//     device already holds turn.max_allocations_per_device allocations.
//   - 508 Insufficient Capacity: pion answers 508 whenever the relay
//     address generator fails, so the generator refuses when
//     turn.max_allocations are live (and, for the rare race of two
//     concurrent allocations by one device past the QuotaHandler, when the
//     device's quota is full), and for TCP relays (RFC 6062), which the
//     edge does not offer: pion has no hook to answer 442 for them.
//   - 300 Try Alternate instead of 508 when the relay is full and
//     turn.alternate_servers names other edges (edge/turnalternate.go).
//   - 508, or 300 Try Alternate with turn.alternate_servers, for every new
//     Allocate once the edge drains (edge/drain.go); live allocations
//     keep refreshing and relaying.
//   - 401 also when the credential's refresh-token family was revoked
//     (edge/turnrevoke.go); the family's live allocations are closed.
//   - 403: pion, when the PermissionHandler (the peer policy,
//     edge/turnpolicy.go) refuses a peer in CreatePermission or RFC 6062
//     Connect. pion answers a refused ChannelBind with 401; the sockets
//     (edge/turnsock.go) turn that one answer into the 403 RFC 8656 §12.2
//     prescribes.
//   - Relayed datagrams are metered per allocation and direction with a
//     token bucket (turn.max_bitrate) and dropped beyond it; datagrams to
//     a peer the policy refuses (the edge's own TURN, SIP and HTTPS ports
//     among them) are dropped and counted.
//   - TCP and TLS connections that hold no allocation are closed after
//     turn.tcp_idle_timeout (edge/turnsock.go).
//
// Goroutines: pion runs one read loop per UDP socket and listener, one
// per accepted TCP/TLS connection and one per allocation; all of them end
// when TURN.Close closes the sockets, listeners, accepted connections and
// relay sockets. Idle timers of TCP connections are stopped when their
// connection closes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/edgeway/edgeway/internal/logx"
	"github.com/edgeway/edgeway/internal/turncred"
	"github.com/edgeway/edgeway/mtls"
)

// TURN refusals the relay address generator hands pion (which answers 508).
var (
	errTURNCapacity    = errors.New("edge: TURN: turn.max_allocations reached")
	errTURNDeviceQuota = errors.New("edge: TURN: device allocation quota reached")
	errTURNNoTCPRelay  = errors.New("edge: TURN: TCP relays (RFC 6062) are not offered")
	errTURNClosed      = errors.New("edge: TURN: closed")
	errTURNDraining    = errors.New("edge: TURN: draining: no new allocations")
)

// TURNListeners are the sockets the TURN server answers on; a nil one is
// not served. TLS is a plain TCP listener: TLS with the edge's public
// certificate is added on it.
type TURNListeners struct {
	UDP net.PacketConn // turn.listen, UDP
	TCP net.Listener   // turn.listen, TCP
	TLS net.Listener   // turn.tls_listen
}

func (l TURNListeners) given() bool { return l.UDP != nil || l.TCP != nil || l.TLS != nil }

func (l TURNListeners) close() {
	for _, c := range []io.Closer{l.UDP, l.TCP, l.TLS} {
		if c != nil {
			_ = c.Close()
		}
	}
}

// ListenTURN binds turn.listen (UDP and TCP) and turn.tls_listen.
func (s *Server) ListenTURN(ctx context.Context) (TURNListeners, error) {
	var lc net.ListenConfig
	var l TURNListeners
	var err error
	if l.UDP, err = lc.ListenPacket(ctx, "udp", s.cfg.TURN.Listen); err != nil {
		return TURNListeners{}, fmt.Errorf("edge: TURN UDP listener: %w", err)
	}
	if l.TCP, err = lc.Listen(ctx, "tcp", s.cfg.TURN.Listen); err != nil {
		l.close()
		return TURNListeners{}, fmt.Errorf("edge: TURN TCP listener: %w", err)
	}
	if l.TLS, err = lc.Listen(ctx, "tcp", s.cfg.TURN.TLSListen); err != nil {
		l.close()
		return TURNListeners{}, fmt.Errorf("edge: TURN TLS listener: %w", err)
	}
	return l, nil
}

// TURN returns the TURN server Serve is running, or nil.
func (s *Server) TURN() *TURN { return s.turn.Load() }

// loadTURNSecret reads turn.secret_file; nil when TURN is off.
func loadTURNSecret(cfg Config, log *slog.Logger) ([]byte, error) {
	if cfg.TURN.SecretFile == "" {
		return nil, nil
	}
	secret, err := turncred.LoadSecret(cfg.TURN.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("edge: turn.secret_file: %w", err)
	}
	if fi, err := os.Stat(cfg.TURN.SecretFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("turn.secret_file is readable by group or others; it signs TURN credentials", "file", cfg.TURN.SecretFile, "mode", fi.Mode().Perm().String())
	}
	return secret, nil
}

// startTURN starts the TURN server on ls.TURN when TURN is configured;
// it returns nil (and no error) when there is nothing to serve.
func (s *Server) startTURN(ctx context.Context, ls Listeners) (*TURN, error) {
	tl := ls.TURN
	if s.turnSecret == nil {
		if tl.given() {
			s.log.Warn("TURN sockets given but turn.secret_file is not set; not serving TURN")
			tl.close()
		}
		return nil, nil
	}
	if !tl.given() {
		s.log.Warn("turn.secret_file is set but Serve got no TURN sockets; token responses name a TURN server this process does not run")
		return nil, nil
	}
	relayIP := net.ParseIP(s.cfg.TURN.RelayAddress)
	if relayIP == nil {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", s.cfg.AdvertisedHost)
		if err == nil && len(ips) == 0 {
			err = errors.New("no IPv4 address")
		}
		if err != nil {
			tl.close()
			return nil, fmt.Errorf("edge: TURN: turn.relay_address is unset and advertised_host %q does not resolve: %w", s.cfg.AdvertisedHost, err)
		}
		relayIP = net.IP(ips[0].AsSlice())
	}
	var own []int
	for _, a := range []net.Addr{addrOf(ls.HTTPS), addrOf(ls.SIP), addrOf(tl.TCP), addrOf(tl.TLS)} {
		own = append(own, portOf(a))
	}
	if tl.UDP != nil {
		own = append(own, portOf(tl.UDP.LocalAddr()))
	}
	if s.cfg.TURN.AllowLoopbackPeers {
		s.log.Warn("turn.allow_loopback_peers is deprecated and allows all of 127.0.0.0/8 and ::1 as peers; list the loopback addresses you need in turn.allowed_peers")
	}
	core, errs := coreAddrs(ctx, s.cfg)
	for _, err := range errs {
		s.log.Warn("TURN: a core address does not resolve; relays are not kept from it", "err", err)
	}
	t, err := newTURN(turnOptions{
		cfg: s.cfg.TURN, secret: s.turnSecret, relayIP: relayIP, cert: s.public, listeners: tl, ownPorts: own, coreAddrs: core,
		handshakeTimeout: s.cfg.HandshakeTimeout, maxConnsPerSource: s.cfg.MaxConnsPerSource, log: s.log.With("turn", "server"),
		draining: &s.draining,
	})
	if err != nil {
		tl.close()
		return nil, err
	}
	s.turn.Store(t)
	if shared := t.policy.sharedCoreAddrs(); len(shared) > 0 {
		s.log.Warn("TURN: the core shares an address with this edge; relays are kept from the core's ports there, not from the whole address", "core", shared)
	}
	s.log.Info("TURN listening", "udp", addrOf(tl.UDP), "tcp", addrOf(tl.TCP), "tls", addrOf(tl.TLS), "relay", relayIP, "relay_ports", s.cfg.TURN.RelayPorts, "realm", s.cfg.TURN.Realm)
	return t, nil
}

// stopTURN closes what startTURN started (t may be nil).
func (s *Server) stopTURN(t *TURN) {
	if t == nil {
		return
	}
	s.turn.CompareAndSwap(t, nil)
	if err := t.Close(); err != nil {
		s.log.Debug("closing TURN", "err", err)
	}
}

func addrOf(x any) net.Addr {
	switch v := x.(type) {
	case net.Listener:
		if v != nil {
			return v.Addr()
		}
	case net.PacketConn:
		if v != nil {
			return v.LocalAddr()
		}
	}
	return nil
}

func portOf(a net.Addr) int {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.Port
	case *net.UDPAddr:
		return v.Port
	}
	return 0
}

// turnOptions are newTURN's inputs.
type turnOptions struct {
	cfg                TURNConfig // defaulted and validated
	secret             []byte
	relayIP            net.IP
	cert               mtls.CertSource // for TLS: the public certificate
	listeners          TURNListeners
	ownPorts           []int            // the edge's own ports (TURN, SIP, HTTPS): never relayed to
	coreAddrs          []netip.AddrPort // the core's addresses: never relayed to
	handshakeTimeout   time.Duration
	maxConnsPerSource  int
	log                *slog.Logger
	now                func() time.Time // default time.Now
	allocationLifetime time.Duration    // default pion's (10 min; clients may ask for up to 1 h)
	draining           *atomic.Bool     // the edge's drain flag (edge/drain.go); nil: never
}

// TURN is a running TURN server. Its counters are safe for concurrent use.
type TURN struct {
	cfg     TURNConfig
	secret  []byte
	log     *slog.Logger
	now     func() time.Time
	srv     *turn.Server
	policy  *peerPolicy
	revoked *revokedFamilies
	// chanBindKeys: the long-term key of each client's last authenticated
	// ChannelBind, by client address, to sign the 403 that replaces pion's
	// 401 (turnsock.go). Bounded LRU, safe for concurrent use.
	chanBindKeys *lru.Cache[string, []byte]
	// alternates are turn.alternate_servers (edge/turnalternate.go);
	// allocKeys the long-term key of each client's last authenticated
	// Allocate while the relay is full, and redirects the Allocates the
	// QuotaHandler sent to an alternate, by client address. Bounded LRUs.
	alternates []netip.AddrPort
	altNext    atomic.Uint64
	allocKeys  *lru.Cache[string, []byte]
	redirects  *lru.Cache[string, alternateRedirect]
	redirected atomic.Uint64
	// draining is the edge's drain flag: no new allocations (nil: never).
	draining *atomic.Bool

	mu        sync.Mutex
	closed    bool
	total     int
	perDevice map[string]int          // devices with live allocations; at most max_allocations entries
	relays    map[*relayConn]struct{} // live relay sockets
	tcpConns  map[string]*limitedConn // TURN TCP/TLS connections by "client|server" address

	dropped   atomic.Uint64 // datagrams over the bitrate limit
	denied    atomic.Uint64 // datagrams to peers the policy refuses
	refused   atomic.Uint64 // permissions, channels and connections the policy refused (403)
	toPeers   atomic.Uint64 // datagrams relayed from clients to peers
	fromPeers atomic.Uint64 // datagrams relayed from peers to clients
	toBytes   atomic.Uint64 // bytes of toPeers
	fromBytes atomic.Uint64 // bytes of fromPeers
	atCap     atomic.Uint64 // allocations refused: turn.max_allocations reached (508)
	quotaHits atomic.Uint64 // allocations refused: the device's quota (486/508)
	drainHits atomic.Uint64 // allocations refused: the edge drains (508)
	closeOnce sync.Once
	closeErr  error
}

func newTURN(o turnOptions) (*TURN, error) {
	lo, hi, err := o.cfg.relayPortRange()
	if err != nil {
		return nil, err
	}
	if len(o.secret) == 0 || o.relayIP == nil || !o.listeners.given() {
		return nil, errors.New("edge: TURN: secret, relay address and a socket are required")
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	allowed, denied, err := o.cfg.peerPrefixes()
	if err != nil {
		return nil, err
	}
	keys, err := lru.New[string, []byte](4096)
	if err != nil {
		return nil, err
	}
	alternates, err := o.cfg.alternateServers()
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
	t := &TURN{
		cfg: o.cfg, secret: o.secret, log: o.log, now: o.now, chanBindKeys: keys, revoked: newRevokedFamilies(maxRevokedFamilies),
		alternates: alternates, allocKeys: allocKeys, redirects: redirects, draining: o.draining,
		perDevice: map[string]int{}, relays: map[*relayConn]struct{}{}, tcpConns: map[string]*limitedConn{},
	}
	t.policy = newPeerPolicy(peerPolicyConfig{allowed: allowed, denied: denied, core: o.coreAddrs, ownIPs: ownIPs(o), ownPorts: o.ownPorts})

	gen := func() turn.RelayAddressGenerator {
		return &relayGenerator{t: t, inner: &turn.RelayAddressGeneratorPortRange{
			RelayAddress: o.relayIP, MinPort: lo, MaxPort: hi, Address: o.cfg.RelayBind, MaxRetries: 40,
		}}
	}
	sc := turn.ServerConfig{
		Realm:              o.cfg.Realm,
		AuthHandler:        t.authenticate,
		QuotaHandler:       t.quota,
		LoggerFactory:      logx.Pion(o.log),
		AllocationLifetime: o.allocationLifetime,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(src, dst net.Addr, _, _, _ string, _ net.Addr, _ int) { t.tcpAllocated(src, dst, true) },
			OnAllocationDeleted: func(src, dst net.Addr, _, _, _ string) { t.tcpAllocated(src, dst, false) },
		},
	}
	l := o.listeners
	if l.UDP != nil {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{PacketConn: &turnSocket{PacketConn: l.UDP, t: t}, RelayAddressGenerator: gen(), PermissionHandler: t.permit})
	}
	limits := func(ln net.Listener) net.Listener {
		return &connLimiter{Listener: ln, t: t, max: o.cfg.MaxAllocations, perSource: o.maxConnsPerSource, idle: o.cfg.TCPIdleTimeout,
			conns: map[*limitedConn]struct{}{}, bySource: map[netip.Addr]int{}}
	}
	if l.TCP != nil {
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: limits(l.TCP), RelayAddressGenerator: gen(), PermissionHandler: t.permit})
	}
	if l.TLS != nil {
		if o.cert == nil {
			return nil, errors.New("edge: TURN: TLS needs the public certificate")
		}
		tlsLn := mtls.NewListener(l.TLS, mtls.ServerConfigFrom(o.cert), mtls.ListenerOptions{
			HandshakeTimeout:  o.handshakeTimeout,
			MaxConnsPerSource: o.maxConnsPerSource,
			OnReject: func(remote net.Addr, _ []string, err error) {
				o.log.Debug("TURN TLS handshake failed", "remote", remote, "err", err)
			},
		})
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: limits(tlsLn), RelayAddressGenerator: gen(), PermissionHandler: t.permit})
	}
	if t.srv, err = turn.NewServer(sc); err != nil {
		return nil, fmt.Errorf("edge: TURN: %w", err)
	}
	return t, nil
}

// Close stops the server: sockets, listeners, their connections and every
// relay socket are closed when it returns.
func (t *TURN) Close() error {
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

// Allocations is the number of live allocations.
func (t *TURN) Allocations() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// DeviceAllocations is the number of live allocations of device.
func (t *TURN) DeviceAllocations(device string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.perDevice[device]
}

// RelayAddrs are the relayed transport addresses of the live allocations.
func (t *TURN) RelayAddrs() []netip.AddrPort {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]netip.AddrPort, 0, len(t.relays))
	for r := range t.relays {
		out = append(out, r.relayed)
	}
	return out
}

// Relayed counts the datagrams relayed so far: from clients to peers and
// from peers to clients.
func (t *TURN) Relayed() (toPeers, fromPeers uint64) { return t.toPeers.Load(), t.fromPeers.Load() }

// RelayedBytes is the bytes of the datagrams Relayed counts.
func (t *TURN) RelayedBytes() (toPeers, fromPeers uint64) {
	return t.toBytes.Load(), t.fromBytes.Load()
}

// DroppedDatagrams counts relayed datagrams dropped by the bitrate limit.
func (t *TURN) DroppedDatagrams() uint64 { return t.dropped.Load() }

// DeniedDatagrams counts datagrams an allocation tried to send to a peer
// the policy refuses: the edge's own TURN, SIP or HTTPS ports, the core.
func (t *TURN) DeniedDatagrams() uint64 { return t.denied.Load() }

// RefusedPeers counts the CreatePermission, ChannelBind and Connect
// requests refused (403) because of their peer.
func (t *TURN) RefusedPeers() uint64 { return t.refused.Load() }

// errTURNFamilyRevoked: the credential's token family was revoked (401).
var errTURNFamilyRevoked = errors.New("edge: TURN: the credential's token family was revoked")

// authenticate is the pion AuthHandler: the username must be a live
// turncred username in this realm whose token family (if it names one) is
// not revoked; pion checks MESSAGE-INTEGRITY with the key. The user ID
// pion keys allocations by is the device and family (turnUserID).
func (t *TURN) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	if ra.Realm != t.cfg.Realm {
		t.log.Debug("TURN request for another realm", "realm", ra.Realm, "remote", ra.SrcAddr)
		return "", nil, false
	}
	name, key, err := turncred.Verify(t.secret, ra.Realm, ra.Username, t.now())
	if err == nil && name.Family != "" && t.revoked.has(name.Family, t.now()) {
		err = errTURNFamilyRevoked
	}
	if err != nil {
		t.log.Debug("TURN credential refused", "username", ra.Username, "remote", ra.SrcAddr, "method", ra.Method.String(), "err", err)
		return "", nil, false
	}
	if ra.Method == stun.MethodChannelBind && ra.SrcAddr != nil {
		t.chanBindKeys.Add(ra.SrcAddr.String(), key)
	}
	if ra.Method == stun.MethodAllocate && ra.SrcAddr != nil && len(t.alternates) > 0 && (t.full() || t.isDraining()) {
		t.allocKeys.Add(ra.SrcAddr.String(), key) // for a 300 (edge/turnalternate.go)
	}
	return turnUserID(name), key, true
}

// turnUserID is the user ID pion keys allocations by: "<device>" or
// "<device>:<family tag>". A Refresh must come with a credential of the
// same device and family as the Allocate.
func turnUserID(n turncred.Name) string {
	if n.Family == "" {
		return n.Device
	}
	return n.Device + ":" + n.Family
}

// splitUserID undoes turnUserID (device names hold no colon).
func splitUserID(id string) (device, family string) {
	device, family, _ = strings.Cut(id, ":")
	return device, family
}

// quota is the pion QuotaHandler (false → 486), called once the Allocate
// is authenticated: the per-device limit, then, when the relay is full and
// turn.alternate_servers are set, a redirect whose 486 the socket turns
// into 300 Try Alternate (edge/turnalternate.go).
func (t *TURN) quota(userID, _ string, src net.Addr) bool {
	device, _ := splitUserID(userID)
	t.mu.Lock()
	n := t.perDevice[device]
	t.mu.Unlock()
	if n >= t.cfg.MaxAllocationsPerDevice {
		if src != nil {
			t.redirects.Remove(src.String()) // this 486 stays a 486
		}
		t.log.Debug("TURN allocation refused: device quota", "device", device, "remote", src, "allocations", n)
		t.quotaHits.Add(1)
		return false
	}
	return !t.redirect(src)
}

// reserve counts a new relay socket of device against both limits (pion → 508).
func (t *TURN) reserve(device string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return errTURNClosed
	case t.isDraining():
		t.log.Info("TURN allocation refused: the edge is draining", "device", device)
		t.drainHits.Add(1)
		return errTURNDraining
	case t.total >= t.cfg.MaxAllocations:
		t.log.Warn("TURN allocation refused: turn.max_allocations reached", "device", device, "allocations", t.total)
		t.atCap.Add(1)
		return errTURNCapacity
	case device != "" && t.perDevice[device] >= t.cfg.MaxAllocationsPerDevice:
		t.quotaHits.Add(1)
		return errTURNDeviceQuota
	}
	t.total++
	if device != "" {
		t.perDevice[device]++
	}
	return nil
}

func (t *TURN) unreserve(device string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total--
	if device == "" {
		return
	}
	if n := t.perDevice[device] - 1; n > 0 {
		t.perDevice[device] = n
	} else {
		delete(t.perDevice, device)
	}
}

// isDraining reports whether the edge drains: no new allocations.
func (t *TURN) isDraining() bool { return t.draining != nil && t.draining.Load() }

// DrainRefused counts the allocations refused (508) because the edge drains.
func (t *TURN) DrainRefused() uint64 { return t.drainHits.Load() }

// permit is the pion PermissionHandler (false → 403 to CreatePermission
// and Connect, 401 to ChannelBind which turnsock.go makes 403): the peer
// policy (edge/turnpolicy.go).
func (t *TURN) permit(client net.Addr, peer net.IP) bool {
	ip, _ := netip.AddrFromSlice(peer)
	if err := t.policy.checkIP(ip); err != nil {
		t.refused.Add(1)
		t.log.Debug("TURN peer refused", "client", client, "peer", peer, "err", err)
		return false
	}
	return true
}

// ownIPs are the edge's own addresses: relay, relay bind, public host,
// listeners and every interface address.
func ownIPs(o turnOptions) []netip.Addr {
	var out []netip.Addr
	add := func(ip net.IP) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	add(o.relayIP)
	add(net.ParseIP(o.cfg.RelayBind))
	add(net.ParseIP(o.cfg.PublicHost))
	for _, a := range []net.Addr{addrOf(o.listeners.TCP), addrOf(o.listeners.TLS), addrOf(o.listeners.UDP)} {
		switch v := a.(type) {
		case *net.TCPAddr:
			add(v.IP)
		case *net.UDPAddr:
			add(v.IP)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				add(n.IP)
			}
		}
	}
	return out
}

// relayGenerator allocates UDP relay sockets in turn.relay_ports, counted
// against the quotas and wrapped in the bitrate limit.
type relayGenerator struct {
	t     *TURN
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
func (t *TURN) newRelayConn(conn net.PacketConn, relayed net.Addr, device, family string) (r *relayConn, open bool) {
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
	t                *TURN
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

// tokenBucket meters bytes: rate per second, bursts up to half a
// second's worth (at least two full-size datagrams).
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate int) *tokenBucket {
	burst := max(float64(rate)/2, 2*1600)
	return &tokenBucket{rate: float64(rate), burst: burst, tokens: burst, last: time.Now()}
}

func (b *tokenBucket) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
