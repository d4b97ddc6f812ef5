package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/edgeway/edgeway/internal/media"
	"github.com/edgeway/edgeway/internal/pgtest"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// scrape is one /metrics of an operations address, parsed by the
// Prometheus text parser: family name → family.
type scrape map[string]*dto.MetricFamily

func scrapeOps(t *testing.T, addr string) scrape {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("scrape %s: %s", addr, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("scrape %s: the Prometheus text parser refused it: %v", addr, err)
	}
	return fams
}

// value is the sample of family name whose labels include want ("k", "v"
// pairs); -1 when there is none.
func (s scrape) value(name string, want ...string) float64 {
	f := s[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == want[i] && l.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// zero is v, or 0 for a series not exported yet (-1).
func zero(v float64) float64 { return max(v, 0) }

func checkDelta(t *testing.T, what string, before, after scrape, want float64, name string, labels ...string) {
	t.Helper()
	b, a := zero(before.value(name, labels...)), after.value(name, labels...)
	if a-b != want {
		t.Errorf("%s: %s%v moved %v → %v, want +%v", what, name, labels, b, a, want)
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Issue 12 §2: both tiers' operations addresses serve Prometheus metrics
// that a real parser reads, and the counters move with traffic: an
// onboarding and a REGISTER through the edge, a forged token, a wrong
// activation code, a TURN allocation with media both ways.
func TestMetricsMoveWithTraffic(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	if env.Info.CoreOps == "" || env.Info.EdgeOps == "" || env.Info.CoreOps == env.Info.EdgeOps {
		t.Fatalf("operations addresses core %q edge %q: want two", env.Info.CoreOps, env.Info.EdgeOps)
	}
	for _, addr := range []string{env.Info.CoreOps, env.Info.EdgeOps} {
		if code, body := get(t, "http://"+addr+"/healthz"); code != 200 {
			t.Errorf("%s/healthz: %d %s", addr, code, body)
		}
	}
	core0, edge0 := scrapeOps(t, env.Info.CoreOps), scrapeOps(t, env.Info.EdgeOps)
	for _, s := range []struct {
		sc   scrape
		name string
	}{{core0, "go_goroutines"}, {core0, "process_open_fds"}, {edge0, "go_goroutines"}, {core0, "edgeway_core_bindings"}, {edge0, "edgeway_edge_core_up"}} {
		if s.sc.value(s.name) < 0 {
			t.Errorf("no %s in the scrape", s.name)
		}
	}
	if v := core0.value("edgeway_core_bindings"); v != 0 {
		t.Errorf("edgeway_core_bindings = %v before any REGISTER, want 0", v)
	}

	// A phone onboards through the edge and registers (MRA).
	ph := registered(t, env, phoneA, true)
	core1, edge1 := scrapeOps(t, env.Info.CoreOps), scrapeOps(t, env.Info.EdgeOps)
	checkDelta(t, "REGISTER through the edge", core0, core1, 1, "edgeway_core_register_responses_total", "port", "mra", "code", "200")
	checkDelta(t, "REGISTER through the edge", core0, core1, 0, "edgeway_core_register_responses_total", "port", "phone_oauth", "code", "200")
	checkDelta(t, "REGISTER through the edge", edge0, edge1, 1, "edgeway_edge_register_responses_total", "code", "200")
	checkDelta(t, "onboarding", core0, core1, 1, "edgeway_core_tokens_issued_total", "grant", "activation_code")
	checkDelta(t, "onboarding", core0, core1, 1, "edgeway_core_activation_attempts_total", "result", "redeemed")
	if v := core1.value("edgeway_core_bindings"); v != 1 {
		t.Errorf("edgeway_core_bindings = %v after one REGISTER, want 1", v)
	}
	if v := edge1.value("edgeway_edge_registered_flows"); v != 1 {
		t.Errorf("edgeway_edge_registered_flows = %v after one REGISTER, want 1", v)
	}
	if v := core1.value("edgeway_core_mra_peers_admitted_total"); v < 1 {
		t.Errorf("edgeway_core_mra_peers_admitted_total = %v with the edge connected, want ≥ 1", v)
	}
	if v := core1.value("edgeway_core_store_operation_seconds", "op", "location_commit"); v < 1 {
		t.Errorf("location_commit observations = %v after a REGISTER, want ≥ 1", v)
	}
	if v := edge1.value("edgeway_edge_core_up", "core", env.Info.CoreHTTPS); v != 1 {
		t.Errorf("edgeway_edge_core_up{core=%q} = %v, want 1", env.Info.CoreHTTPS, v)
	}

	// A forged token (the core's kid, someone else's key, S-2): the edge
	// refuses it itself; the core never sees it.
	ctx := context.Background()
	rows, _ := env.Store.ListSigningKeys(ctx)
	evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ft := jwt.NewWithClaims(jwt.SigningMethodES256, env.Claims(phoneA, time.Now()))
	ft.Header["kid"] = rows[0].KID
	forged, _ := ft.SignedString(evil)
	if res, err := ph.RegisterWith(ctx, "Bearer "+forged, 600); err != nil || res.StatusCode != 401 {
		t.Fatalf("forged token: %v %v, want 401", res, err)
	}
	// A wrong activation code (S-17) through the edge.
	form := url.Values{"grant_type": {"urn:edgeway:params:oauth:grant-type:activation-code"}, "device": {phoneB}, "activation_code": {"0000000000000000"},
		"service_domain": {env.Devices[phoneB].Domain}}
	if res, err := env.HTTPClient().PostForm(env.Info.EdgeHTTPS+"/oauth2/token", form); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Fatalf("wrong activation code: %s, want 400", res.Status)
		}
	}
	core2, edge2 := scrapeOps(t, env.Info.CoreOps), scrapeOps(t, env.Info.EdgeOps)
	checkDelta(t, "forged token", edge1, edge2, 1, "edgeway_edge_sip_refusals_total", "reason", "invalid_token")
	checkDelta(t, "forged token", edge1, edge2, 1, "edgeway_edge_register_responses_total", "code", "401")
	checkDelta(t, "forged token", core1, core2, 0, "edgeway_core_register_responses_total", "port", "mra", "code", "401")
	checkDelta(t, "wrong activation code", core1, core2, 1, "edgeway_core_token_refusals_total", "grant", "activation_code", "error", "invalid_grant")
	checkDelta(t, "wrong activation code", core1, core2, 1, "edgeway_core_activation_attempts_total", "result", "refused")
	checkDelta(t, "wrong activation code", core1, core2, 0, "edgeway_core_tokens_issued_total", "grant", "activation_code")
	checkDelta(t, "wrong activation code", edge1, edge2, 1, "edgeway_edge_activation_attempts_total", "result", "attempted")

	// A TURN allocation, and one datagram each way through it to a peer
	// the demo policy allows (127.0.0.1).
	tok := ph.Tokens()
	if tok.TURN == nil {
		t.Fatal("no TURN credentials in the token response")
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	relay, err := media.AllocateRelay(tctx, env.Info.EdgeTURN, "udp", tok.TURN.Username, tok.TURN.Credential, env.Info.TURNRealm)
	if err != nil {
		t.Fatalf("TURN allocation: %v", err)
	}
	defer relay.Close()
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := relay.Permit(peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	edge3 := scrapeOps(t, env.Info.EdgeOps)
	if v := edge3.value("edgeway_edge_turn_allocations"); v != 1 {
		t.Errorf("edgeway_edge_turn_allocations = %v with one allocation, want 1", v)
	}
	ping := []byte("twelve bytes")
	if _, err := relay.PacketConn().WriteTo(ping, peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || n != len(ping) {
		t.Fatalf("peer read: %d %v", n, err)
	}
	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.PacketConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := relay.PacketConn().ReadFrom(buf); err != nil {
		t.Fatalf("reply through the relay: %v", err)
	}
	// The relay counts a datagram to the peer right after sending it; the
	// peer's reply came back, so the edge has counted both, barring the
	// instant between the send and the count: wait for that, bounded.
	var edge4 scrape
	deadline := time.Now().Add(10 * time.Second)
	for edge4 = scrapeOps(t, env.Info.EdgeOps); edge4.value("edgeway_edge_turn_relayed_packets_total", "direction", "to_peer") < 1 && time.Now().Before(deadline); {
		edge4 = scrapeOps(t, env.Info.EdgeOps)
	}
	checkDelta(t, "datagram to the peer", edge3, edge4, 1, "edgeway_edge_turn_relayed_packets_total", "direction", "to_peer")
	checkDelta(t, "datagram to the peer", edge3, edge4, float64(len(ping)), "edgeway_edge_turn_relayed_bytes_total", "direction", "to_peer")
	checkDelta(t, "datagram from the peer", edge3, edge4, 1, "edgeway_edge_turn_relayed_packets_total", "direction", "from_peer")
	checkDelta(t, "datagram from the peer", edge3, edge4, 4, "edgeway_edge_turn_relayed_bytes_total", "direction", "from_peer")

	// A peer the policy refuses (the core's address, S-12 keeps relays
	// off the internal network): 403 and a refusal counted.
	if err := relay.Permit(&net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 5000}); err == nil {
		t.Error("permission to 10.0.0.1 granted; the demo policy allows only 127.0.0.1")
	}
	edge5 := scrapeOps(t, env.Info.EdgeOps)
	checkDelta(t, "refused peer", edge4, edge5, 1, "edgeway_edge_turn_refusals_total", "reason", "peer_policy")

	if code, body := get(t, "http://"+env.Info.CoreOps+"/readyz"); code != 200 {
		t.Errorf("core /readyz: %d %s", code, body)
	}
	if code, body := get(t, "http://"+env.Info.EdgeOps+"/readyz"); code != 200 {
		t.Errorf("edge /readyz: %d %s", code, body)
	}
}

// Issue 12 §2: the core is not ready while its store does not answer.
func TestCoreNotReadyWithoutItsStore(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	u := "http://" + env.Info.CoreOps + "/readyz"
	if code, body := get(t, u); code != 200 {
		t.Fatalf("core /readyz: %d %s, want 200", code, body)
	}
	// The core's HTTPS is served once Serve has made its start-up reads
	// of the store: answered here, closing the store can no longer stop
	// the core in the middle of starting (which made this test flaky).
	if res, err := env.HTTPClient().Get(env.Info.CoreHTTPS + "/.well-known/jwks.json"); err != nil {
		t.Fatalf("core HTTPS: %v", err)
	} else {
		res.Body.Close()
	}
	env.Store.Close()
	code, body := get(t, u)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store unreachable") {
		t.Errorf("core /readyz with its store closed: %d %q, want 503 naming the store", code, body)
	}
	if code, body := get(t, "http://"+env.Info.CoreOps+"/healthz"); code != 200 {
		t.Errorf("core /healthz with its store closed: %d %s, want 200 (alive)", code, body)
	}
}

// Issue 12 §2: an edge is ready while at least one core of its list is
// up, and says so on /readyz and in edgeway_edge_core_up.
func TestEdgeReadyFollowsItsCores(t *testing.T) {
	c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: pgtest.Database(t), Cores: 1, Edges: 1})
	eops := c.Edges[0].Ops()
	core := c.Cores[0].HTTPS
	ready := func() (int, string) { return get(t, "http://"+eops+"/readyz") }
	up := func() float64 { return scrapeOps(t, eops).value("edgeway_edge_core_up", "core", core) }
	if code, body := ready(); code != 200 || up() != 1 {
		t.Fatalf("edge with its core up: /readyz %d %s, core_up %v; want 200 and 1", code, body, up())
	}
	if code, body := get(t, "http://"+c.Cores[0].Ops()+"/readyz"); code != 200 {
		t.Errorf("core /readyz on PostgreSQL: %d %s", code, body)
	}
	c.StopCore(0)
	c.WaitEdgeCoreUp(0, 0, false)
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "no core") {
		t.Errorf("edge with its core down: /readyz %d %q, want 503 naming the cores", code, body)
	}
	if v := up(); v != 0 {
		t.Errorf("edgeway_edge_core_up = %v with the core down, want 0", v)
	}
	c.StartCore(0)
	c.WaitEdgeCoreUp(0, 0, true)
	if code, body := ready(); code != 200 {
		t.Errorf("edge with its core back: /readyz %d %s, want 200", code, body)
	}
}

