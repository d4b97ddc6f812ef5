package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/internal/token"
)

// sourceClient is an HTTPS client whose connections come from ip (any
// 127/8 address on Linux): one attacker address, or one phone's.
func sourceClient(t *testing.T, env *testenv.Env, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: env.CA, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// redeem posts an activation-code grant for device from source ip to base
// (the edge's or the core's URL), as a phone onboarding via MRA would (S-17).
func redeem(t *testing.T, env *testenv.Env, base, ip, device, code string) (bench.Tokens, error) {
	t.Helper()
	return bench.PostToken(context.Background(), sourceClient(t, env, ip), base, url.Values{
		"grant_type": {token.GrantTypeActivationCode}, "device": {device},
		"activation_code": {code}, "service_domain": {quickstart.Domain}})
}

// wrongFor returns a well-formed code that is not code.
func wrongFor(code string, i int) string {
	w := fmt.Sprintf("%016d", 1000+i)
	if w == code {
		w = fmt.Sprintf("%016d", 2000+i)
	}
	return w
}

func codeState(t *testing.T, env *testenv.Env, device string) []string {
	t.Helper()
	code, body := env.Admin(t, http.MethodGet, "/api/v1/activation?device="+device, nil)
	if code != 200 {
		t.Fatalf("list codes: %d %s", code, body)
	}
	var states []string
	for _, c := range decode[[]core.CodeView](t, body) {
		states = append(states, c.State)
	}
	return states
}

// Issue 9: ten wrong guesses on one device, each from its own address (so
// the per-source throttle never sees a second failure), lock the device's
// code: the right code is then refused 400 invalid_grant as locked, the
// admin sees it locked, and re-issuing gives a working code.
func TestDeviceBudgetLocksAcrossSources(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	right := env.Devices[phoneA].ActivationCode
	for i := range 10 { // the default budget, activation_guesses.max_wrong
		_, err := redeem(t, env, env.Info.EdgeHTTPS, fmt.Sprintf("127.1.0.%d", i+1), phoneA, wrongFor(right, i))
		expectOAuthError(t, fmt.Sprintf("wrong guess %d", i+1), err, 400, "invalid_grant", "not valid for device "+phoneA)
	}
	_, err := redeem(t, env, env.Info.EdgeHTTPS, "127.1.1.1", phoneA, right)
	expectOAuthError(t, "the right code once locked", err, 400, "invalid_grant", "locked after too many wrong guesses")
	// On premises too: the lock is in the store, not in the edge.
	_, err = redeem(t, env, env.Info.CoreHTTPS, "127.1.1.2", phoneA, right)
	expectOAuthError(t, "the right code at the core", err, 400, "invalid_grant", "locked")
	if got := codeState(t, env, phoneA); len(got) != 1 || got[0] != "locked" {
		t.Fatalf("activation list %s = %v, want [locked]", phoneA, got)
	}

	// The administrator re-issues (edgeway admin activation issue DEVICE).
	code, body := env.Admin(t, http.MethodPost, "/api/v1/activation", map[string]string{"device": phoneA})
	if code != 201 {
		t.Fatalf("re-issue: %d %s", code, body)
	}
	fresh := decode[core.IssuedCode](t, body).ActivationCode
	if got := codeState(t, env, phoneA); len(got) != 2 || got[0] != "revoked" || got[1] != "valid" {
		t.Fatalf("after re-issue %v, want [revoked valid]", got)
	}
	// The count starts again: a wrong guess is one of ten, and the phone,
	// from the address that met the lock, onboards with the new code.
	_, err = redeem(t, env, env.Info.EdgeHTTPS, "127.1.0.1", phoneA, wrongFor(fresh, 99))
	expectOAuthError(t, "wrong guess after re-issue", err, 400, "invalid_grant", "not valid for device")
	if _, err := redeem(t, env, env.Info.EdgeHTTPS, "127.1.1.1", phoneA, fresh); err != nil {
		t.Fatalf("re-issued code: %v", err)
	}
	// The other device was never touched.
	if _, err := redeem(t, env, env.Info.EdgeHTTPS, "127.1.1.3", phoneB, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatalf("other device: %v", err)
	}
}

// Concurrent wrong guesses from many addresses do not overshoot: the store
// counts them one by one, so exactly the budget (10) is evaluated and every
// other guess is refused as locked.
func TestDeviceBudgetConcurrentGuesses(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	right := env.Devices[phoneB].ActivationCode
	const n = 40
	var (
		mu                sync.Mutex
		evaluated, locked int
		other             []string
		wg                sync.WaitGroup
		start             = make(chan struct{})
	)
	for i := range n {
		c := sourceClient(t, env, fmt.Sprintf("127.1.2.%d", i+1))
		wg.Go(func() {
			<-start
			_, err := bench.PostToken(context.Background(), c, env.Info.EdgeHTTPS, url.Values{
				"grant_type": {token.GrantTypeActivationCode}, "device": {phoneB},
				"activation_code": {wrongFor(right, i)}, "service_domain": {quickstart.Domain}})
			te := tokenError(t, err)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case te.Status == 400 && contains(te.Description, "not valid for device"):
				evaluated++
			case te.Status == 400 && contains(te.Description, "locked"):
				locked++
			default:
				other = append(other, te.Error())
			}
		})
	}
	close(start)
	wg.Wait()
	if evaluated != 10 || locked != n-10 || len(other) > 0 {
		t.Fatalf("evaluated %d, locked %d, other %v; want 10 and %d", evaluated, locked, other, n-10)
	}
	_, err := redeem(t, env, env.Info.EdgeHTTPS, "127.1.3.1", phoneB, right)
	expectOAuthError(t, "right code after the burst", err, 400, "invalid_grant", "locked")
}

