// Package node assembles the tiers one Edgeway process runs — a core node,
// an edge, or both — from their configs and the core's store, binds their
// listeners (the core's SIP ports as `admin node set` left them in the
// store, S-11) and serves them until the context ends. It is the one
// assembler: `edgeway core`, `edgeway edge`, `edgeway quickstart` and
// internal/testenv all build their tiers here.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/store"
)

// Config says which tiers to build.
type Config struct {
	// Core, when set, builds a core node on Store, an open store the caller
	// keeps and closes after the node has stopped.
	Core        *core.Config
	Store       store.Store
	CoreOptions []core.Option
	// Edge, when set, builds an edge.
	Edge *edge.Config
	Log  *slog.Logger
	// SetLevel, when set, applies the log_level a reload (SIGHUP) reads
	// to the process's logger (a slog.LevelVar): Log is built on it.
	SetLevel func(slog.Level)
}

// Listeners are the sockets of both tiers. Bind fills the nil ones.
type Listeners struct {
	Core core.Listeners
	Edge edge.Listeners
	// CoreOps and EdgeOps are the tiers' operations addresses (ops_addr:
	// /metrics, /healthz, /readyz); Bind leaves them nil for "off".
	CoreOps, EdgeOps net.Listener
}

// Close closes every listener that is set.
func (ls Listeners) Close() {
	ls.Core.Close()
	for _, l := range []net.Listener{ls.Edge.HTTPS, ls.Edge.SIP, ls.Edge.TURN.TCP, ls.Edge.TURN.TLS, ls.CoreOps, ls.EdgeOps} {
		if l != nil {
			l.Close()
		}
	}
	if ls.Edge.TURN.UDP != nil {
		ls.Edge.TURN.UDP.Close()
	}
}

// Node is the assembled tiers: Core and Edge are nil for a tier not built.
type Node struct {
	Core *core.Server
	Edge *edge.Server
	ls   Listeners
	log  *slog.Logger

	// reload (internal/node/reload.go): serialized, counted.
	reloadMu      sync.Mutex
	reloadMetrics *metrics.Reload
	setLevel      func(slog.Level)
	// mraConfigured and mraBound are the core's MRA port as configured
	// and as bound (S-11, `admin node set`), which an edge assembled with
	// it follows (followCoreMRA), at a reload too.
	mraConfigured, mraBound int

	draining atomic.Bool
	gates    []*gateListener
	activeFn func() (dialogs, allocations int) // tests
}

// New builds the configured tiers. Nothing listens or runs yet; a Node
// that is never served needs no Close until Bind.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Core == nil && cfg.Edge == nil {
		return nil, errors.New("node: neither a core nor an edge configured")
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	n := &Node{log: log, setLevel: cfg.SetLevel}
	if cfg.Core != nil {
		if cfg.Store == nil {
			return nil, errors.New("node: a core needs a store")
		}
		c, err := core.New(ctx, *cfg.Core, cfg.Store, log, cfg.CoreOptions...)
		if err != nil {
			return nil, err
		}
		n.Core = c
	}
	if cfg.Edge != nil {
		ecfg := *cfg.Edge
		if n.Core != nil {
			var err error
			if n.mraConfigured, n.mraBound, err = followCoreMRA(ctx, n.Core, &ecfg, log); err != nil {
				return nil, err
			}
		}
		e, err := edge.New(ecfg, log)
		if err != nil {
			return nil, err
		}
		n.Edge = e
	}
	var regs []*prometheus.Registry
	if n.Core != nil {
		regs = append(regs, n.Core.Metrics().Reg)
	}
	if n.Edge != nil {
		regs = append(regs, n.Edge.Metrics().Reg)
	}
	n.reloadMetrics = metrics.NewReload(time.Now(), regs...)
	return n, nil
}

// Bind binds every listener of the built tiers that preset leaves nil, the
// core's first (core.Server.Listen: its SIP ports are resolved from the
// store before anything is bound), so a busy port is reported before
// anything serves and an edge in the same process finds its core
// listening. On error every listener, preset ones included, is closed.
func (n *Node) Bind(ctx context.Context, preset Listeners) error {
	ls := preset
	if n.Core != nil {
		cl, err := n.Core.Listen(ctx, ls.Core)
		if err != nil {
			ls.Core = core.Listeners{}
			ls.Close()
			return err
		}
		ls.Core = cl
	}
	if n.Edge != nil {
		if err := n.bindEdge(ctx, &ls.Edge); err != nil {
			ls.Close()
			return err
		}
	}
	var err error
	if n.Core != nil && ls.CoreOps == nil {
		if ls.CoreOps, err = listenOps(ctx, "core", n.Core.Config().OpsAddr); err != nil {
			ls.Close()
			return err
		}
	}
	if n.Edge != nil && ls.EdgeOps == nil {
		if ls.EdgeOps, err = listenOps(ctx, "edge", n.Edge.Config().OpsAddr); err != nil {
			ls.Close()
			return err
		}
	}
	// The public listeners of both tiers are gated so a drain can refuse
	// new connections while the tiers keep serving those they have: the
	// edge's HTTPS, SIP/TLS and TURN TCP and TLS (TURN over UDP has no
	// listener to close: the edge refuses new allocations there, edge/drain.go),
	// and the core's HTTPS, config download, Phone OAuth and MRA ports, so
	// edges fail over to the next core of their list (edge/cores.go).
	for _, l := range []*net.Listener{&ls.Edge.HTTPS, &ls.Edge.SIP, &ls.Edge.TURN.TCP, &ls.Edge.TURN.TLS,
		&ls.Core.HTTPS, &ls.Core.Config, &ls.Core.Phone, &ls.Core.MRA} {
		if *l != nil {
			g := newGate(*l)
			n.gates = append(n.gates, g)
			*l = g
		}
	}
	n.ls = ls
	return nil
}

