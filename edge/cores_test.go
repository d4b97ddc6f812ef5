package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeEdge reads an edge.yaml fragment as `edgeway edge` does (unknown
// keys refused) and defaults it.
func decodeEdge(t *testing.T, doc string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decoding %q: %v", doc, err)
	}
	return c.WithDefaults()
}

// The ordered core list (issue 11 §2): its keys, what each entry defaults
// from its url, the health-check defaults, and the single-core keys as a
// one-entry list.
func TestConfigCoresList(t *testing.T) {
	c := decodeEdge(t, `
node: expe-1
cores:
  - url: https://10.77.3.11:8443
    mra: 10.77.3.11:5091
  - url: https://cucm-sub1.example.com:8443
  - url: https://[2001:db8::3]:9443
    mra: "[2001:db8::3]:6091"
    config_url: https://tftp3.example.com:6971
    server_name: tomcat3.example.com
core_health_interval: 3s
`)
	want := []CoreNode{
		{URL: "https://10.77.3.11:8443", MRA: "10.77.3.11:5091", ConfigURL: "https://10.77.3.11:6971", ServerName: "10.77.3.11"},
		{URL: "https://cucm-sub1.example.com:8443", MRA: "cucm-sub1.example.com:5091", ConfigURL: "https://cucm-sub1.example.com:6971", ServerName: "cucm-sub1.example.com"},
		{URL: "https://[2001:db8::3]:9443", MRA: "[2001:db8::3]:6091", ConfigURL: "https://tftp3.example.com:6971", ServerName: "tomcat3.example.com"},
	}
	if !reflect.DeepEqual(c.Cores, want) || !reflect.DeepEqual(c.CoreList(), want) {
		t.Errorf("cores = %+v\nwant %+v", c.Cores, want)
	}
	if c.CoreURL != "" || c.CoreMRA != "" || c.CoreConfigURL != "" || c.CoreServerName != "" {
		t.Errorf("the single-core keys were defaulted beside cores: %q %q %q %q", c.CoreURL, c.CoreMRA, c.CoreConfigURL, c.CoreServerName)
	}
	for _, ck := range []struct {
		name      string
		got, want any
	}{
		{"token_issuer (the first core's url)", c.TokenIssuer, "https://10.77.3.11:8443"},
		{"core_health_interval", c.CoreHealthInterval, 3 * time.Second},
		{"core_health_timeout", c.CoreHealthTimeout, 2 * time.Second},
		{"core_down_after", c.CoreDownAfter, 2},
		{"core_up_after", c.CoreUpAfter, 2},
	} {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if again := c.WithDefaults(); !reflect.DeepEqual(again, c) {
		t.Errorf("WithDefaults not idempotent with cores")
	}
	if d := (Config{Node: "e"}).WithDefaults(); d.CoreHealthInterval != 5*time.Second {
		t.Errorf("default core_health_interval = %s, want 5s", d.CoreHealthInterval)
	}

	single := decodeEdge(t, "node: e\ncore_url: https://cucm-pub.example.com:8443\ncore_mra: cucm-pub.example.com:6091\n")
	if got := single.CoreList(); len(got) != 1 || got[0] != (CoreNode{URL: "https://cucm-pub.example.com:8443", MRA: "cucm-pub.example.com:6091",
		ConfigURL: "https://cucm-pub.example.com:6971", ServerName: "cucm-pub.example.com"}) {
		t.Errorf("core_url/core_mra as a list = %+v", got)
	}
}

func TestConfigCoresValidate(t *testing.T) {
	withCores := func(mod func(*Config)) Config {
		c := Config{Node: "e", Cores: []CoreNode{{URL: "https://a.example.com:8443"}, {URL: "https://b.example.com:8443"}},
			TLS: validEdge().TLS}
		mod(&c)
		return c.WithDefaults()
	}
	if err := withCores(func(*Config) {}).Validate(); err != nil {
		t.Fatalf("valid core list refused: %v", err)
	}
	for _, tc := range []struct {
		name     string
		mod      func(*Config)
		is       error
		contains string
	}{
		{name: "cores and core_url", mod: func(c *Config) { c.CoreURL = "https://a.example.com:8443" }, is: ErrCoreForms},
		{name: "cores and core_mra", mod: func(c *Config) { c.CoreMRA = "a.example.com:5091" }, is: ErrCoreForms},
		{name: "cores and core_server_name", mod: func(c *Config) { c.CoreServerName = "a.example.com" }, is: ErrCoreForms},
		{name: "cores and core_config_url", mod: func(c *Config) { c.CoreConfigURL = "https://a.example.com:6971" }, is: ErrCoreForms},
		{name: "an entry without url", mod: func(c *Config) { c.Cores[1].URL = "" }, contains: "cores[1].url"},
		{name: "an http url", mod: func(c *Config) { c.Cores[0].URL = "http://a.example.com:8443" }, contains: "cores[0].url"},
		{name: "mra port out of range (S-11)", mod: func(c *Config) { c.Cores[1].MRA = "b.example.com:1023" }, contains: "S-11"},
		{name: "mra without port", mod: func(c *Config) { c.Cores[1].MRA = "b.example.com" }, contains: "cores[1].mra"},
		{name: "an http config_url", mod: func(c *Config) { c.Cores[0].ConfigURL = "http://a.example.com:6971" }, contains: "cores[0].config_url"},
		{name: "a core twice", mod: func(c *Config) { c.Cores[1].URL, c.Cores[1].MRA = "https://b.example.com:8443", "A.example.com:5091" }, contains: "list each core once"},
		{name: "negative interval", mod: func(c *Config) { c.CoreHealthInterval = -time.Second }, contains: "core_health_interval"},
		{name: "negative timeout", mod: func(c *Config) { c.CoreHealthTimeout = -time.Second }, contains: "core_health_timeout"},
		{name: "down after 0 checks", mod: func(c *Config) { c.CoreDownAfter = -1 }, contains: "core_down_after"},
		{name: "up after 0 checks", mod: func(c *Config) { c.CoreUpAfter = -1 }, contains: "core_up_after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := withCores(tc.mod).Validate()
			if err == nil {
				t.Fatal("Validate = nil, want an error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Validate = %v, want %v", err, tc.is)
			}
			if tc.contains != "" && !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("Validate = %q, want it to mention %q", err, tc.contains)
			}
		})
	}
}

