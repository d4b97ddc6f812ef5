package edge

// The edge's side of its TURN relay (edge/relay): binding turn.listen and
// turn.tls_listen, reading turn.secret_file, mapping turn.* to
// relay.Config, and starting and stopping the relay with Serve. The
// relay's refusals and their RFCs are listed in edge/relay/doc.go.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"

	"github.com/edgeway/edgeway/edge/relay"
	"github.com/edgeway/edgeway/internal/turncred"
)

// TURN is the edge's running TURN relay.
type TURN = relay.Server

// TURNListeners are the sockets the TURN relay answers on (relay.Listeners).
type TURNListeners = relay.Listeners

// ListenTURN binds turn.listen (UDP and TCP) and turn.tls_listen.
func (s *Server) ListenTURN(ctx context.Context) (TURNListeners, error) {
	var lc net.ListenConfig
	var l TURNListeners
	var err error
	if l.UDP, err = lc.ListenPacket(ctx, "udp", s.cfg.TURN.Listen); err != nil {
		return TURNListeners{}, fmt.Errorf("edge: TURN UDP listener: %w", err)
	}
	if l.TCP, err = lc.Listen(ctx, "tcp", s.cfg.TURN.Listen); err != nil {
		l.Close()
		return TURNListeners{}, fmt.Errorf("edge: TURN TCP listener: %w", err)
	}
	if l.TLS, err = lc.Listen(ctx, "tcp", s.cfg.TURN.TLSListen); err != nil {
		l.Close()
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

// relayConfig maps turn.* (defaulted) to the relay's configuration; the
// edge-level values (secret, resolved relay address, own ports, the
// core's addresses, connection caps) are filled in by startTURN.
func (t TURNConfig) relayConfig() relay.Config {
	return relay.Config{
		Realm: t.Realm, PublicHost: t.PublicHost,
		RelayAddress: t.RelayAddress, RelayBind: t.RelayBind, RelayPorts: t.RelayPorts,
		MaxAllocationsPerDevice: t.MaxAllocationsPerDevice, MaxAllocations: t.MaxAllocations,
		AlternateServers: t.AlternateServers, MaxBitrate: t.MaxBitrate,
		AllowedPeers: t.AllowedPeers, DeniedPeers: t.DeniedPeers, AllowLoopbackPeers: t.AllowLoopbackPeers,
		TCPIdleTimeout: t.TCPIdleTimeout, BatchIO: t.BatchIO == nil || *t.BatchIO,
	}
}

// startTURN starts the TURN server on ls.TURN when TURN is configured;
// it returns nil (and no error) when there is nothing to serve.
func (s *Server) startTURN(ctx context.Context, ls Listeners) (*TURN, error) {
	tl := ls.TURN
	if s.turnSecret == nil {
		if tl.Given() {
			s.log.Warn("TURN sockets given but turn.secret_file is not set; not serving TURN")
			tl.Close()
		}
		return nil, nil
	}
	if !tl.Given() {
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
			tl.Close()
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
	rc := s.cfg.TURN.relayConfig()
	rc.Secret, rc.RelayAddress, rc.OwnPorts, rc.CoreAddrs = s.turnSecret, relayIP.String(), own, core
	rc.HandshakeTimeout, rc.MaxConnsPerSource = s.cfg.HandshakeTimeout, s.cfg.MaxConnsPerSource
	t, err := relay.New(rc, relay.Deps{Listeners: tl, Cert: s.public, Log: s.log.With("turn", "server"), Draining: &s.draining})
	if err != nil {
		tl.Close()
		return nil, fmt.Errorf("edge: TURN: %w", err)
	}
	s.turn.Store(t)
	s.log.Info("TURN listening", "udp", addrOf(tl.UDP), "tcp", addrOf(tl.TCP), "tls", addrOf(tl.TLS), "relay", relayIP, "relay_ports", s.cfg.TURN.RelayPorts, "realm", s.cfg.TURN.Realm, "batch_io", rc.BatchIO)
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

// coreAddrs resolves the cores' addresses the edge knows from its config:
// for every core of the list, the hosts of its url and config_url with
// their ports, and its mra. A name that does not resolve is skipped (and
// reported).
func coreAddrs(ctx context.Context, cfg Config) ([]netip.AddrPort, []error) {
	var hostports []string
	for _, n := range cfg.CoreList() {
		for _, raw := range []string{n.URL, n.ConfigURL} {
			u, err := url.Parse(raw)
			if err != nil || u.Hostname() == "" {
				continue
			}
			port := u.Port()
			if port == "" {
				port = "443"
			}
			hostports = append(hostports, net.JoinHostPort(u.Hostname(), port))
		}
		hostports = append(hostports, n.MRA)
	}
	var out []netip.AddrPort
	var errs []error
	for _, hp := range hostports {
		host, portStr, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolving the core's %s: %w", host, err))
			continue
		}
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		}
	}
	return out, errs
}
