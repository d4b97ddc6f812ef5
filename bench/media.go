package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/edgeway/edgeway/internal/media"
)

// transport is the phone's media path for one call: a TURN relay on the
// edge when its last token response carried TURN credentials (MRA), its
// own UDP socket otherwise (on premises, where the core hands out none).
func (p *Phone) transport(ctx context.Context) (media.Transport, error) {
	if p.Tokens().TURN != nil {
		return p.relay(ctx)
	}
	ip := p.cfg.MediaIP
	if !ip.IsValid() {
		var err error
		if ip, err = routeFrom(p.Edge().SIP); err != nil {
			return nil, err
		}
	}
	return media.ListenHost(ip)
}

// routeFrom is the local address the system would send to addr's host
// from (a UDP "connect" sends nothing).
func routeFrom(addr string) (netip.Addr, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("phone: media address: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// relay allocates a TURN relay on the edge with the credentials of the
// phone's last token response (UDP to the server).
func (p *Phone) relay(ctx context.Context) (*media.Relay, error) {
	t := p.Tokens().TURN
	if t == nil {
		return nil, errors.New("phone: the token response named no TURN server")
	}
	for _, raw := range t.URLs {
		// turn:host:port?transport=udp (RFC 7065)
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "turn" || !strings.Contains(u.RawQuery, "transport=udp") {
			continue
		}
		servers := p.turnServers(u.Opaque)
		var errs []error
		for _, server := range servers {
			actx, cancel := ctx, context.CancelFunc(func() {})
			if len(servers) > 1 {
				actx, cancel = context.WithTimeout(ctx, 5*time.Second)
			}
			r, err := media.AllocateRelay(actx, server, "udp", t.Username, t.Credential, "")
			cancel()
			if err == nil {
				return r, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	return nil, fmt.Errorf("phone: no turn:…?transport=udp URL in %v", t.URLs)
}

// turnServers are the TURN servers to ask for a relay, given the one the
// token response named. That is the relay of the edge the tokens came
// through; once the phone has failed over to another edge, it asks the
// same port on its current edge's host first (every edge runs TURN on
// the same port, with the shared secret and realm), then the named one.
func (p *Phone) turnServers(named string) []string {
	p.mu.Lock()
	cur, from := p.cur, p.tokenEdge
	p.mu.Unlock()
	if cur == from {
		return []string{named}
	}
	_, port, err1 := net.SplitHostPort(named)
	host, _, err2 := net.SplitHostPort(p.edges[cur].SIP)
	if err1 != nil || err2 != nil || net.JoinHostPort(host, port) == named {
		return []string{named}
	}
	return []string{net.JoinHostPort(host, port), named}
}

// CallWithMedia calls line, sends and receives SRTP for talk (through the
// edge's TURN relay when the phone has TURN credentials, from its own
// socket otherwise), hangs up and returns the received-media statistics.
func (p *Phone) CallWithMedia(ctx context.Context, line string, talk time.Duration) (media.Stats, error) {
	r, err := p.transport(ctx)
	if err != nil {
		return media.Stats{}, err
	}
	defer r.Close()
	offer, err := media.NewOffer(r.Addr())
	if err != nil {
		return media.Stats{}, err
	}
	call, err := p.Dial(ctx, line, offer.Marshal())
	if err != nil {
		return media.Stats{}, err
	}
	defer call.Hangup(context.WithoutCancel(ctx))
	ans, err := media.ParseSDP(call.RemoteSDP)
	if err != nil {
		return media.Stats{}, err
	}
	local, remote, err := media.AcceptAnswer(offer, ans)
	if err != nil {
		return media.Stats{}, err
	}
	return p.talk(ctx, r, local, remote, net.UDPAddrFromAddrPort(ans.Addr), talk, call)
}

func (p *Phone) talk(ctx context.Context, r media.Transport, local, remote media.Crypto, peer net.Addr, d time.Duration, call *Call) (media.Stats, error) {
	sess, err := media.NewSession(local, remote)
	if err != nil {
		return media.Stats{}, err
	}
	if err := r.Permit(peer); err != nil {
		return media.Stats{}, err
	}
	var s media.Stream
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-call.Done(): // the other side hung up
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := s.Start(sctx, r.PacketConn(), peer, sess, d); err != nil {
		return media.Stats{}, err
	}
	return s.Wait()
}

// AnswerWithMedia answers every incoming call with SRTP (through the
// edge's TURN relay or from the phone's own socket, as CallWithMedia),
// talking for talk (or until the caller hangs up), and reports
// each call's received-media statistics to report. It returns when ctx ends.
func (p *Phone) AnswerWithMedia(ctx context.Context, talk time.Duration, report func(media.Stats, error)) {
	type pending struct {
		r             media.Transport
		local, remote media.Crypto
		peer          net.Addr
	}
	next := make(chan pending, 1)
	p.SetAnswerer(func(body []byte) ([]byte, int) {
		off, err := media.ParseSDP(body)
		if err != nil {
			return nil, 488
		}
		r, err := p.transport(ctx)
		if err != nil {
			return nil, 500
		}
		ans, chosen, err := media.Answer(off, r.Addr())
		if err != nil {
			r.Close()
			return nil, 488
		}
		next <- pending{r: r, local: ans.Crypto[0], remote: chosen, peer: net.UDPAddrFromAddrPort(off.Addr)}
		return ans.Marshal(), 0
	})
	// Each answered call talks in its own goroutine, so the next call is
	// answered at once even while the last one's media is winding down.
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case pd := <-next:
			var call *Call
			select {
			case call = <-p.Incoming():
			case <-ctx.Done():
				pd.r.Close()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := p.talk(ctx, pd.r, pd.local, pd.remote, pd.peer, talk, call)
				pd.r.Close()
				if report != nil {
					report(st, err)
				}
			}()
		}
	}
}
