package core

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/edgeway/edgeway/internal/store"
)

// applyNodePorts makes the SIP ports set with `admin node set` (S-11) the
// ones this node binds: they are read from the store at start, so they
// take effect when the node (re)starts, whoever assembles it.
func (s *Server) applyNodePorts(ctx context.Context) error {
	n, err := s.st.GetNode(ctx, s.cfg.Node)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("core: node settings: %w", err)
	}
	if n.PhoneOAuthPort == 0 || n.MRAPort == 0 {
		return nil
	}
	if n.PhoneOAuthPort != s.cfg.PhoneOAuthPort || n.MRAPort != s.cfg.MRAPort {
		s.log.Info("using the node's SIP ports from the cluster settings", "phone_oauth_port", n.PhoneOAuthPort, "mra_port", n.MRAPort)
	}
	s.cfg.PhoneOAuthPort, s.cfg.MRAPort = n.PhoneOAuthPort, n.MRAPort
	return nil
}

// SIPPorts are the Phone OAuth and MRA ports this node binds when it
// starts: the ones set with `admin node set` when the store has them
// (S-11), else the configured ones.
func (s *Server) SIPPorts(ctx context.Context) (phone, mra int, err error) {
	if err := s.applyNodePorts(ctx); err != nil {
		return 0, 0, err
	}
	return s.cfg.PhoneOAuthPort, s.cfg.MRAPort, nil
}

// Listen binds the node's listeners, the SIP ones on the ports set with
// `admin node set` when the store has them (S-11), else on the configured
// ones. A listener given in preset is used as it is, except a SIP one
// whose port is not the node's: it is closed and the node's port bound
// (tests pass listeners on kernel-chosen ports). On error every listener,
// preset ones included, is closed.
func (s *Server) Listen(ctx context.Context, preset Listeners) (Listeners, error) {
	ls := preset
	fail := func(err error) (Listeners, error) {
		ls.Close()
		return Listeners{}, err
	}
	if err := s.applyNodePorts(ctx); err != nil {
		return fail(err)
	}
	for _, sip := range []struct {
		ln   *net.Listener
		port int
	}{{&ls.Phone, s.cfg.PhoneOAuthPort}, {&ls.MRA, s.cfg.MRAPort}} {
		if *sip.ln != nil && portOf((*sip.ln).Addr().String()) != sip.port {
			(*sip.ln).Close()
			*sip.ln = nil
		}
	}
	var lc net.ListenConfig
	for _, l := range []struct {
		ln   *net.Listener
		addr string
		what string
	}{
		{&ls.HTTPS, s.cfg.HTTPSAddr, "https listener"},
		{&ls.Config, s.cfg.ConfigAddr, "config download listener"},
		{&ls.Phone, s.cfg.phoneAddr(), "SIP Phone OAuth listener (S-11)"},
		{&ls.MRA, s.cfg.mraAddr(), "SIP MRA listener (S-11)"},
	} {
		if *l.ln != nil {
			continue
		}
		ln, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			return fail(fmt.Errorf("core: %s: %w", l.what, err))
		}
		*l.ln = ln
	}
	return ls, nil
}

// Close closes every listener that is set.
func (ls Listeners) Close() {
	for _, l := range []net.Listener{ls.HTTPS, ls.Config, ls.Phone, ls.MRA} {
		if l != nil {
			l.Close()
		}
	}
}
