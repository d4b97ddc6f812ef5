package edge

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/edgeway/edgeway/internal/traversal"
)

func TestConfigFile(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/SEP001122334401.cnf.xml", true},
		{"/CSF_demo-1.cnf.xml", true},
		{"/phone-edge-trust.pem", true},
		{"/" + strings.Repeat("a", 64) + ".cnf.xml", true},
		{"/" + strings.Repeat("a", 65) + ".cnf.xml", false},
		{"/.cnf.xml", false},
		{"/a/b.cnf.xml", false},
		{"/../x.cnf.xml", false},
		{"/x.cnf.xml/", false},
		{"/x.y.cnf.xml", false},
		{"/phone-edge-trust.pem/", false},
		{"/tomcat-trust.pem", false},
		{"/SEP1.cnf.xml\n", false},
	} {
		if _, ok := configFile(tc.path); ok != tc.ok {
			t.Errorf("configFile(%q) = %v, want %v", tc.path, ok, tc.ok)
		}
	}
}

// seen is what the fake core received.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *seen) add(r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
}

func (s *seen) take() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.reqs
	s.reqs = nil
	return out
}

// testProxy is an edge whose core (both its HTTPS and its config server)
// is one plain-HTTP fake that records what reaches it.
func testProxy(t testing.TB) (*httptest.Server, *seen) {
	t.Helper()
	return testProxyLog(t, slog.New(slog.DiscardHandler))
}

// testProxyLog is testProxy with the edge logging to log.
func testProxyLog(t testing.TB, log *slog.Logger) (*httptest.Server, *seen) {
	t.Helper()
	got := &seen{}
	core := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		body, _ := io.ReadAll(r.Body)
		r2.Body = io.NopCloser(strings.NewReader(string(body)))
		got.add(r2)
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, "<device/>")
	}))
	t.Cleanup(core.Close)
	cu, _ := url.Parse(core.URL)
	cfg := Config{Node: "expe-1", AdvertisedHost: "expe-1.example.com", PublicURL: "https://expe-1.example.com:8443",
		CoreURL: core.URL, CoreConfigURL: core.URL + "/cfg/"}
	s := &Server{cfg: cfg, log: log, coreURL: cu, http: &http.Client{Transport: core.Client().Transport}}
	s.activationBudget = testBudget(t, cfg)
	s.coreConfigURL, _ = url.Parse(cfg.CoreConfigURL)
	edge := httptest.NewServer(s.httpHandler(5061))
	t.Cleanup(edge.Close)
	return edge, got
}

func rawGet(t *testing.T, addr, method, target string, headers ...string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := method + " " + target + " HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n" + strings.Join(headers, "") + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// S-16 through the edge: the two config paths are forwarded to the core's
// config server with the edge's own traversal headers; the phone's copies
// of those headers, its query and its body are dropped.
func TestConfigProxyForwards(t *testing.T) {
	edge, got := testProxy(t)
	for _, file := range []string{"/SEP001122334401.cnf.xml", "/phone-edge-trust.pem"} {
		req, _ := http.NewRequest(http.MethodGet, edge.URL+file+"?x=1", strings.NewReader("body"))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set(traversal.EdgeSIPHeader, "evil.example.com:5061")
		req.Header.Set(traversal.EdgeURLHeader, "https://evil.example.com")
		req.Header.Set(traversal.ClientAddressHeader, "192.0.2.66")
		req.Header.Set("X-Forwarded-For", "192.0.2.67")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: HTTP %d", file, res.StatusCode)
		}
		reqs := got.take()
		if len(reqs) != 1 {
			t.Fatalf("%s: core saw %d requests", file, len(reqs))
		}
		in := reqs[0]
		body, _ := io.ReadAll(in.Body)
		for _, ck := range []struct{ what, got, want string }{
			{"method", in.Method, http.MethodGet},
			{"path", in.URL.Path, "/cfg" + file},
			{"query", in.URL.RawQuery, ""},
			{"body", string(body), ""},
			{"Authorization", in.Header.Get("Authorization"), "Bearer tok"},
			{traversal.EdgeSIPHeader, strings.Join(in.Header.Values(traversal.EdgeSIPHeader), ","), "expe-1.example.com:5061"},
			{traversal.EdgeURLHeader, strings.Join(in.Header.Values(traversal.EdgeURLHeader), ","), "https://expe-1.example.com:8443"},
			{traversal.ClientAddressHeader, strings.Join(in.Header.Values(traversal.ClientAddressHeader), ","), "127.0.0.1"},
			{"X-Forwarded-For", in.Header.Get("X-Forwarded-For"), ""},
		} {
			if ck.got != ck.want {
				t.Errorf("%s: core got %s %q, want %q", file, ck.what, ck.got, ck.want)
			}
		}
	}

	// The OAuth endpoints go to the core's HTTPS, without the config headers.
	res, err := http.Get(edge.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	reqs := got.take()
	if len(reqs) != 1 || reqs[0].URL.Path != "/.well-known/jwks.json" || reqs[0].Header.Get(traversal.EdgeSIPHeader) != "" {
		t.Errorf("JWKS request reached the core as %+v", reqs)
	}
}

// Everything outside the allow-list is 404 at the edge and never reaches
// the core: dot segments, nested and encoded paths are not cleaned or
// decoded into an allowed file.
func TestConfigProxyAllowList(t *testing.T) {
	edge, got := testProxy(t)
	addr := strings.TrimPrefix(edge.URL, "http://")
	for _, tc := range []struct {
		method, target string
		want           int
	}{
		{"GET", "/../phone-edge-trust.pem", 404},
		{"GET", "/./SEP1.cnf.xml", 404},
		{"GET", "/../x.cnf.xml", 404},
		{"GET", "/a/../SEP1.cnf.xml", 404},
		{"GET", "//SEP1.cnf.xml", 404},
		{"GET", "/x/SEP1.cnf.xml", 404},
		{"GET", "/SEP%2F1.cnf.xml", 404},
		{"GET", "/x%2F..%2Fphone-edge-trust.pem", 404},
		{"GET", "/%53EP1.cnf.xml", 404},
		{"GET", "/phone-edge-trust.pem/", 404},
		{"GET", "/SEP1.cnf.xml.bak", 404},
		{"GET", "/tomcat-trust.pem", 404},
		{"GET", "/api/v1/registrations", 404},
		{"GET", "/", 404},
		{"POST", "/SEP1.cnf.xml", 405},
		{"HEAD", "/SEP1.cnf.xml", 405},
		{"PUT", "/phone-edge-trust.pem", 405},
		{"GET", "http://edge/SEP1.cnf.xml/../../api", 404},
	} {
		if code := rawGet(t, addr, tc.method, tc.target); code != tc.want {
			t.Errorf("%s %s: HTTP %d, want %d", tc.method, tc.target, code, tc.want)
		}
	}
	if reqs := got.take(); len(reqs) != 0 {
		for _, r := range reqs {
			t.Errorf("reached the core: %s %s", r.Method, r.URL)
		}
	}
}