// logCount counts the records of a logger by level.
type logCount struct {
	mu   sync.Mutex
	warn int
	info int
}

func (l *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCount) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch r.Level {
	case slog.LevelWarn:
		l.warn++
	case slog.LevelInfo:
		l.info++
	}
	return nil
}
func (l *logCount) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCount) WithGroup(string) slog.Handler      { return l }
func (l *logCount) counts() (warn, info int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warn, l.info
}

func threeCores(t *testing.T, logs *logCount) *coreSet {
	t.Helper()
	cfg := Config{Cores: []CoreNode{{URL: "https://a:8443"}, {URL: "https://b:8443"}, {URL: "https://c:8443"}}}.WithDefaults()
	return newCoreSet(cfg, nil, slog.New(logs))
}

func orderOf(s *coreSet) string {
	var b strings.Builder
	for _, c := range s.order() {
		b.WriteString(c.https.Hostname())
	}
	return b.String()
}

// The selection: the cores that are up in list order, then those that are
// out; a core goes out after core_down_after failed checks (or at once
// when it cannot be connected to), comes back after core_up_after good
// ones, into its place; each transition logs once.
func TestCoreSetOrderFollowsHealth(t *testing.T) {
	logs := &logCount{}
	s := threeCores(t, logs)
	down := errors.New("no answer")
	steps := []struct {
		name       string
		do         func()
		order      string
		warn, info int
	}{
		{"all up at start: list order", func() {}, "abc", 0, 0},
		{"one failed check of a is not enough", func() { s.report(s.nodes[0], down) }, "abc", 0, 0},
		{"a good check resets the count", func() { s.report(s.nodes[0], nil); s.report(s.nodes[0], down) }, "abc", 0, 0},
		{"the second failure in a row takes a out", func() { s.report(s.nodes[0], down) }, "bca", 1, 0},
		{"more failures log nothing more", func() {
			for range 10 {
				s.report(s.nodes[0], down)
			}
		}, "bca", 1, 0},
		{"b cannot be connected to: out at once", func() { s.fail(s.nodes[1], down) }, "cab", 2, 0},
		{"one good check of a is not enough", func() { s.report(s.nodes[0], nil) }, "cab", 2, 0},
		{"the second brings a back, first again", func() { s.report(s.nodes[0], nil) }, "acb", 2, 1},
		{"b back after two good checks", func() { s.report(s.nodes[1], nil); s.report(s.nodes[1], nil) }, "abc", 2, 2},
		{"good checks of a core that is up log nothing", func() { s.report(s.nodes[2], nil); s.report(s.nodes[2], nil) }, "abc", 2, 2},
		{"a check answered draining takes a out at once", func() { s.report(s.nodes[0], fmt.Errorf("OPTIONS: 503: %w", errCoreDraining)) }, "bca", 3, 2},
		{"a draining core comes back like any other", func() { s.report(s.nodes[0], nil); s.report(s.nodes[0], nil) }, "abc", 3, 3},
	}
	for _, st := range steps {
		st.do()
		if got := orderOf(s); got != st.order {
			t.Fatalf("%s: order %s, want %s", st.name, got, st.order)
		}
		if w, i := logs.counts(); w != st.warn || i != st.info {
			t.Fatalf("%s: %d WARN and %d INFO records, want %d and %d", st.name, w, i, st.warn, st.info)
		}
	}
	st := s.status()
	if len(st) != 3 || st[0].URL != "https://a:8443" || st[0].MRA != "a:5091" || !st[0].Up || st[2].Passed != 2 {
		t.Errorf("status = %+v", st)
	}
}

