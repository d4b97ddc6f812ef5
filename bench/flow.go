package bench

// A phone's flow to its edge and its recovery (RFC 5626): Run keeps the
// phone registered through one edge at a time, pings the flow with CRLF
// (§4.4.1) and, when the flow fails — its connection closed, a pong
// missing, a REGISTER transaction failed — registers through the next
// edge of its list with the same tokens, the same +sip.instance and
// reg-id (§4.5), cycling through the list and backing off once every edge
// has failed in a row.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// DefaultKeepAlive is a phone's default CRLF keep-alive interval: the
// edge pings its phones as often (edge sip_keepalive, 30s), well inside
// NAT binding lifetimes.
const DefaultKeepAlive = 30 * time.Second

// ErrFlowFailed marks a REGISTER that got no response at all: no
// connection to the edge, the connection closed, or the transaction timed
// out (RFC 5626 §4.4). The phone moves on to its next edge.
var ErrFlowFailed = errors.New("flow failed")

// Edge is the edge the phone uses now.
func (p *Phone) Edge() Edge {
	_, e := p.edgeIndex()
	return e
}

// Edges are the phone's edges, in order.
func (p *Phone) Edges() []Edge { return append([]Edge(nil), p.edges...) }

// Recoveries counts the times Run re-registered through another flow
// after one failed.
func (p *Phone) Recoveries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.recoveries
}

func (p *Phone) edgeIndex() (int, Edge) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur, p.edges[p.cur]
}

// moveOn makes the edge after failed the current one, unless another
// request has already moved on from it.
func (p *Phone) moveOn(failed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == failed {
		p.cur = (failed + 1) % len(p.edges)
		p.flow = ""
	}
}

