package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/testenv"
)

// phoneAt is a demo phone whose connections come from source (a loopback
// address), through the edge or on-premises.
func phoneAt(t *testing.T, env *testenv.Env, device string, mra bool, source string) *bench.Phone {
	t.Helper()
	d := env.Devices[device]
	cfg := bench.PhoneConfig{Device: d.Name, Line: d.Line, Domain: d.Domain, RootCAs: env.CA, Log: env.Log,
		EdgeHTTPS: env.Info.EdgeHTTPS, EdgeSIP: env.Info.EdgeSIP, SourceIP: netip.MustParseAddr(source)}
	if !mra {
		cfg.EdgeHTTPS, cfg.EdgeSIP, cfg.ConfigURL = env.Info.CoreHTTPS, env.Info.CorePhoneOAuth, env.Info.CoreConfig
	}
	p, err := bench.NewPhone(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// graceEnv is an env with a settable clock and the given refresh grace
// (nil: the default).
func graceEnv(t *testing.T, grace *time.Duration) (*testenv.Env, *testenv.Clock) {
	t.Helper()
	clk := testenv.NewClock(time.Now())
	env := testenv.Start(t, testenv.Options{
		CoreOptions: []core.Option{core.WithClock(clk.Now)},
		Configure: func(l *quickstart.Layout) {
			if grace != nil {
				l.Core.RefreshGrace = grace
			}
		},
	})
	return env, clk
}

// onboardAndLose onboards ph, refreshes once and "loses" the response:
// the phone keeps its first tokens. It returns both sets.
func onboardAndLose(t *testing.T, env *testenv.Env, ph *bench.Phone, device string) (first, lost bench.Tokens) {
	t.Helper()
	ctx := context.Background()
	first, err := ph.Onboard(ctx, env.Devices[device].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	if lost, err = ph.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ph.SetTokens(first)
	return first, lost
}

// Issue 9 item 15: the refresh response is lost on the way; the phone's
// retry with the same refresh token within the grace gets the same new
// tokens back, the family stays alive and the successor works. A second
// retry is a replay and the family dies (RFC 9700 §4.14.2).
func TestRefreshGraceLostResponse(t *testing.T) {
	env, clk := graceEnv(t, nil) // default grace, 30s
	ctx := context.Background()
	ph := phoneAt(t, env, phoneA, true, "127.0.0.1")
	first, lost := onboardAndLose(t, env, ph, phoneA)

	clk.Advance(20 * time.Second)
	again, err := ph.Refresh(ctx)
	if err != nil {
		t.Fatalf("retry within the grace: %v", err)
	}
	if again.RefreshToken != lost.RefreshToken || again.AccessToken != lost.AccessToken {
		t.Fatal("the retry did not return the tokens the lost response carried")
	}
	if again.ExpiresIn <= 0 || again.ExpiresIn > lost.ExpiresIn-19 {
		t.Errorf("expires_in %d on the retry, %d on the lost response 20s before", again.ExpiresIn, lost.ExpiresIn)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register with the recovered access token: %v %v", res, err)
	}

	// A second retry of the old token: replay, the family is revoked.
	ph.SetTokens(first)
	_, err = ph.Refresh(ctx)
	expectOAuthError(t, "second retry", err, 400, "invalid_grant", "already used")
	ph.SetTokens(again)
	_, err = ph.Refresh(ctx)
	expectOAuthError(t, "successor after the replay", err, 400, "invalid_grant", "revoked")
}

// The recovered successor is a normal member of the family: it refreshes,
// and once it has been used the old token is a replay even within the
// grace (the response was not lost).
func TestRefreshGraceSuccessorWorks(t *testing.T) {
	env, _ := graceEnv(t, nil)
	ctx := context.Background()
	ph := phoneAt(t, env, phoneA, true, "127.0.0.1")
	first, _ := onboardAndLose(t, env, ph, phoneA)
	again, err := ph.Refresh(ctx)
	if err != nil {
		t.Fatalf("retry within the grace: %v", err)
	}
	third, err := ph.Refresh(ctx)
	if err != nil {
		t.Fatalf("refreshing the recovered successor: %v", err)
	}
	if third.RefreshToken == again.RefreshToken {
		t.Fatal("the recovered successor was not rotated")
	}
	ph.SetTokens(first)
	_, err = ph.Refresh(ctx)
	expectOAuthError(t, "old token after its successor was used", err, 400, "invalid_grant", "already used")
	ph.SetTokens(third)
	_, err = ph.Refresh(ctx)
	expectOAuthError(t, "newest token after the replay", err, 400, "invalid_grant", "revoked")
}

// After the grace, from another source IP, or on the other path, the retry
// is a replay and the family dies; with grace 0 even the immediate retry is.
func TestRefreshGraceRefusals(t *testing.T) {
	zero := time.Duration(0)
	for _, tc := range []struct {
		name    string
		grace   *time.Duration
		advance time.Duration
		mra     bool
		source  string
	}{
		{"after the grace", nil, core.DefaultRefreshGrace, true, "127.0.0.1"},
		{"from another source IP", nil, time.Second, true, "127.0.0.9"},
		{"on-premises instead of through the edge", nil, time.Second, false, "127.0.0.1"},
		{"grace 0 (today's behaviour)", &zero, 0, true, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, clk := graceEnv(t, tc.grace)
			ctx := context.Background()
			ph := phoneAt(t, env, phoneA, true, "127.0.0.1")
			first, lost := onboardAndLose(t, env, ph, phoneA)
			clk.Advance(tc.advance)
			other := phoneAt(t, env, phoneA, tc.mra, tc.source)
			other.SetTokens(first)
			_, err := other.Refresh(ctx)
			expectOAuthError(t, "retry", err, 400, "invalid_grant", "already used")
			ph.SetTokens(lost)
			_, err = ph.Refresh(ctx)
			expectOAuthError(t, "the lost successor after the replay", err, 400, "invalid_grant", "revoked")
		})
	}
}

// The grace is kept in the store, not in memory: another core node on the
// same store file (or this one after a restart) serves the retry.
func TestRefreshGraceAcrossCoreNodes(t *testing.T) {
	env, clk := graceEnv(t, nil)
	ctx := context.Background()
	ph := phoneAt(t, env, phoneA, false, "127.0.0.1")
	_, lost := onboardAndLose(t, env, ph, phoneA)

	st, err := store.Open(ctx, env.Layout.Core.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := env.Layout.Core
	cfg.Node, cfg.Role = "core-2", core.RoleSubscriber
	var ls core.Listeners
	for _, l := range []*net.Listener{&ls.HTTPS, &ls.Config, &ls.Phone, &ls.MRA} {
		if *l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	cfg.PhoneOAuthPort, cfg.MRAPort = ls.Phone.Addr().(*net.TCPAddr).Port, ls.MRA.Addr().(*net.TCPAddr).Port
	cfg.HTTPSAddr, cfg.ConfigAddr = ls.HTTPS.Addr().String(), ls.Config.Addr().String()
	node2, err := node.New(ctx, node.Config{Core: &cfg, Store: st, CoreOptions: []core.Option{core.WithClock(clk.Now)}, Log: env.Log})
	if err != nil {
		t.Fatal(err)
	}
	if err := node2.Bind(ctx, node.Listeners{Core: ls}); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- node2.Serve(sctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("core-2: %v", err)
		}
	})

	clk.Advance(5 * time.Second)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.CA, MinVersion: tls.VersionTLS12},
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	got, err := bench.PostToken(ctx, &http.Client{Transport: tr}, "https://"+ls.HTTPS.Addr().String(),
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ph.Tokens().RefreshToken}})
	if err != nil {
		t.Fatalf("retry on the other node: %v", err)
	}
	if got.RefreshToken != lost.RefreshToken || got.AccessToken != lost.AccessToken {
		t.Fatal("the other node did not return the lost response")
	}
	// And the first node now sees the grace spent: a replay.
	_, err = ph.Refresh(ctx)
	expectOAuthError(t, "second retry on the first node", err, 400, "invalid_grant", "already used")
}