// In-dialog requests go to the core their Route names, by its configured
// or resolved MRA address; a Route naming anything else names no core.
func TestCoreSetByRoute(t *testing.T) {
	cfg := Config{Cores: []CoreNode{{URL: "https://cucm-pub.example.com:8443"}, {URL: "https://10.0.0.2:8443", MRA: "10.0.0.2:6091"},
		{URL: "https://[2001:db8::3]:8443"}}}.WithDefaults()
	s := newCoreSet(cfg, nil, slog.New(slog.DiscardHandler))
	s.nodes[0].addrs = []string{"192.0.2.1:5091"}
	for _, tc := range []struct {
		uri  sipURI
		want int
	}{
		{sipURI{"CUCM-PUB.example.com", 5091}, 0},
		{sipURI{"192.0.2.1", 5091}, 0},
		{sipURI{"10.0.0.2", 6091}, 1},
		{sipURI{"10.0.0.2", 5091}, -1},
		{sipURI{"10.0.0.2", 0}, -1}, // 5061
		{sipURI{"evil.example.com", 5091}, -1},
		{sipURI{"[2001:db8::3]", 5091}, 2},
	} {
		got := s.byRoute(tc.uri)
		if (tc.want < 0 && got != nil) || (tc.want >= 0 && got != s.nodes[tc.want]) {
			t.Errorf("byRoute(%v) = %v, want core %d", tc.uri, got, tc.want)
		}
	}
}