// registeredOn records the connection a REGISTER through edge i was
// answered on, and the registrar's Flow-Timer.
func (p *Phone) registeredOn(i int, res *sip.Response) {
	var ft time.Duration
	if h := res.GetHeader("Flow-Timer"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			ft = time.Duration(n) * time.Second
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == i {
		p.flow = res.Source()
		p.flowTimer = ft
	}
}

// readFilter sees every read on the phone's connections before sipgo
// parses it: a read of only CR and LF is a pong to our ping (or the edge's
// own ping; either shows the flow alive).
func (p *Phone) readFilter(info sip.TransportReadProps, data []byte) ([]byte, error) {
	if len(data) > 0 && len(data) <= 4 && strings.Trim(string(data), "\r\n") == "" && info.RemoteAddr != nil {
		select {
		case p.pongs <- info.RemoteAddr.String():
		default:
		}
	}
	return data, nil
}

// Ping sends a CRLF ping (RFC 5626 §4.4.1) on the flow the phone's last
// REGISTER went on and waits up to PongTimeout for the pong. Pings are
// serialised. An error
// wrapping ErrFlowFailed means the flow is gone: no registered flow, its
// connection closed, the write failed or no pong came (the connection is
// then closed).
func (p *Phone) Ping(ctx context.Context) error {
	p.pingMu.Lock() // one ping at a time: each waits for its own pong
	defer p.pingMu.Unlock()
	p.mu.Lock()
	flow := p.flow
	p.mu.Unlock()
	if flow == "" {
		return fmt.Errorf("%w: no registered flow", ErrFlowFailed)
	}
	c, err := p.ua.TransportLayer().GetConnection("tls", flow)
	if err != nil || c == nil {
		return fmt.Errorf("%w: the connection to %s is closed", ErrFlowFailed, flow)
	}
	w, ok := c.(io.Writer)
	if !ok {
		return fmt.Errorf("%w: the connection to %s cannot be written", ErrFlowFailed, flow)
	}
	for drained := false; !drained; { // pongs of earlier pings
		select {
		case <-p.pongs:
		default:
			drained = true
		}
	}
	if _, err := w.Write([]byte("\r\n\r\n")); err != nil {
		_ = c.Close()
		return fmt.Errorf("%w: ping to %s: %w", ErrFlowFailed, flow, err)
	}
	t := time.NewTimer(p.cfg.PongTimeout)
	defer t.Stop()
	for {
		select {
		case from := <-p.pongs:
			if from == flow {
				return nil
			}
		case <-t.C:
			_ = c.Close()
			return fmt.Errorf("%w: no pong from %s within %s", ErrFlowFailed, flow, p.cfg.PongTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// keepAliveIn is when the next ping is due: a random 80-100 % of the
// interval (RFC 5626 §4.4.1), the registrar's Flow-Timer if shorter.
func (p *Phone) keepAliveIn() time.Duration {
	p.mu.Lock()
	every := p.cfg.KeepAlive
	if p.flowTimer > 0 && p.flowTimer < every {
		every = p.flowTimer
	}
	p.mu.Unlock()
	return every - randDuration(every/5)
}

// Event is something Run reports.
type Event struct {
	At     time.Time
	Kind   string // "registered", "refreshed", "flow-failed", "recovered", "unregistered", "error"
	Detail string
}

// flowTrouble reports whether a REGISTER outcome means the flow (or the
// edge behind it) failed, so another edge should be tried: no response
// (ErrFlowFailed), or 408, 430 Flow Failed (RFC 5626 §5.3), 503 or 504.
func flowTrouble(res *sip.Response, err error) bool {
	if err != nil {
		return errors.Is(err, ErrFlowFailed)
	}
	switch res.StatusCode {
	case 408, 430, 503, 504:
		return true
	}
	return false
}

// RegisterAnyEdge sends REGISTER through the current edge and, while the
// flow fails (flowTrouble), through each next edge once, and returns the
// first answer that is not a flow failure, or the last failure.
func (p *Phone) RegisterAnyEdge(ctx context.Context, expires int) (*sip.Response, error) {
	var res *sip.Response
	var err error
	for range p.edges {
		if res, err = p.Register(ctx, expires); !flowTrouble(res, err) || ctx.Err() != nil {
			return res, err
		}
		if err == nil {
			i, _ := p.edgeIndex()
			p.moveOn(i)
		}
	}
	return res, err
}

// Run keeps the phone registered until ctx ends: it registers, pings the
// flow every KeepAlive, refreshes the token at 80 % of its life and
// re-registers, re-registers before the binding expires, and un-registers
// when ctx is cancelled. When the flow fails it registers through the
// next edge (recover). It returns a refusal it cannot recover from.
func (p *Phone) Run(ctx context.Context, events func(Event)) error {
	emit := func(kind, format string, args ...any) {
		if events != nil {
			events(Event{At: time.Now(), Kind: kind, Detail: fmt.Sprintf(format, args...)})
		}
	}
	if err := p.recover(ctx, emit, false); err != nil {
		if ctx.Err() == nil {
			emit("error", "%v", err)
		}
		return err
	}
	lastReg := time.Now()
	nextPing := lastReg.Add(p.keepAliveIn())
	for {
		t := p.Tokens()
		// The next REGISTER: before the binding expires, or after the
		// token refresh at 80 % of its life, whichever comes first.
		regDue := lastReg.Add(time.Duration(p.cfg.Expires) * time.Second * 8 / 10)
		refreshAt := t.Obtained.Add(time.Duration(float64(t.ExpiresIn)*0.8) * time.Second)
		refresh := t.RefreshToken != "" && !refreshAt.After(regDue)
		if refresh {
			regDue = refreshAt
		}
		due := regDue
		if p.cfg.KeepAlive > 0 && nextPing.Before(due) {
			due = nextPing
		}
		timer := time.NewTimer(max(time.Until(due), 10*time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := p.Unregister(uctx)
			cancel()
			if err != nil {
				emit("error", "un-register: %v", err)
				return err
			}
			emit("unregistered", "binding removed")
			return nil
		case <-timer.C:
		}
		if time.Now().Before(regDue) { // a ping is due
			nextPing = time.Now().Add(p.keepAliveIn())
			err := p.Ping(ctx)
			if err == nil || !errors.Is(err, ErrFlowFailed) {
				continue
			}
			emit("flow-failed", "%v", err)
			if err := p.recover(ctx, emit, true); err != nil {
				return p.runError(ctx, emit, err)
			}
			lastReg, nextPing = time.Now(), time.Now().Add(p.keepAliveIn())
			continue
		}
		if refresh {
			if _, err := p.Refresh(ctx); err != nil {
				emit("error", "refresh: %v", err)
				return err
			}
			emit("refreshed", "new access token valid %ds", p.Tokens().ExpiresIn)
		}
		if err := p.recover(ctx, emit, false); err != nil {
			return p.runError(ctx, emit, err)
		}
		lastReg, nextPing = time.Now(), time.Now().Add(p.keepAliveIn())
	}
}

func (p *Phone) runError(ctx context.Context, emit func(string, string, ...any), err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	emit("error", "%v", err)
	return err
}

// recover registers through the current edge and, while the flow fails,
// through the next ones in turn (RFC 5626 §4.5: a new flow, the same
// instance and reg-id, the same tokens). Once every edge has failed in a
// row it waits min(RecoveryMax, RecoveryBase·2^rounds), randomised to
// 50-100 %, before the next round. A refusal that is not a flow failure
// (401, 403, …) is returned. failed says the current flow has just
// failed: the first attempt then goes to the next edge.
func (p *Phone) recover(ctx context.Context, emit func(string, string, ...any), failed bool) error {
	if failed {
		i, _ := p.edgeIndex()
		p.mu.Lock()
		if p.flow != "" {
			if c, err := p.ua.TransportLayer().GetConnection("tls", p.flow); err == nil && c != nil {
				_ = c.Close()
			}
		}
		p.mu.Unlock()
		if len(p.edges) > 1 {
			p.moveOn(i)
		}
	}
	for round := 0; ; round++ {
		var last error
		for range p.edges {
			_, e := p.edgeIndex()
			res, err := p.Register(ctx, p.cfg.Expires)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err == nil && res.StatusCode == 200 {
				if failed {
					p.mu.Lock()
					p.recoveries++
					p.mu.Unlock()
					emit("recovered", "registered through %s (%s): %d %s; Path %s", e.SIP, e.HTTPS, res.StatusCode, res.Reason, headerValue(res, "Path"))
				} else {
					emit("registered", "%d %s via %s; Path %s", res.StatusCode, res.Reason, e.SIP, headerValue(res, "Path"))
				}
				return nil
			}
			if !flowTrouble(res, err) {
				return fmt.Errorf("REGISTER refused: %d %s %s", res.StatusCode, res.Reason, headerValue(res, "WWW-Authenticate"))
			}
			if err == nil { // the edge answered, but cannot serve: next edge
				i, _ := p.edgeIndex()
				p.moveOn(i)
				err = fmt.Errorf("REGISTER via %s: %d %s", e.SIP, res.StatusCode, res.Reason)
			}
			last = err
			failed = true
			emit("flow-failed", "%v", err)
		}
		wait := min(p.cfg.RecoveryMax, p.cfg.RecoveryBase<<min(round, 20))
		wait -= randDuration(wait / 2)
		emit("error", "every edge failed (%v); next round in %s", last, wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// randDuration is uniform in [0, d).
func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(d)))
	if err != nil {
		return 0
	}
	return time.Duration(n.Int64())
}

// uuidURN is a random (version 4) UUID URN, the phone's +sip.instance
// (RFC 5626 §4.1, RFC 4122).
func uuidURN() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