// listenOps binds a tier's operations address; nil for "off".
func listenOps(ctx context.Context, tier, addr string) (net.Listener, error) {
	if addr == core.OpsOff || addr == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: operations listener (ops_addr): %w", tier, err)
	}
	return l, nil
}

// serveOps serves a tier's operations address until ctx ends.
func serveOps(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		_ = srv.Close()
	}()
	err := srv.Serve(ln)
	<-stopped
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("operations listener: %w", err)
}

func (n *Node) bindEdge(ctx context.Context, ls *edge.Listeners) error {
	cfg := n.Edge.Config()
	var lc net.ListenConfig
	var err error
	if ls.HTTPS == nil {
		if ls.HTTPS, err = lc.Listen(ctx, "tcp", cfg.HTTPSAddr); err != nil {
			return fmt.Errorf("edge: https listener: %w", err)
		}
	}
	if ls.SIP == nil {
		if ls.SIP, err = lc.Listen(ctx, "tcp", cfg.SIPAddr); err != nil {
			return fmt.Errorf("edge: SIP listener: %w", err)
		}
	}
	if cfg.TURN.SecretFile != "" && ls.TURN == (edge.TURNListeners{}) {
		if ls.TURN, err = n.Edge.ListenTURN(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Listeners are the bound listeners (after Bind).
func (n *Node) Listeners() Listeners { return n.ls }

// Serve serves the bound tiers until ctx ends (nil) or one of them fails
// (which stops the other; its error), then closes every listener; the
// tiers' goroutines have ended when it returns.
func (n *Node) Serve(ctx context.Context) error {
	defer n.Close()
	g, gctx := errgroup.WithContext(ctx)
	if n.Core != nil {
		g.Go(func() error { return n.Core.Serve(gctx, n.ls.Core) })
	}
	if n.Edge != nil {
		g.Go(func() error { return n.Edge.Serve(gctx, n.ls.Edge) })
	}
	if l := n.ls.CoreOps; l != nil {
		h := metrics.OpsHandler(n.Core.Metrics().Reg, n.readyUnlessDraining(n.Core.Ready))
		g.Go(func() error { return serveOps(gctx, l, h, n.log) })
		n.log.Info("core operations address: /metrics /healthz /readyz", "ops", "http://"+l.Addr().String())
	}
	if l := n.ls.EdgeOps; l != nil {
		h := metrics.OpsHandler(n.Edge.Metrics().Reg, n.readyUnlessDraining(func(context.Context) error { return n.Edge.Ready() }))
		g.Go(func() error { return serveOps(gctx, l, h, n.log) })
		n.log.Info("edge operations address: /metrics /healthz /readyz", "ops", "http://"+l.Addr().String())
	}
	err := g.Wait()
	if ctx.Err() != nil {
		// Stopped while starting (a tier's start-up store reads saw the
		// context end): that is a stop, not a failure.
		return nil
	}
	return err
}

// Run binds and serves (Bind, then Serve).
func (n *Node) Run(ctx context.Context) error {
	if err := n.Bind(ctx, Listeners{}); err != nil {
		return err
	}
	return n.Serve(ctx)
}

// Close closes the listeners Bind bound; for a Node bound and then not
// served. Serve calls it when it returns.
func (n *Node) Close() { n.ls.Close() }

// followCoreMRA points an edge assembled with its core (quickstart, tests)
// at the MRA port the core will bind: when `admin node set` moved it
// (S-11), an edge configured with the core's configured MRA port follows,
// as an operator would re-point a separate edge's core-mra. Only the
// single-core form (core_mra) follows: an edge with a cores list names
// nodes of a cluster, each assembled on its own.
func followCoreMRA(ctx context.Context, c *core.Server, ecfg *edge.Config, log *slog.Logger) (configured, mra int, err error) {
	configured = c.Config().MRAPort
	if _, mra, err = c.SIPPorts(ctx); err != nil {
		return 0, 0, err
	}
	followMRA(ecfg, configured, mra, log)
	return configured, mra, nil
}

// followMRA re-points ecfg's core_mra from the core's configured MRA port
// to the one it binds (followCoreMRA).
func followMRA(ecfg *edge.Config, configured, mra int, log *slog.Logger) {
	host, port, err := net.SplitHostPort(ecfg.CoreMRA)
	if err != nil || mra == configured || port != strconv.Itoa(configured) {
		return
	}
	ecfg.CoreMRA = net.JoinHostPort(host, strconv.Itoa(mra))
	log.Info("edge follows the core's MRA port from the cluster settings", "core_mra", ecfg.CoreMRA)
}
