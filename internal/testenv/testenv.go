// Package testenv starts a whole Edgeway — core and edge with a fresh dev
// PKI and a real SQLite store, provisioned like quickstart — on loopback
// listeners with kernel-chosen ports, for end-to-end tests that read like
// the operator's story.
package testenv

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
)

// Env is a running core + edge.
type Env struct {
	T      testing.TB
	Dir    string
	Layout quickstart.Layout
	Info   quickstart.Info
	Store  store.Store
	Core   *core.Server
	Edge   *edge.Server
	// Node is the assembly of Core and Edge (internal/node).
	Node       *node.Node
	CA         *x509.CertPool
	AdminToken string
	Devices    map[string]quickstart.Device
	Users      []quickstart.User
	Log        *slog.Logger
}

// Options adjust an Env before it starts.
type Options struct {
	// CoreOptions are passed to core.New (a clock, say).
	CoreOptions []core.Option
	// Configure may change the generated configs before the tiers are built.
	Configure func(l *quickstart.Layout)
	// BeforeStart runs after provisioning, before the tiers bind and
	// serve: SIP ports it sets for the node in the store (`admin node
	// set`, S-11) are the ones the core binds.
	BeforeStart func(ctx context.Context, e *Env) error
	// StoreURL, when set, is the core's store instead of the layout's
	// SQLite file: a postgres:// URL (internal/pgtest) runs the tiers on
	// the cluster store.
	StoreURL string
	// Bare skips the quickstart provisioning: no profile, devices, users,
	// Expressway-C entry or parameters; SIP OAuth mode is off. For tests
	// that walk the administrator's task flow themselves.
	Bare bool
	// Log, when set, is where both tiers log (tests that read the logs);
	// otherwise the test's log under EDGEWAY_TEST_LOG, else nowhere.
	Log *slog.Logger
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// listenTURN binds UDP and TCP on one kernel-chosen port (TURN serves
// both on turn.listen) and a TCP listener for TURN over TLS.
func listenTURN(t testing.TB) edge.TURNListeners {
	t.Helper()
	for range 50 {
		tcp := listen(t)
		udp, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port(tcp))))
		if err != nil {
			tcp.Close()
			continue
		}
		return edge.TURNListeners{UDP: udp, TCP: tcp, TLS: listen(t)}
	}
	t.Fatal("testenv: no port free for TURN over both UDP and TCP")
	return edge.TURNListeners{}
}

// Start brings up core and edge; they stop when the test ends.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	dir := t.TempDir()
	coreHTTPS, coreConf, corePhone, coreMRA, edgeHTTPS, edgeSIP := listen(t), listen(t), listen(t), listen(t), listen(t), listen(t)
	edgeTURN := listenTURN(t)
	a := quickstart.Addrs{CoreIP: "127.0.0.1", EdgeIP: "127.0.0.1", CoreHTTPS: port(coreHTTPS), CoreConf: port(coreConf), CorePhone: port(corePhone),
		CoreMRA: port(coreMRA), EdgeHTTPS: port(edgeHTTPS), EdgeSIP: port(edgeSIP), EdgeTURN: port(edgeTURN.TCP), EdgeTURNS: port(edgeTURN.TLS)}
	lay, err := quickstart.Prepare(dir, a)
	if err != nil {
		t.Fatal(err)
	}
	if o.Configure != nil {
		o.Configure(&lay)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if os.Getenv("EDGEWAY_TEST_LOG") == "" {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Log != nil {
		log = o.Log
	}
	ctx, cancel := context.WithCancel(context.Background())
	if o.StoreURL != "" {
		lay.Core.Store = o.StoreURL
	}
	st, err := store.OpenURL(ctx, lay.Core.Store)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(ctx, node.Config{Core: &lay.Core, Store: st, CoreOptions: o.CoreOptions, Edge: &lay.Edge, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	c, e := n.Core, n.Edge
	var devs []quickstart.Device
	var users []quickstart.User
	if !o.Bare {
		if devs, users, err = quickstart.Provision(ctx, st, c.Activation()); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := os.ReadFile(lay.Core.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(lay.PKI.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	env := &Env{T: t, Dir: dir, Layout: lay, Store: st, Core: c, Edge: e, Node: n, CA: pool, AdminToken: strings.TrimSpace(string(tok)),
		Devices: map[string]quickstart.Device{}, Users: users, Log: log}
	for _, d := range devs {
		env.Devices[d.Name] = d
	}
	env.Info = quickstart.Info{
		EdgeHTTPS: fmt.Sprintf("https://127.0.0.1:%d", a.EdgeHTTPS), EdgeSIP: fmt.Sprintf("127.0.0.1:%d", a.EdgeSIP),
		CoreHTTPS: fmt.Sprintf("https://127.0.0.1:%d", a.CoreHTTPS), CoreConfig: fmt.Sprintf("https://127.0.0.1:%d", a.CoreConf), CorePhoneOAuth: fmt.Sprintf("127.0.0.1:%d", a.CorePhone),
		CoreMRA: fmt.Sprintf("127.0.0.1:%d", a.CoreMRA), CACert: lay.PKI.CACert, AdminTokenFile: lay.Core.AdminTokenFile,
		Domain: quickstart.Domain, Devices: devs, Users: users,
	}
	env.Info = lay.WithTURN(env.Info)
	if o.BeforeStart != nil {
		if err := o.BeforeStart(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	// The one assembler binds what is not bound yet and moves the core's
	// SIP listeners to the ports `admin node set` left in the store, if
	// BeforeStart set any (S-11), as `edgeway core` and quickstart do.
	if err := n.Bind(ctx, node.Listeners{
		Core: core.Listeners{HTTPS: coreHTTPS, Config: coreConf, Phone: corePhone, MRA: coreMRA},
		Edge: edge.Listeners{HTTPS: edgeHTTPS, SIP: edgeSIP, TURN: edgeTURN},
	}); err != nil {
		t.Fatal(err)
	}
	bound := n.Listeners().Core
	env.Info.CorePhoneOAuth, env.Info.CoreMRA = bound.Phone.Addr().String(), bound.MRA.Addr().String()
	if ops := n.Listeners(); ops.CoreOps != nil && ops.EdgeOps != nil {
		env.Info.CoreOps, env.Info.EdgeOps = ops.CoreOps.Addr().String(), ops.EdgeOps.Addr().String()
	}
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("testenv: tiers stopped with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("testenv: the tiers did not stop within 10s")
		}
		st.Close()
	})
	return env
}

// Phone returns a simulated phone for a demo device, through the edge
// (mra) or straight to the core's Phone OAuth port.
func (e *Env) Phone(device string, mra bool) *bench.Phone {
	e.T.Helper()
	d, ok := e.Devices[device]
	if !ok {
		e.T.Fatalf("testenv: no demo device %s", device)
	}
	cfg := bench.PhoneConfig{Device: d.Name, Line: d.Line, Domain: d.Domain, RootCAs: e.CA, Log: e.Log,
		EdgeHTTPS: e.Info.EdgeHTTPS, EdgeSIP: e.Info.EdgeSIP}
	if !mra {
		cfg.EdgeHTTPS, cfg.EdgeSIP, cfg.ConfigURL = e.Info.CoreHTTPS, e.Info.CorePhoneOAuth, e.Info.CoreConfig
	}
	p, err := bench.NewPhone(cfg)
	if err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(p.Close)
	return p
}

// Path returns a path inside the env's directory.
func (e *Env) Path(name string) string { return filepath.Join(e.Dir, name) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// FreePort is a loopback TCP port the kernel just handed out and took
// back, for tests that must name a port before binding it (a port set
// with `node set`).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
