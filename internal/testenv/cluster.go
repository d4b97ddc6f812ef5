package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
)

// A cluster (issue 11): N core nodes — a publisher and subscribers — on
// one PostgreSQL store, and M edges, each with an ordered list of the core
// nodes (edge.Config.Cores), all on loopback with kernel-chosen ports, one
// dev PKI and quickstart's provisioning. Every node is assembled by
// internal/node, as `edgeway core` and `edgeway edge` assemble theirs, and
// can be stopped and started again on the same addresses.

// ClusterOptions shape a cluster.
type ClusterOptions struct {
	// StoreURL is the postgres:// URL every core node shares
	// (internal/pgtest). Required.
	StoreURL string
	// Cores is the number of core nodes (default 3); the first is the
	// publisher, the others subscribers.
	Cores int
	// Edges is the number of edges (default 1).
	Edges int
	// EdgeCores is edge i's ordered core list, as indexes into the cores
	// (default: every core, 0 first).
	EdgeCores func(edge int) []int
	// HealthInterval is the edges' core_health_interval (default 100ms).
	HealthInterval time.Duration
	// ConfigureCore and ConfigureEdge may change a node's config before
	// it is first built.
	ConfigureCore func(i int, c *core.Config)
	ConfigureEdge func(i int, e *edge.Config)
}

// Cluster is a running cluster; every node stops when the test ends.
type Cluster struct {
	T   testing.TB
	Dir string
	// Layout is the shared dev PKI and the configs nodes were derived from.
	Layout quickstart.Layout
	CA     *x509.CertPool
	// Store is the test's own connection to the cluster store, for
	// assertions (bindings, devices); the nodes have theirs.
	Store   store.Store
	Devices map[string]quickstart.Device
	Users   []quickstart.User
	Cores   []*ClusterNode
	Edges   []*ClusterNode
	Log     *slog.Logger
}

// ClusterNode is one core node or edge of a cluster.
type ClusterNode struct {
	Name string
	// Addrs: for a core, HTTPS, Config, Phone and MRA; for an edge, HTTPS
	// and SIP.
	HTTPS, Config, Phone, MRA, SIP string
	CoreConfig                     *core.Config // a core's
	EdgeConfig                     *edge.Config // an edge's

	c        *Cluster
	storeURL string
	mu       sync.Mutex
	n        *node.Node // nil while stopped
	st       store.Store
	stop     context.CancelFunc
	done     chan error
}