// The dashboard (deploy/grafana/edgeway.json) queries only metrics the
// tiers export, and deploy/prometheus.yml scrapes quickstart's default
// operations addresses: a renamed metric breaks this test, not a panel
// in production.
func TestDashboardAndScrapeConfigMatchTheMetrics(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	registered(t, env, phoneA, true) // every REGISTER series and the store histogram exist
	exported := map[string]bool{}
	for _, addr := range []string{env.Info.CoreOps, env.Info.EdgeOps} {
		for name, f := range scrapeOps(t, addr) {
			exported[name] = true
			if f.GetType() == dto.MetricType_HISTOGRAM {
				exported[name+"_bucket"], exported[name+"_sum"], exported[name+"_count"] = true, true, true
			}
		}
	}
	b, err := os.ReadFile("../../deploy/grafana/edgeway.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/edgeway.json: %v", err)
	}
	name := regexp.MustCompile(`\b(?:edgeway|go|process)_[a-z0-9_]+`)
	queried := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				queried++
				if !exported[m] {
					t.Errorf("panel %q queries %s, which neither tier exports", p.Title, m)
				}
			}
		}
	}
	for _, want := range []string{"edgeway_core_register_responses_total", "edgeway_core_bindings", "edgeway_core_token_refusals_total",
		"edgeway_edge_turn_allocations", "edgeway_core_store_operation_seconds_bucket"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the dashboard has no panel over %s (issue 12 §2)", want)
		}
	}
	if queried == 0 {
		t.Fatal("no metric names found in the dashboard's queries")
	}

	y, err := os.ReadFile("../../deploy/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(y, &prom); err != nil {
		t.Fatalf("deploy/prometheus.yml: %v", err)
	}
	a := quickstart.DefaultAddrs()
	want := map[string]string{"edgeway-core": fmt.Sprintf("%s:%d", a.CoreIP, a.CoreOps), "edgeway-edge": fmt.Sprintf("%s:%d", a.EdgeIP, a.EdgeOps)}
	for _, sc := range prom.ScrapeConfigs {
		if len(sc.StaticConfigs) == 0 || len(sc.StaticConfigs[0].Targets) == 0 || sc.StaticConfigs[0].Targets[0] != want[sc.JobName] {
			t.Errorf("deploy/prometheus.yml job %s: targets %+v, want quickstart's %s", sc.JobName, sc.StaticConfigs, want[sc.JobName])
		}
		delete(want, sc.JobName)
	}
	if len(want) > 0 {
		t.Errorf("deploy/prometheus.yml has no job for %v", want)
	}

	// The alert rules (deploy/prometheus-alerts.yml, loaded by
	// prometheus.yml) query only exported metrics too.
	r, err := os.ReadFile("../../deploy/prometheus-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(r, &rules); err != nil {
		t.Fatalf("deploy/prometheus-alerts.yml: %v", err)
	}
	alerts := 0
	for _, g := range rules.Groups {
		for _, rule := range g.Rules {
			alerts++
			for _, m := range name.FindAllString(rule.Expr, -1) {
				if !exported[m] {
					t.Errorf("alert %s queries %s, which neither tier exports", rule.Alert, m)
				}
			}
		}
	}
	if alerts == 0 || !strings.Contains(string(r), "edgeway_tls_certificate_expiry_timestamp_seconds") {
		t.Errorf("deploy/prometheus-alerts.yml: %d alerts, none on the certificate's expiry", alerts)
	}
	if !strings.Contains(string(y), "prometheus-alerts.yml") {
		t.Error("deploy/prometheus.yml does not load deploy/prometheus-alerts.yml (rule_files)")
	}
}
