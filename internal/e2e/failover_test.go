package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
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
	"github.com/edgeway/edgeway/internal/dnstest"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/mtls"
)

// runningEdge is one more edge.Server in front of a testenv's core, with
// the env's layout and PKI (the same Expressway-C certificate) on its own
// loopback ports, as a second Expressway-E peer.
type runningEdge struct {
	srv  *edge.Server
	edge bench.Edge
	stop func()
}

// edgeOptions place an extra edge: its IP (default 127.0.0.1), a SIP
// listener bound beforehand, and another public certificate.
type edgeOptions struct {
	ip        string
	sip       net.Listener
	cert, key string
}

func startEdge(t *testing.T, env *testenv.Env, node string, o ...edgeOptions) *runningEdge {
	t.Helper()
	var opt edgeOptions
	if len(o) > 0 {
		opt = o[0]
	}
	if opt.ip == "" {
		opt.ip = "127.0.0.1"
	}
	https, err := net.Listen("tcp", net.JoinHostPort(opt.ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	sipLn := opt.sip
	if sipLn == nil {
		if sipLn, err = net.Listen("tcp", net.JoinHostPort(opt.ip, "0")); err != nil {
			t.Fatal(err)
		}
	}
	lns := [2]net.Listener{https, sipLn}
	cfg := env.Layout.Edge
	cfg.Node = node
	cfg.HTTPSAddr, cfg.SIPAddr = lns[0].Addr().String(), lns[1].Addr().String()
	cfg.AdvertisedHost = opt.ip
	cfg.PublicURL = "" // from the address above
	if opt.cert != "" {
		cfg.TLS.PublicCert, cfg.TLS.PublicKey = opt.cert, opt.key
	}
	cfg.CoreMRA = env.Info.CoreMRA
	cfg.TURN = edge.TURNConfig{} // signalling only
	srv, err := edge.New(cfg, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, edge.Listeners{HTTPS: lns[0], SIP: lns[1]}) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("edge %s stopped with %v", node, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("edge %s did not stop within 10s", node)
			}
		})
	}
	t.Cleanup(stop)
	return &runningEdge{srv: srv, edge: bench.Edge{HTTPS: "https://" + cfg.HTTPSAddr, SIP: cfg.SIPAddr}, stop: stop}
}

// provisionPhones creates n MRA devices through the admin API and issues
// their activation codes.
func provisionPhones(t *testing.T, env *testenv.Env, prefix string, firstLine, n int) map[string]core.IssuedCode {
	t.Helper()
	codes := map[string]core.IssuedCode{}
	for i := range n {
		name := fmt.Sprintf("%s%06d", prefix, i)
		line := fmt.Sprint(firstLine + i)
		if code, body := env.Admin(t, http.MethodPut, "/api/v1/devices/"+name, core.DeviceView{Model: "8845", Line: line,
			SecurityProfile: quickstart.ProfileName, AllowMRA: true, MRAServiceDomain: env.Info.Domain}); code/100 != 2 {
			t.Fatalf("device %s: %d %s", name, code, body)
		}
		code, body := env.Admin(t, http.MethodPost, "/api/v1/activation", map[string]string{"device": name})
		if code != 201 {
			t.Fatalf("activation code for %s: %d %s", name, code, body)
		}
		codes[line] = decode[core.IssuedCode](t, body)
	}
	return codes
}