// StartCluster builds, provisions and starts a cluster.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.StoreURL == "" {
		t.Fatal("testenv: a cluster needs a StoreURL (internal/pgtest)")
	}
	if o.Cores == 0 {
		o.Cores = 3
	}
	if o.Edges == 0 {
		o.Edges = 1
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 100 * time.Millisecond
	}
	dir := t.TempDir()
	// Each core's listeners, bound now so their ports are known.
	type coreLns struct{ https, conf, phone, mra net.Listener }
	cls := make([]coreLns, o.Cores)
	for i := range cls {
		cls[i] = coreLns{listen(t), listen(t), listen(t), listen(t)}
	}
	edgeHTTPS, edgeSIP := make([]net.Listener, o.Edges), make([]net.Listener, o.Edges)
	edgeTURN := make([]edge.TURNListeners, o.Edges)
	for i := range o.Edges {
		edgeHTTPS[i], edgeSIP[i], edgeTURN[i] = listen(t), listen(t), listenTURN(t)
	}
	a := quickstart.Addrs{CoreIP: "127.0.0.1", EdgeIP: "127.0.0.1", CoreHTTPS: port(cls[0].https), CoreConf: port(cls[0].conf),
		CorePhone: port(cls[0].phone), CoreMRA: port(cls[0].mra), EdgeHTTPS: port(edgeHTTPS[0]), EdgeSIP: port(edgeSIP[0]),
		EdgeTURN: port(edgeTURN[0].TCP), EdgeTURNS: port(edgeTURN[0].TLS)}
	lay, err := quickstart.Prepare(dir, a)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Getenv("EDGEWAY_TEST_LOG") == "" {
		log = slog.New(slog.DiscardHandler)
	}
	pem, err := os.ReadFile(lay.PKI.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ctx := context.Background()
	st, err := store.OpenURL(ctx, o.StoreURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{T: t, Dir: dir, Layout: lay, CA: pool, Store: st, Devices: map[string]quickstart.Device{}, Log: log}
	t.Cleanup(func() {
		c.stopAll()
		st.Close()
	})

	for i := range o.Cores {
		cfg := lay.Core
		cfg.Node = fmt.Sprintf("core-%d", i+1)
		cfg.Store = o.StoreURL
		cfg.Role = core.RoleSubscriber
		if i == 0 {
			cfg.Role = core.RolePublisher
		}
		l := cls[i]
		cfg.HTTPSAddr, cfg.ConfigAddr = l.https.Addr().String(), l.conf.Addr().String()
		cfg.PhoneOAuthPort, cfg.MRAPort = port(l.phone), port(l.mra)
		// One issuer for the whole cluster (core.yaml issuer, the same on
		// every node): a token any node issued verifies on every node.
		cfg.Issuer = lay.Core.Issuer
		if o.ConfigureCore != nil {
			o.ConfigureCore(i, &cfg)
		}
		n := &ClusterNode{Name: cfg.Node, CoreConfig: &cfg, c: c, storeURL: o.StoreURL,
			HTTPS: "https://" + cfg.HTTPSAddr, Config: "https://" + cfg.ConfigAddr,
			Phone: l.phone.Addr().String(), MRA: l.mra.Addr().String()}
		c.Cores = append(c.Cores, n)
	}
	for i := range o.Edges {
		cfg := lay.Edge
		cfg.Node = fmt.Sprintf("edge-%d", i+1)
		cfg.HTTPSAddr, cfg.SIPAddr = edgeHTTPS[i].Addr().String(), edgeSIP[i].Addr().String()
		cfg.PublicURL = ""
		cfg.CoreURL, cfg.CoreMRA, cfg.CoreConfigURL, cfg.CoreServerName = "", "", "", ""
		cfg.TokenIssuer = lay.Core.Issuer
		order := make([]int, o.Cores)
		for j := range order {
			order[j] = j
		}
		if o.EdgeCores != nil {
			order = o.EdgeCores(i)
		}
		for _, j := range order {
			cc := c.Cores[j]
			cfg.Cores = append(cfg.Cores, edge.CoreNode{URL: cc.HTTPS, MRA: cc.MRA, ConfigURL: cc.Config, ServerName: "127.0.0.1"})
		}
		cfg.CoreHealthInterval = o.HealthInterval
		cfg.CoreHealthTimeout = time.Second
		cfg.TURN.Listen, cfg.TURN.TLSListen = edgeTURN[i].TCP.Addr().String(), edgeTURN[i].TLS.Addr().String()
		if o.ConfigureEdge != nil {
			o.ConfigureEdge(i, &cfg)
		}
		c.Edges = append(c.Edges, &ClusterNode{Name: cfg.Node, EdgeConfig: &cfg, c: c,
			HTTPS: "https://" + cfg.HTTPSAddr, SIP: cfg.SIPAddr})
	}

	// Cores first, the publisher provisioning the shared store before it
	// serves; then the edges.
	for i, n := range c.Cores {
		l := cls[i]
		n.start(node.Listeners{Core: core.Listeners{HTTPS: l.https, Config: l.conf, Phone: l.phone, MRA: l.mra}}, i == 0)
	}
	for i, n := range c.Edges {
		n.start(node.Listeners{Edge: edge.Listeners{HTTPS: edgeHTTPS[i], SIP: edgeSIP[i], TURN: edgeTURN[i]}}, false)
	}
	for i := range c.Edges {
		c.WaitEdgeSeesCores(i)
	}
	return c
}

// start builds the node and serves it on preset (nil listeners are bound
// from its config). provision: quickstart's demo objects go into the
// store first (the publisher, once).
func (n *ClusterNode) start(preset node.Listeners, provision bool) {
	t := n.c.T
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.n != nil {
		t.Fatalf("testenv: %s is running", n.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := node.Config{Core: n.CoreConfig, Edge: n.EdgeConfig, Log: n.c.Log}
	var st store.Store
	if n.CoreConfig != nil {
		var err error
		if st, err = store.OpenURL(ctx, n.storeURL); err != nil {
			preset.Close()
			cancel()
			t.Fatal(err)
		}
		cfg.Store = st
	}
	nd, err := node.New(ctx, cfg)
	if err == nil && provision {
		var devs []quickstart.Device
		devs, n.c.Users, err = quickstart.Provision(ctx, st, nd.Core.Activation())
		for _, d := range devs {
			n.c.Devices[d.Name] = d
		}
	}
	if err == nil {
		err = nd.Bind(ctx, preset)
	} else {
		preset.Close()
	}
	if err != nil {
		cancel()
		if st != nil {
			st.Close()
		}
		t.Fatalf("testenv: starting %s: %v", n.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- nd.Serve(ctx) }()
	n.n, n.st, n.stop, n.done = nd, st, cancel, done
	if n.CoreConfig != nil {
		n.waitServing()
	}
}

// waitServing waits (bounded) until a core answers HTTPS (GET its JWKS):
// Serve has read its settings and serves.
func (n *ClusterNode) waitServing() {
	t := n.c.T
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.c.CA, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := client.Get(n.HTTPS + "/.well-known/jwks.json")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s did not come up within 10s: %v", n.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports whether the node is running.
func (n *ClusterNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.n != nil
}

// Drain drains the running node (internal/node Drain) and returns its
// result; the node keeps serving what it has until Stop.
func (n *ClusterNode) Drain(ctx context.Context, timeout time.Duration) error {
	n.mu.Lock()
	nd := n.n
	n.mu.Unlock()
	if nd == nil {
		return errors.New("testenv: " + n.Name + " is stopped")
	}
	return nd.Drain(ctx, timeout)
}

// Core is the running core node's server (nil while stopped).
func (n *ClusterNode) Core() *core.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.n == nil {
		return nil
	}
	return n.n.Core
}

// Edge is the running edge's server (nil while stopped).
func (n *ClusterNode) Edge() *edge.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.n == nil {
		return nil
	}
	return n.n.Edge
}

// Ops is the running node's operations address (host:port: /metrics,
// /healthz, /readyz; a free port, new at each start), "" while stopped.
func (n *ClusterNode) Ops() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.n == nil {
		return ""
	}
	ls := n.n.Listeners()
	for _, l := range []net.Listener{ls.CoreOps, ls.EdgeOps} {
		if l != nil {
			return l.Addr().String()
		}
	}
	return ""
}

// Stop stops the node (as a killed process: its listeners and
// connections close) and waits, bounded, until it has.
func (n *ClusterNode) Stop() {
	t := n.c.T
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.n == nil {
		return
	}
	n.stop()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("testenv: %s stopped with %v", n.Name, err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("testenv: %s did not stop within 15s", n.Name)
	}
	if n.st != nil {
		n.st.Close()
	}
	n.n, n.st = nil, nil
}

// Start starts a stopped node again on the same addresses.
func (n *ClusterNode) Start() {
	n.c.T.Helper()
	n.start(node.Listeners{}, false)
}

func (c *Cluster) stopAll() {
	for _, n := range c.Edges {
		n.Stop()
	}
	for _, n := range c.Cores {
		n.Stop()
	}
}

// StopCore and StartCore stop and restart core node i; StopEdge and
// StartEdge edge i.
func (c *Cluster) StopCore(i int)  { c.T.Helper(); c.Cores[i].Stop() }
func (c *Cluster) StartCore(i int) { c.T.Helper(); c.Cores[i].Start() }
func (c *Cluster) StopEdge(i int)  { c.T.Helper(); c.Edges[i].Stop() }
func (c *Cluster) StartEdge(i int) { c.T.Helper(); c.Edges[i].Start() }

// WaitEdgeSeesCores waits (bounded) until edge i has had a health check
// answered by every running core of its list: each of them then knows
// the edge's connection and can route calls to its phones.
func (c *Cluster) WaitEdgeSeesCores(i int) {
	c.T.Helper()
	c.WaitEdge(i, "every running core answered a health check", func(st []edge.CoreStatus) bool {
		for _, s := range st {
			if c.coreRunning(s.MRA) && s.Passed == 0 {
				return false
			}
		}
		return true
	})
}

// WaitEdgeCoreUp waits (bounded) until edge i holds core j (an index into
// Cores) up or down, as its health checks find it.
func (c *Cluster) WaitEdgeCoreUp(i, j int, up bool) {
	c.T.Helper()
	mra := c.Cores[j].MRA
	c.WaitEdge(i, fmt.Sprintf("%s up=%v", c.Cores[j].Name, up), func(st []edge.CoreStatus) bool {
		for _, s := range st {
			if s.MRA == mra {
				return s.Up == up
			}
		}
		return false
	})
}

// WaitEdge waits (bounded, 15s) until cond holds for edge i's core list.
func (c *Cluster) WaitEdge(i int, what string, cond func([]edge.CoreStatus) bool) {
	c.T.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if e := c.Edges[i].Edge(); e != nil && cond(e.Cores()) {
			return
		}
		if time.Now().After(deadline) {
			var st []edge.CoreStatus
			if e := c.Edges[i].Edge(); e != nil {
				st = e.Cores()
			}
			c.T.Fatalf("testenv: %s: waiting for %s: %+v", c.Edges[i].Name, what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) coreRunning(mra string) bool {
	for _, n := range c.Cores {
		if n.MRA == mra {
			return n.Running()
		}
	}
	return false
}

// AddDevices provisions n more MRA phones (8845s, lines 2001…) with
// activation codes, through the publisher, and returns them.
func (c *Cluster) AddDevices(n int) []quickstart.Device {
	c.T.Helper()
	ctx := context.Background()
	pub := c.Cores[0].Core()
	if pub == nil {
		c.T.Fatal("testenv: AddDevices needs the publisher running")
	}
	base := 2001 + len(c.Devices)
	var out []quickstart.Device
	for i := range n {
		line := strconv.Itoa(base + i)
		d := store.Device{Name: "SEP0000000" + line, Model: "8845", Line: line, SecurityProfile: quickstart.ProfileName,
			AllowMRA: true, MRAServiceDomain: quickstart.Domain}
		if err := c.Store.PutDevice(ctx, d); err != nil {
			c.T.Fatal(err)
		}
		is, err := pub.Activation().Issue(ctx, d.Name)
		if err != nil {
			c.T.Fatal(err)
		}
		qd := quickstart.Device{Name: d.Name, Model: d.Model, Line: d.Line, Domain: quickstart.Domain, ActivationCode: is.Code.String(), MRA: true}
		c.Devices[d.Name] = qd
		out = append(out, qd)
	}
	return out
}

// Phone is a simulated phone for device through edge i (MRA).
func (c *Cluster) Phone(device string, i int) *bench.Phone {
	c.T.Helper()
	e := c.Edges[i]
	return c.phone(device, bench.PhoneConfig{EdgeHTTPS: e.HTTPS, EdgeSIP: e.SIP})
}

// OnPremPhone is a simulated phone for device straight to core node i's
// Phone OAuth port (on premises).
func (c *Cluster) OnPremPhone(device string, i int) *bench.Phone {
	c.T.Helper()
	n := c.Cores[i]
	return c.phone(device, bench.PhoneConfig{EdgeHTTPS: n.HTTPS, EdgeSIP: n.Phone, ConfigURL: n.Config})
}

func (c *Cluster) phone(device string, cfg bench.PhoneConfig) *bench.Phone {
	c.T.Helper()
	d, ok := c.Devices[device]
	if !ok {
		c.T.Fatalf("testenv: no device %s", device)
	}
	cfg.Device, cfg.Line, cfg.Domain, cfg.RootCAs, cfg.Log = d.Name, d.Line, d.Domain, c.CA, c.Log
	p, err := bench.NewPhone(cfg)
	if err != nil {
		c.T.Fatal(err)
	}
	c.T.Cleanup(p.Close)
	return p
}

// BindingNode is the core node that made aor's (newest) binding, "" when
// it has none: where the phone's last REGISTER went.
func (c *Cluster) BindingNode(line string) string {
	c.T.Helper()
	regs, err := c.Store.Registrations(context.Background(), fmt.Sprintf("sip:%s@%s", line, strings.ToLower(quickstart.Domain)), time.Now())
	if err != nil {
		c.T.Fatal(err)
	}
	node := ""
	var newest time.Time
	for _, r := range regs {
		if r.UpdatedAt.After(newest) {
			node, newest = r.Node, r.UpdatedAt
		}
	}
	return node
}

// Path returns a path inside the cluster's directory.
func (c *Cluster) Path(name string) string { return filepath.Join(c.Dir, name) }