// HTTPS to the cores goes to the first core that is up; one that cannot be
// connected to is taken out and the request, body and all, goes to the
// next; a core that was reached and failed is not retried elsewhere (a
// token grant must not be applied twice).
func TestCoreTransportFailsOver(t *testing.T) {
	var hits atomic.Int32
	var gotBody, gotPath string
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		gotBody, gotPath = string(b), r.URL.Path
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(good.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	// A core that accepts and hangs up: reached, so not retried.
	hangup, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hangup.Close() })
	go func() {
		for {
			c, err := hangup.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	build := func(urls ...string) (*coreSet, *http.Client) {
		var cores []CoreNode
		for _, u := range urls {
			cores = append(cores, CoreNode{URL: u, MRA: "127.0.0.1:5091", ConfigURL: u + "/cfg"})
		}
		cfg := Config{Cores: cores, CoreDownAfter: 2, CoreUpAfter: 2}
		s := newCoreSet(cfg, func(CoreNode) http.RoundTripper { return &http.Transport{} }, slog.New(slog.DiscardHandler))
		return s, &http.Client{Transport: &coreTransport{cores: s}}
	}
	post := func(c *http.Client, host, path string) (*http.Response, error) {
		body := []byte("grant_type=refresh_token")
		req, _ := http.NewRequest(http.MethodPost, "https://"+host+path, bytes.NewReader(body))
		return c.Do(req) // NewRequest sets GetBody for a bytes.Reader
	}

	s, client := build(refused, good.URL)
	res, err := post(client, coreHTTPSHost, "/oauth2/token")
	if err != nil {
		t.Fatalf("through a refusing first core: %v", err)
	}
	res.Body.Close()
	if hits.Load() != 1 || gotBody != "grant_type=refresh_token" || gotPath != "/oauth2/token" {
		t.Fatalf("second core got %d requests, body %q, path %q", hits.Load(), gotBody, gotPath)
	}
	if got := orderOf2(s); got != "10" {
		t.Fatalf("after the first core refused, order = %s, want the second first", got)
	}
	// The config service is the node's config_url, path appended.
	res, err = post(client, coreConfigHost, "/SEP001.cnf.xml")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if gotPath != "/cfg/SEP001.cnf.xml" {
		t.Errorf("config request reached %q, want /cfg/SEP001.cnf.xml", gotPath)
	}
	if _, err := post(client, "core.example.com", "/x"); err == nil {
		t.Error("a request for a host that is no core service was sent")
	}

	hits.Store(0)
	s, client = build("http://"+hangup.Addr().String(), good.URL)
	if _, err := post(client, coreHTTPSHost, "/oauth2/token"); err == nil {
		t.Fatal("a core that hung up on the request: no error")
	}
	if hits.Load() != 0 || orderOf2(s) != "01" {
		t.Fatalf("a request a core received was sent again to the next (%d) or the core taken out (%s)", hits.Load(), orderOf2(s))
	}
}

func orderOf2(s *coreSet) string {
	var b strings.Builder
	for _, c := range s.order() {
		b.WriteByte(byte('0' + c.index))
	}
	return b.String()
}

// TURN never relays to any core of the list (edge/relay/policy.go): every
// node's HTTPS, config and MRA addresses are the cores' addresses.
func TestCoreAddrsCoverEveryCore(t *testing.T) {
	cfg := Config{Cores: []CoreNode{{URL: "https://10.77.3.11:8443"}, {URL: "https://10.77.3.12:9443", MRA: "10.77.3.22:6091", ConfigURL: "https://10.77.3.32:7000"}}}.WithDefaults()
	got, errs := coreAddrs(context.Background(), cfg)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	var s []string
	for _, a := range got {
		s = append(s, a.String())
	}
	want := []string{"10.77.3.11:8443", "10.77.3.11:6971", "10.77.3.11:5091", "10.77.3.12:9443", "10.77.3.32:7000", "10.77.3.22:6091"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("core addresses = %v, want %v", s, want)
	}
}

// A draining 503 may trigger a check out of schedule at most once per
// interval and core.
func TestCoreSetMayRecheck(t *testing.T) {
	s := threeCores(t, &logCount{})
	now := time.Now()
	if !s.mayRecheck(s.nodes[0], now, time.Second) {
		t.Fatal("the first recheck of a was refused")
	}
	if s.mayRecheck(s.nodes[0], now.Add(500*time.Millisecond), time.Second) {
		t.Fatal("a second recheck of a within the interval was allowed")
	}
	if !s.mayRecheck(s.nodes[1], now.Add(500*time.Millisecond), time.Second) {
		t.Fatal("a recheck of b was refused because of a's")
	}
	if !s.mayRecheck(s.nodes[0], now.Add(time.Second), time.Second) {
		t.Fatal("a recheck of a after the interval was refused")
	}
}