// RFC 5626 §4.5 across Expressway-E peers (issue 11 §2): phones that know
// two edges register through the first; when it dies each one notices its
// flow failed (its connection closed, or no CRLF pong) within its
// keep-alive interval and registers through the second with the same
// tokens — no new onboarding — and calls reach them there.
func TestPhoneFailsOverToAnotherEdge(t *testing.T) {
	const n = 10
	env := testenv.Start(t, testenv.Options{})
	a, b := startEdge(t, env, "expe-a"), startEdge(t, env, "expe-b")
	codes := provisionPhones(t, env, "SEPFAIL", 7100, n)

	type phoneRun struct {
		ph     *bench.Phone
		line   string
		tokens bench.Tokens
		events chan bench.Event
		done   chan error
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := make([]*phoneRun, 0, n)
	for line, c := range codes {
		ph, err := bench.NewPhone(bench.PhoneConfig{Device: c.Device, Line: line, Domain: env.Info.Domain, RootCAs: env.CA, Log: env.Log,
			Edges: []bench.Edge{a.edge, b.edge}, KeepAlive: 200 * time.Millisecond, PongTimeout: 2 * time.Second,
			RecoveryBase: 100 * time.Millisecond, RecoveryMax: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ph.Close)
		tok, err := ph.Onboard(ctx, c.ActivationCode)
		if err != nil {
			t.Fatalf("onboarding %s through edge A: %v", c.Device, err)
		}
		r := &phoneRun{ph: ph, line: line, tokens: tok, events: make(chan bench.Event, 64), done: make(chan error, 1)}
		go func() { r.done <- ph.Run(ctx, func(e bench.Event) { r.events <- e }) }()
		runs = append(runs, r)
	}
	// waitEvent returns the phone's next event of kind, failing on an error.
	waitEvent := func(r *phoneRun, kind string) bench.Event {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case e := <-r.events:
				if e.Kind == kind {
					return e
				}
				if e.Kind == "error" {
					t.Fatalf("phone %s: %s", r.line, e.Detail)
				}
			case err := <-r.done:
				t.Fatalf("phone %s: Run returned %v", r.line, err)
			case <-timeout:
				t.Fatalf("phone %s: no %q event in 30s", r.line, kind)
			}
		}
	}
	for _, r := range runs {
		waitEvent(r, "registered")
		if got := r.ph.Edge(); got != a.edge {
			t.Fatalf("phone %s registered through %v, want edge A %v", r.line, got, a.edge)
		}
	}
	pathVia := func(reg core.RegistrationView) string {
		for _, e := range []*runningEdge{a, b} {
			if len(reg.Path) > 0 && strings.Contains(reg.Path[0], "@"+e.edge.SIP+";") {
				return e.edge.SIP
			}
		}
		return fmt.Sprint(reg.Path)
	}
	countVia := func(sip string) int {
		k := 0
		for _, reg := range env.Registrations(t) {
			if strings.HasPrefix(reg.AOR, "sip:71") && pathVia(reg) == sip {
				k++
			}
		}
		return k
	}
	if got := countVia(a.edge.SIP); got != n {
		t.Fatalf("bindings through edge A = %d, want %d", got, n)
	}
	flowsOn(t, a, n)
	// The flows answer pings (RFC 5626 §4.4.1 pongs) and none has moved.
	for _, r := range runs {
		if err := r.ph.Ping(ctx); err != nil {
			t.Fatalf("phone %s: ping through edge A: %v", r.line, err)
		}
		if k := r.ph.Recoveries(); k != 0 {
			t.Fatalf("phone %s recovered %d times while edge A was up", r.line, k)
		}
	}

	a.stop()
	for _, r := range runs {
		e := waitEvent(r, "recovered")
		if !strings.Contains(e.Detail, b.edge.SIP) {
			t.Fatalf("phone %s recovered %q, want through edge B %s", r.line, e.Detail, b.edge.SIP)
		}
	}
	recovered, sameTokens := 0, 0
	for _, r := range runs {
		if r.ph.Edge() == b.edge && r.ph.Recoveries() == 1 {
			recovered++
		}
		// The same tokens: no new onboarding, no refresh (a refresh rotates
		// the refresh token).
		if tok := r.ph.Tokens(); tok.AccessToken == r.tokens.AccessToken && tok.RefreshToken == r.tokens.RefreshToken {
			sameTokens++
		}
	}
	if recovered != n || sameTokens != n {
		t.Fatalf("phones recovered through edge B once = %d, with unchanged tokens = %d; want %d and %d", recovered, sameTokens, n, n)
	}
	if got := countVia(b.edge.SIP); got != n {
		t.Fatalf("bindings through edge B = %d, want %d (edge A: %d)", got, n, countVia(a.edge.SIP))
	}
	flowsOn(t, b, n)

	// A call between two of them completes through edge B.
	caller, callee := runs[0], runs[1]
	callee.ph.SetAnswerer(func([]byte) ([]byte, int) { return testSDP, 0 })
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	call, err := caller.ph.Dial(cctx, callee.line, testSDP)
	if err != nil {
		var status int
		if call != nil {
			status = call.Status
		}
		t.Fatalf("call %s → %s after failover: %v (status %d)", caller.line, callee.line, err, status)
	}
	if call.Status != 200 {
		t.Fatalf("call status %d, want 200", call.Status)
	}
	select {
	case <-callee.ph.Incoming():
	case <-cctx.Done():
		t.Fatal("the callee never saw the call")
	}
	if err := call.Hangup(cctx); err != nil {
		t.Fatalf("BYE: %v", err)
	}
	cancel()
	for _, r := range runs {
		if err := <-r.done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("phone %s: Run: %v", r.line, err)
		}
	}
}

