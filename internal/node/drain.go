package node

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// ErrDraining is what /readyz reports once a drain has begun, so a load
// balancer stops sending new work to this node.
var ErrDraining = errors.New("draining")

// ErrDrainDeadline: the drain timeout came with calls or TURN allocations
// still active; the caller closes everything regardless.
var ErrDrainDeadline = errors.New("drain: deadline reached with work still active")

// gateListener wraps a public listener so a drain can stop new
// connections (the socket is closed: the kernel refuses them) while the
// server above keeps running and serving the connections it has. Its
// Accept then blocks until the server closes it at the real shutdown.
type gateListener struct {
	net.Listener
	draining  chan struct{}
	closed    chan struct{}
	drainOnce sync.Once
	closeOnce sync.Once
}

func newGate(l net.Listener) *gateListener {
	return &gateListener{Listener: l, draining: make(chan struct{}), closed: make(chan struct{})}
}

func (l *gateListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		select {
		case <-l.draining:
			<-l.closed
			return nil, net.ErrClosed
		default:
		}
	}
	return c, err
}

// drain closes the socket; Accept waits for Close.
func (l *gateListener) drain() {
	l.drainOnce.Do(func() {
		close(l.draining)
		_ = l.Listener.Close()
	})
}

func (l *gateListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// active counts the work a drain waits for: the dialogs the core routes
// (core/proxy), the edge's call legs and its TURN allocations.
func (n *Node) active() (dialogs, allocations int) {
	if n.activeFn != nil {
		return n.activeFn()
	}
	if n.Core != nil {
		dialogs = n.Core.Calls()
	}
	if n.Edge != nil {
		if f := n.Edge.SIP(); f != nil {
			dialogs += f.Dialogs()
		}
		if t := n.Edge.TURN(); t != nil {
			allocations = t.Allocations()
		}
	}
	return dialogs, allocations
}

// DrainTimeout is the longest drain_timeout of the node's tiers.
func (n *Node) DrainTimeout() time.Duration {
	var d time.Duration
	if n.Core != nil {
		d = max(d, n.Core.Config().DrainTimeout)
	}
	if n.Edge != nil {
		d = max(d, n.Edge.Config().DrainTimeout)
	}
	return d
}

// Drain begins a graceful stop of a node being served: /readyz answers
// 503 "draining" at once; the public listeners of both tiers (edge HTTPS,
// SIP/TLS, TURN TCP/TLS; core HTTPS, config, Phone OAuth and MRA ports)
// stop accepting new connections while the connections already open keep
// being served; the edge answers new calls on those 503 with Retry-After
// and refuses new TURN allocations (edge/drain.go); and Drain waits until
// no dialog or TURN allocation is left (nil), the timeout passes
// (ErrDrainDeadline) or ctx ends (its error: a second signal). The caller
// then stops Serve.
func (n *Node) Drain(ctx context.Context, timeout time.Duration) error {
	start := time.Now()
	n.draining.Store(true)
	if n.Core != nil {
		n.Core.StartDrain()
	}
	if n.Edge != nil {
		n.Edge.StartDrain()
	}
	for _, g := range n.gates {
		g.drain()
	}
	d, a := n.active()
	n.log.Info("drain: not ready, refusing new connections, waiting for calls and allocations to end",
		"dialogs", d, "turn_allocations", a, "drain_timeout", timeout)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		d, a = n.active()
		if d == 0 && a == 0 {
			n.log.Info("drain: done, nothing active", "elapsed", time.Since(start).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			n.log.Info("drain: cut short", "dialogs", d, "turn_allocations", a, "elapsed", time.Since(start).Round(time.Millisecond))
			return ctx.Err()
		case <-deadline.C:
			n.log.Info("drain: deadline reached, closing what is left", "dialogs", d, "turn_allocations", a, "drain_timeout", timeout)
			return ErrDrainDeadline
		case <-tick.C:
		}
	}
}

// readyUnlessDraining puts the drain in front of a tier's readiness.
func (n *Node) readyUnlessDraining(ready func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if n.draining.Load() {
			return ErrDraining
		}
		return ready(ctx)
	}
}
