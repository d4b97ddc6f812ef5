package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// runningEdge is one more edge.Server in front of a testenv's core, with
// the env's layout and PKI (the same Expressway-C certificate) on its own
// loopback ports, as a second Expressway-E peer.
type runningEdge struct {
	srv  *edge.Server
	edge bench.Edge
	stop func()
}

func startEdge(t *testing.T, env *testenv.Env, node string) *runningEdge {
	t.Helper()
	var lns [2]net.Listener
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	cfg := env.Layout.Edge
	cfg.Node = node
	cfg.HTTPSAddr, cfg.SIPAddr = lns[0].Addr().String(), lns[1].Addr().String()
	cfg.PublicURL = "" // from the address above
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
	if f := a.srv.SIP().Flows(); f != n {
		t.Fatalf("edge A keeps %d flows, want %d", f, n)
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
	if f := b.srv.SIP().Flows(); f != n {
		t.Fatalf("edge B keeps %d flows, want %d", f, n)
	}

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