// Issue 9: the edge's failure budget counts failed activation grants from
// every source; once spent, activation grants get 429 slow_down with
// Retry-After from the edge itself, without reaching the core. Successful
// grants spend nothing, and other grants are never refused by it.
func TestEdgeFailureBudget(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		l.Edge.ActivationFailures.Burst = 5
		l.Edge.ActivationFailures.Rate = 0.01 // one failure back every 100 s: none during the test
	}})
	edgeURL := env.Info.EdgeHTTPS
	src := 0
	next := func() string { src++; return fmt.Sprintf("127.1.4.%d", src) }
	unknown := func(i int) {
		t.Helper()
		_, err := redeem(t, env, edgeURL, next(), "SEPNOSUCHDEVICE", wrongFor("", i))
		expectOAuthError(t, fmt.Sprintf("failure %d", i), err, 400, "invalid_grant", "not valid for device")
	}
	unknown(1)
	unknown(2)
	// A phone onboarding from a new address before the budget is spent is
	// served, and spends nothing: three more failures still pass.
	tokA, err := redeem(t, env, edgeURL, next(), phoneA, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatalf("right code before the budget is spent: %v", err)
	}
	unknown(3)
	unknown(4)
	unknown(5)

	// Spent: every further activation grant, from any new address, right
	// code or not, is refused at the edge.
	_, err = redeem(t, env, edgeURL, next(), phoneB, env.Devices[phoneB].ActivationCode)
	te := tokenError(t, err)
	if te.Status != http.StatusTooManyRequests || te.Code != "slow_down" {
		t.Fatalf("activation grant with the budget spent: %v", err)
	}
	if s, err := strconv.Atoi(te.RetryAfter); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", te.RetryAfter)
	}
	for i := range 15 { // more than phoneB's per-device budget
		_, err := redeem(t, env, edgeURL, next(), phoneB, wrongFor(env.Devices[phoneB].ActivationCode, i))
		if te := tokenError(t, err); te.Status != http.StatusTooManyRequests {
			t.Fatalf("guess %d with the budget spent: %v", i, err)
		}
	}
	// The operations address counts them (issue 12 §2): 16 throttled at
	// the edge, 22 attempts in all, none of the throttled ones at the core.
	em, cm := scrapeOps(t, env.Info.EdgeOps), scrapeOps(t, env.Info.CoreOps)
	if v := em.value("edgeway_edge_activation_attempts_total", "result", "throttled"); v != 16 {
		t.Errorf("edgeway_edge_activation_attempts_total{result=throttled} = %v, want 16", v)
	}
	if v := em.value("edgeway_edge_activation_attempts_total", "result", "attempted"); v != 22 {
		t.Errorf("edgeway_edge_activation_attempts_total{result=attempted} = %v, want 22", v)
	}
	if v := cm.value("edgeway_core_activation_attempts_total", "result", "refused"); v != 5 {
		t.Errorf("edgeway_core_activation_attempts_total{result=refused} = %v, want the 5 that reached the core", v)
	}
	// None of them reached the core: phoneB's code is neither locked nor
	// used, and the phone redeems it on premises.
	if _, err := redeem(t, env, env.Info.CoreHTTPS, "127.1.5.1", phoneB, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatalf("phoneB's code at the core after refused guesses: %v", err)
	}
	// Refresh grants still pass through the edge.
	if _, err := bench.PostToken(context.Background(), sourceClient(t, env, "127.1.5.2"), edgeURL,
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokA.RefreshToken}}); err != nil {
		t.Fatalf("refresh through the edge with the budget spent: %v", err)
	}
}
