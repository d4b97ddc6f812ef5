package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Cores. The edge serves through an ordered list of core nodes, as an
// Expressway-C follows Unified CM's Call Manager Group: every node is
// health-checked (a SIP OPTIONS over its mutual-TLS MRA connection, which
// also keeps a connection open to every node, so each can reach this
// edge's phones: core/proxy), and new SIP requests and every HTTPS request
// go to the first node that is up. A node that fails core_down_after
// checks in a row is out; one that answers a check 503 "draining" (RFC
// 3326 Reason, sent by a core whose drain began, issue 12 §2) is out at
// once, and a draining 503 to a phone's request triggers such a check
// at once; one that cannot even be connected to by a request is out at
// once and the request goes on to the next node; a node
// that is out comes back after core_up_after good checks, and is then
// used again in its place in the order. Requests inside a dialog go to the
// node whose Record-Route they carry (RFC 3261 §16.12), which holds the
// dialog.

// coreNode is one core of the list.
type coreNode struct {
	index int
	cfg   CoreNode
	// host and port of cfg.MRA, and its addresses as "ip:port" (what a
	// connection's remote address shows), set before serving and read
	// only after.
	host  string
	port  int
	addrs []string
	// https and config are the node's base URLs; rt reaches them over
	// mutual TLS verifying the node's server name.
	https, config *url.URL
	rt            http.RoundTripper

	// Health, guarded by coreSet.mu.
	up         bool
	fails, oks int
	passed     uint64 // health checks answered since start
	// rechecked is when a draining 503 last triggered a check out of
	// schedule (edge/corecheck.go recheckIfDraining).
	rechecked time.Time
}

// coreSet is the ordered list and its health.
type coreSet struct {
	nodes              []*coreNode
	downAfter, upAfter int
	log                *slog.Logger

	mu sync.Mutex // guards every node's health fields

	// probes shares one connection attempt to a node among the requests
	// (and the check) that want it at once.
	probes singleflight.Group
}

// newCoreSet builds the list from cfg (defaulted); transport, when set,
// gives each node's mutual-TLS HTTPS transport. Every node starts up: the
// first check follows at once.
func newCoreSet(cfg Config, transport func(CoreNode) http.RoundTripper, log *slog.Logger) *coreSet {
	s := &coreSet{downAfter: max(cfg.CoreDownAfter, 1), upAfter: max(cfg.CoreUpAfter, 1), log: log}
	for i, n := range cfg.CoreList() {
		c := &coreNode{index: i, cfg: n, up: true}
		c.host, c.port = splitHostPort(n.MRA)
		c.https, _ = url.Parse(n.URL)
		c.config, _ = url.Parse(n.ConfigURL)
		if transport != nil {
			c.rt = transport(n)
		}
		s.nodes = append(s.nodes, c)
	}
	return s
}

func splitHostPort(hostport string) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// resolve looks up every node's MRA addresses; before serving.
func (s *coreSet) resolve(ctx context.Context) {
	for _, c := range s.nodes {
		c.addrs = resolveAddrs(ctx, c.cfg.MRA)
	}
}

// allAddrs is every node's MRA addresses.
func (s *coreSet) allAddrs() []string {
	var out []string
	for _, c := range s.nodes {
		out = append(out, c.addrs...)
	}
	return out
}

// order is the nodes to try, best first: those up in list order, then
// those out, in list order (a last resort: their checks may lag).
func (s *coreSet) order() []*coreNode {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*coreNode, 0, len(s.nodes))
	for _, c := range s.nodes {
		if c.up {
			out = append(out, c)
		}
	}
	for _, c := range s.nodes {
		if !c.up {
			out = append(out, c)
		}
	}
	return out
}

// report records the result of a health check of c.
func (s *coreSet) report(c *coreNode, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		c.fails = 0
		c.oks++
		c.passed++
		if !c.up && c.oks >= s.upAfter {
			c.up = true
			s.log.Info("core up: in use again in its place in the list", "core", c.cfg.URL, "mra", c.cfg.MRA, "position", c.index+1)
		}
		return
	}
	c.oks = 0
	c.fails++
	if c.up && errors.Is(err, errCoreDraining) {
		c.up = false
		s.log.Warn("core down: draining; failing over to the next core in the list", "core", c.cfg.URL, "mra", c.cfg.MRA, "position", c.index+1)
		return
	}
	if c.up && c.fails >= s.downAfter {
		c.up = false
		s.log.Warn("core down: failing over to the next core in the list", "core", c.cfg.URL, "mra", c.cfg.MRA, "position", c.index+1, "failed_checks", c.fails, "err", err)
	}
}