// sharedSIPPort binds the same kernel-chosen TCP port on two loopback
// addresses: two edges whose SIP port is the one SRV users assume.
func sharedSIPPort(t *testing.T, ip1, ip2 string) (net.Listener, net.Listener) {
	t.Helper()
	for range 50 {
		a, err := net.Listen("tcp", net.JoinHostPort(ip1, "0"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := net.Listen("tcp", net.JoinHostPort(ip2, strconv.Itoa(a.Addr().(*net.TCPAddr).Port)))
		if err == nil {
			return a, b
		}
		a.Close()
	}
	t.Fatal("no port free on both addresses")
	return nil, nil
}

// A phone that knows only its service domain finds the edges in
// _collab-edge._tls SRV records (issue 11 §2) served by a DNS server on
// loopback, in priority order, by name: it onboards and registers through
// the first (TLS verifies that name), and when that edge dies it
// re-registers through the second, with the same tokens.
func TestPhoneFindsEdgesBySRV(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	// Edge B (expe-b.edgeway.test, 127.0.0.2) with a certificate for its
	// name from the env's CA; edge A (edge.edgeway.test, 127.0.0.1) with
	// the env's. Both on one SIP port, as the SRV lookup assumes.
	dir := t.TempDir()
	for _, f := range []string{mtls.DevCACertFile, mtls.DevCAKeyFile} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(env.Layout.PKI.CACert), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pkiB, err := mtls.InitDevPKI(mtls.DevPKIOptions{Dir: dir, EdgePublicNames: []string{"expe-b.edgeway.test"}})
	if err != nil {
		t.Fatal(err)
	}
	sipA, sipB := sharedSIPPort(t, "127.0.0.1", "127.0.0.2")
	a := startEdge(t, env, "expe-a", edgeOptions{sip: sipA})
	b := startEdge(t, env, "expe-b", edgeOptions{ip: "127.0.0.2", sip: sipB, cert: pkiB.EdgePublicCert, key: pkiB.EdgePublicKey})
	port := func(hostport string) uint16 {
		ap, err := netip.ParseAddrPort(strings.TrimPrefix(hostport, "https://"))
		if err != nil {
			t.Fatal(err)
		}
		return ap.Port()
	}
	dns := dnstest.Start(t, dnstest.Zone{
		SRV: map[string][]dnstest.SRV{"_collab-edge._tls." + env.Info.Domain: {
			{Priority: 20, Weight: 1, Port: port(a.edge.HTTPS), Target: "edge.edgeway.test."},
			{Priority: 10, Weight: 1, Port: port(b.edge.HTTPS), Target: "expe-b.edgeway.test."},
		}},
		A: map[string]netip.Addr{"edge.edgeway.test": netip.MustParseAddr("127.0.0.1"), "expe-b.edgeway.test": netip.MustParseAddr("127.0.0.2")},
	})
	resolver := bench.NewResolver(dns.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	edges, err := bench.LookupEdges(ctx, resolver, env.Info.Domain, int(port(sipA.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	sipPort := strconv.Itoa(int(port(sipA.Addr().String())))
	want := []bench.Edge{
		{HTTPS: "https://expe-b.edgeway.test:" + strconv.Itoa(int(port(b.edge.HTTPS))), SIP: "expe-b.edgeway.test:" + sipPort},
		{HTTPS: "https://edge.edgeway.test:" + strconv.Itoa(int(port(a.edge.HTTPS))), SIP: "edge.edgeway.test:" + sipPort},
	}
	if len(edges) != 2 || edges[0] != want[0] || edges[1] != want[1] {
		t.Fatalf("edges from SRV %v, want %v", edges, want)
	}

	codes := provisionPhones(t, env, "SEPSRV", 7200, 1)
	c := codes["7200"]
	ph, err := bench.NewPhone(bench.PhoneConfig{Device: c.Device, Line: "7200", Domain: env.Info.Domain, RootCAs: env.CA, Log: env.Log,
		Edges: edges, Resolver: resolver, KeepAlive: 200 * time.Millisecond, PongTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	tok, err := ph.Onboard(ctx, c.ActivationCode)
	if err != nil {
		t.Fatalf("onboarding through %s: %v", edges[0].HTTPS, err)
	}
	events := make(chan bench.Event, 64)
	done := make(chan error, 1)
	go func() { done <- ph.Run(ctx, func(e bench.Event) { events <- e }) }()
	next := func(kind string) bench.Event {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case e := <-events:
				if e.Kind == kind {
					return e
				}
				if e.Kind == "error" {
					t.Fatalf("phone: %s", e.Detail)
				}
			case err := <-done:
				t.Fatalf("Run returned %v", err)
			case <-timeout:
				t.Fatalf("no %q event in 30s", kind)
			}
		}
	}
	next("registered")
	if ph.Edge() != edges[0] {
		t.Fatalf("registered through %v, want B (%v)", ph.Edge(), edges[0])
	}
	flowsOn(t, b, 1)
	b.stop()
	if e := next("recovered"); !strings.Contains(e.Detail, edges[1].SIP) {
		t.Fatalf("recovered %q, want through %s", e.Detail, edges[1].SIP)
	}
	flowsOn(t, a, 1)
	if got := ph.Tokens(); got.AccessToken != tok.AccessToken || got.RefreshToken != tok.RefreshToken {
		t.Fatal("the phone's tokens changed in the failover")
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

// flowsOn waits until e keeps n phone flows: an edge records a flow once
// it has relayed the REGISTER's 200, just after the phone has it.
func flowsOn(t *testing.T, e *runningEdge, n int) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for e.srv.SIP().Flows() != n {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("edge %s keeps %d flows, want %d", e.edge.SIP, e.srv.SIP().Flows(), n)
		}
	}
}