// mayRecheck reports whether a check of c out of schedule may run now
// (at most one per every), and if so records it.
func (s *coreSet) mayRecheck(c *coreNode, now time.Time, every time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.rechecked.IsZero() && now.Sub(c.rechecked) < every {
		return false
	}
	c.rechecked = now
	return true
}

// fail takes c out at once: a request could not open a connection to it.
func (s *coreSet) fail(c *coreNode, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.oks = 0
	c.fails++
	if c.up {
		c.up = false
		s.log.Warn("core down: cannot connect; failing over to the next core in the list", "core", c.cfg.URL, "mra", c.cfg.MRA, "position", c.index+1, "err", err)
	}
}

// byRoute is the node a Route URI names by its MRA host and port (as
// configured or as resolved), nil for none: a request inside a dialog
// goes to the node that holds the dialog. Nothing a phone writes ever
// sends a request anywhere but to a core of the list.
func (s *coreSet) byRoute(u sipURI) *coreNode {
	port := u.port
	if port == 0 {
		port = 5061
	}
	host := strings.TrimSuffix(strings.TrimPrefix(u.host, "["), "]") // SIP URIs bracket IPv6
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	for _, c := range s.nodes {
		if port == c.port && strings.EqualFold(host, c.host) {
			return c
		}
		for _, a := range c.addrs {
			if a == hp {
				return c
			}
		}
	}
	return nil
}

// sipURI is the host and port of a SIP URI.
type sipURI struct {
	host string
	port int
}

// CoreStatus is one core of the edge's list as its health checks see it.
type CoreStatus struct {
	URL string // the node's HTTPS base URL
	MRA string // its SIP MRA address
	Up  bool   // in use (checks pass, or not yet failed enough)
	// Passed is the number of health checks the node has answered since
	// the edge started: once it is 1, the node has seen this edge on a
	// connection (and can route calls to its phones).
	Passed uint64
	// Connected: the edge holds an MRA connection to the node now.
	Connected bool
}

// status is the list with each node's health, in list order.
func (s *coreSet) status() []CoreStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CoreStatus, len(s.nodes))
	for i, c := range s.nodes {
		out[i] = CoreStatus{URL: c.cfg.URL, MRA: c.cfg.MRA, Up: c.up, Passed: c.passed}
	}
	return out
}

// Cores is the edge's ordered core list with each node's health.
func (s *Server) Cores() []CoreStatus {
	st := s.cores.status()
	if f := s.SIP(); f != nil {
		for i, c := range s.cores.nodes {
			st[i].Connected = f.connectedTo(c)
		}
	}
	return st
}

// The HTTPS requests the edge makes to its cores (token proxy, config
// download, keys, revocations) name a service, not a node: these hosts.
// coreTransport sends each to the best node of the list, and on to the
// next when a node cannot be connected to. (.invalid never resolves,
// RFC 2606: a request that escaped would go nowhere.)
const (
	coreHTTPSHost  = "core.edgeway.invalid"
	coreConfigHost = "core-config.edgeway.invalid"
)

// coreTransport is the edge's HTTP transport to its cores.
type coreTransport struct{ cores *coreSet }

// RoundTrip sends req to the first node of the list that it can connect
// to. A request is sent on to the next node only when the connection could
// not be opened (nothing of it reached the node), so a token grant is never
// applied twice.
func (t *coreTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var base func(*coreNode) *url.URL
	switch req.URL.Host {
	case coreHTTPSHost:
		base = func(c *coreNode) *url.URL { return c.https }
	case coreConfigHost:
		base = func(c *coreNode) *url.URL { return c.config }
	default:
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("edge: %s is not a core service", req.URL.Host)
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	var errs []error
	for i, c := range t.cores.order() {
		b := base(c)
		out := req.Clone(req.Context())
		u := *req.URL
		u.Scheme, u.Host = b.Scheme, b.Host
		u.Path, u.RawPath = strings.TrimSuffix(b.Path, "/")+req.URL.Path, ""
		out.URL, out.Host = &u, b.Host
		if i > 0 && hasBody {
			if req.GetBody == nil {
				break
			}
			body, err := req.GetBody()
			if err != nil {
				break
			}
			out.Body = body
		}
		res, err := c.rt.RoundTrip(out)
		if err == nil {
			return res, nil
		}
		if !cannotConnect(err) {
			return nil, err
		}
		t.cores.fail(c, err)
		errs = append(errs, fmt.Errorf("core %s: %w", b.Host, err))
	}
	return nil, errors.Join(errs...)
}

// CloseIdleConnections closes every node's idle connections.
func (t *coreTransport) CloseIdleConnections() {
	for _, c := range t.cores.nodes {
		if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
			ci.CloseIdleConnections()
		}
	}
}

// cannotConnect reports whether err is a failure to open the connection
// (refused, unreachable, timed out dialling, unresolvable): nothing of the
// request was sent.
func cannotConnect(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
