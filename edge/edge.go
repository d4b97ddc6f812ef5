package edge

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edgeway/edgeway/internal/certbind"
	"github.com/edgeway/edgeway/internal/httpx"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/throttle"
	"github.com/edgeway/edgeway/internal/token"
	"github.com/edgeway/edgeway/internal/traversal"
	"github.com/edgeway/edgeway/mtls"
)

// Server is one edge node. Build it with New and Run it, or Serve it on
// listeners you made.
type Server struct {
	cfg Config
	log *slog.Logger
	// public is the certificate phones see: files (*mtls.KeyPair) or
	// ACME (*acmeCerts, edge/acme.go).
	public mtls.CertSource
	client *mtls.KeyPair
	trust  *mtls.TrustStore
	// phoneTrust verifies the client certificates phones present
	// (tls.phone_client_ca, edge/bound.go); nil: any is accepted.
	phoneTrust *mtls.TrustStore
	// drainTimeout and logLevel are the reloadable fields (edge/reload.go)
	// as the last reload set them; zero/nil: cfg's.
	drainTimeout atomic.Int64
	logLevel     atomic.Pointer[string]
	// cores is the ordered core list with its health (edge/cores.go).
	cores *coreSet
	// coreURL and coreConfigURL are the bases of the requests the edge
	// makes to the cores' HTTPS and config (the TFTP role, 6971) servers:
	// service names that http's transport (coreTransport) sends to the
	// best core of the list.
	coreURL       *url.URL
	coreConfigURL *url.URL
	http          *http.Client
	jwks          *token.RemoteJWKS
	ver           *token.Verifier

	// TURN (edge/turn.go): the shared credential secret (nil: TURN off)
	// and the server Serve runs.
	turnSecret []byte
	turn       atomic.Pointer[TURN]
	sipFront   atomic.Pointer[SIPFront]
	// draining: a drain has begun (edge/drain.go StartDrain); the SIP
	// front and the TURN server read it.
	draining atomic.Bool

	// activationBudget counts the activation grants the core refused, from
	// every source (edge/budget.go, issue 9).
	activationBudget *throttle.Budget

	// metrics: edge/metrics.go.
	metrics *metrics.Edge
	// rids makes the request IDs of phones' HTTPS requests (internal/reqid).
	rids reqid.Source
}

// New checks the configuration and loads the certificates.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("edge: config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log.With("tier", "edge", "node", cfg.Node), metrics: metrics.NewEdge()}
	s.metrics.Reg.MustRegister(edgeCollector{s}, certCollector{s})
	var err error
	if cfg.TLS.ACME.Enabled() {
		if s.public, err = newACMECerts(cfg.TLS.ACME, s.log.With("svc", "acme")); err != nil {
			return nil, fmt.Errorf("edge: public certificate: %w", err)
		}
	} else if s.public, err = mtls.NewKeyPair(cfg.TLS.PublicCert, cfg.TLS.PublicKey); err != nil {
		return nil, fmt.Errorf("edge: public certificate: %w", err)
	}
	if s.client, err = mtls.NewKeyPair(cfg.TLS.MTLSCert, cfg.TLS.MTLSKey); err != nil {
		return nil, fmt.Errorf("edge: mTLS client certificate: %w", err)
	}
	if s.trust, err = mtls.NewTrustStore(cfg.TLS.CoreTrust); err != nil {
		return nil, fmt.Errorf("edge: core trust: %w", err)
	}
	if cfg.TLS.PhoneClientCA != "" {
		if s.phoneTrust, err = mtls.NewTrustStore(cfg.TLS.PhoneClientCA); err != nil {
			return nil, fmt.Errorf("edge: phone_client_ca: %w", err)
		}
	}
	if s.turnSecret, err = loadTURNSecret(cfg, s.log); err != nil {
		return nil, err
	}
	if s.activationBudget, err = throttle.NewBudget(throttle.BudgetConfig{Rate: cfg.ActivationFailures.Rate, Burst: cfg.ActivationFailures.Burst}); err != nil {
		return nil, fmt.Errorf("edge: activation_failures: %w", err)
	}
	s.cores = newCoreSet(cfg, func(n CoreNode) http.RoundTripper {
		return traversal.HTTPClient(s.client, s.trust, n.ServerName).Transport
	}, s.log.With("svc", "cores"))
	s.coreURL = &url.URL{Scheme: "https", Host: coreHTTPSHost}
	s.coreConfigURL = &url.URL{Scheme: "https", Host: coreConfigHost}
	s.http = &http.Client{Transport: &coreTransport{cores: s.cores}, Timeout: 30 * time.Second}
	s.jwks = &token.RemoteJWKS{URL: s.coreURL.JoinPath("/.well-known/jwks.json").String(), Client: s.http}
	// RFC 9068 transition: tokens of the format before typing (typ JWT,
	// issued by a core of the release before) pass the pre-check only if
	// issued before this edge started.
	if s.ver, err = token.NewVerifier(s.jwks, token.VerifierConfig{Issuer: cfg.TokenIssuer, Audience: cfg.TokenAudience, LegacyBefore: time.Now()}); err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the effective (defaulted) configuration.
func (s *Server) Config() Config { return s.live(s.cfg) }

// Listeners are the plain TCP listeners an edge serves on.
type Listeners struct {
	HTTPS net.Listener // public HTTPS (onboarding, refresh)
	SIP   net.Listener // public SIP/TLS
	// TURN: the relay's sockets (edge/turn.go); served when
	// turn.secret_file is set, left zero when it is not.
	TURN TURNListeners
}

// Run listens on the configured addresses and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	h, err := lc.Listen(ctx, "tcp", s.cfg.HTTPSAddr)
	if err != nil {
		return fmt.Errorf("edge: https listener: %w", err)
	}
	p, err := lc.Listen(ctx, "tcp", s.cfg.SIPAddr)
	if err != nil {
		h.Close()
		return fmt.Errorf("edge: SIP listener: %w", err)
	}
	var t TURNListeners
	if s.turnSecret != nil {
		if t, err = s.ListenTURN(ctx); err != nil {
			h.Close()
			p.Close()
			return err
		}
	}
	return s.Serve(ctx, Listeners{HTTPS: h, SIP: p, TURN: t})
}

// Serve serves the listeners until ctx ends.
func (s *Server) Serve(ctx context.Context, ls Listeners) error {
	if a, ok := s.public.(*acmeCerts); ok {
		// The certificate first (from storage, or from the CA), renewed
		// in the background until Serve returns.
		if err := a.start(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while getting it
			}
			return err
		}
		defer a.stop()
	}
	turnSrv, err := s.startTURN(ctx, ls)
	if err != nil {
		return err
	}
	defer s.stopTURN(turnSrv)

	// Reaching the core reports our certificate names to it (S-12 "Find")
	// and warms the JWKS cache. Until it works (the core is not up yet, or
	// has not been told to trust or admit this edge) keep trying.
	linkDone := make(chan struct{})
	go func() {
		defer close(linkDone)
		s.keepCoreLink(ctx)
	}()
	defer func() { <-linkDone }()

	lo := mtls.ListenerOptions{
		HandshakeTimeout:  s.cfg.HandshakeTimeout,
		MaxConnsPerSource: s.cfg.MaxConnsPerSource,
		OnReject: func(remote net.Addr, _ []string, err error) {
			s.log.Debug("phone TLS handshake failed", "remote", remote, "err", err)
		},
	}
	// Caps per listener and per source, and for SIP a deadline to
	// register (issue 9 item 11): see Config.MaxConns.
	httpsOpts, sipOpts := lo, lo
	httpsOpts.MaxConns = s.cfg.HTTPSMaxConns
	sipOpts.MaxConns = s.cfg.MaxConns
	sipOpts.EstablishTimeout = s.cfg.SIPUnregisteredTimeout
	// Both ask phones for a client certificate, for bound tokens (RFC 8705,
	// edge/bound.go).
	httpsLn := mtls.NewListener(ls.HTTPS, s.phoneServerConfig(), httpsOpts)
	sipLn := mtls.NewListener(ls.SIP, s.phoneServerConfig(), sipOpts)

	_, portStr, _ := net.SplitHostPort(ls.SIP.Addr().String())
	sipPort, _ := strconv.Atoi(portStr)
	// The SIP hop to the core's MRA port negotiates TLS 1.2: there the
	// client's certificate is judged inside the handshake, so an edge the
	// core does not (or no longer) admit (S-12) learns it at once and
	// answers phones 503, instead of writing a request into a connection
	// the core has already refused, as TLS 1.3 would let it do.
	coreTLS := mtls.ClientConfigAnyOf(s.client, s.trust, s.serverNames())
	coreTLS.MaxVersion = tls.VersionTLS12
	ua, err := sipx.NewUA("Edgeway edge", s.cfg.AdvertisedHost, s.cfg.SIPIdleTimeout, s.log.With("sip", "front"), coreTLS)
	if err != nil {
		return fmt.Errorf("edge: SIP user agent: %w", err)
	}
	flowKey := make([]byte, 32)
	if _, err := rand.Read(flowKey); err != nil {
		return err
	}
	front, err := newSIPFront(s.cfg, ua, s.ver, sipPort, flowKey, s.cores, s.log.With("sip", "front"))
	if err != nil {
		ua.Close()
		return err
	}
	s.cores.resolve(ctx)
	front.setCoreAddrs(s.cores.allAddrs())
	front.m = s.metrics
	front.draining = &s.draining
	s.sipFront.Store(front)

	hs := httpx.NewServer(s.httpHandler(sipPort), s.log)
	s.log.Info("edge listening", "https", ls.HTTPS.Addr(), "sip", ls.SIP.Addr(), "cores", s.cfg.CoreList())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(httpsLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("edge: https: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		front.keepAlive(gctx, s.cfg.SIPKeepAlive)
		return nil
	})
	g.Go(func() error {
		front.checkCores(gctx, s.cfg.CoreHealthInterval, s.cfg.CoreHealthTimeout)
		return nil
	})
	if turnSrv != nil {
		// TURN credentials die with their token family (edge/revocations.go, edge/relay/revoke.go).
		w := &revocationWatcher{client: s.http, url: s.coreURL.JoinPath(RevokedFamiliesPath), every: s.cfg.TURN.RevocationPoll,
			apply: turnSrv.RevokeFamilies, log: s.log.With("turn", "revocations")}
		g.Go(func() error {
			w.run(gctx)
			return nil
		})
	}
	g.Go(func() error {
		err := front.srv.ServeTLS(sipLn)
		if gctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("edge: SIP: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		// Idle pooled connections to the core would otherwise hold up the
		// core's own graceful shutdown when both stop together.
		s.http.CloseIdleConnections()
		sipLn.Close()
		front.Close()
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// MaxOAuthBody bounds the body of a request to the edge's OAuth endpoints
// (/oauth2/token, /oauth2/revoke). A token request is a few hundred bytes;
// the core's own limit is smaller still (8 KiB).
const MaxOAuthBody = 16 << 10

// httpHandler is the public HTTPS surface: an allow-list of paths, each
// forwarded to the core over mutual TLS — the OAuth endpoints to its HTTPS
// port, the config files (S-2, S-4, S-16) to its config server. Paths are
// matched as sent, never cleaned or decoded into an allowed one.
func (s *Server) httpHandler(sipPort int) http.Handler {
	unavailable := func(w http.ResponseWriter, r *http.Request, err error) {
		s.log.Warn("core unreachable for HTTPS request", "path", r.URL.Path, "err", err, reqid.Attr, reqid.FromRequest(r))
		httpx.WriteOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the core cannot be reached; try again", 5)
	}
	// Only the edge says where the phone is and where the edge is; drop
	// what the phone wrote.
	traversalHeaders := func(pr *httputil.ProxyRequest) {
		for _, h := range []string{traversal.ClientAddressHeader, traversal.EdgeSIPHeader, traversal.EdgeURLHeader, "X-Forwarded-For"} {
			pr.Out.Header.Del(h)
		}
		if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
			pr.Out.Header.Set(traversal.ClientAddressHeader, ip)
		}
		// The edge's request ID, never the phone's (reqid.HTTP removed
		// any the phone wrote): the core logs the request under it.
		pr.Out.Header.Set(reqid.Header, reqid.FromRequest(pr.In))
		// The phone's certificate as this connection showed it, never a
		// thumbprint the phone wrote (RFC 8705, edge/bound.go).
		certbind.SetHTTP(pr.Out.Header, phoneThumbprint(pr.In))
	}
	// fromCore is what every answer of the core goes through on its way
	// to the phone: the phone sees the edge's X-Request-ID once (the
	// core's, the same ID, is dropped), and a refusal is logged at DEBUG
	// with the rid the core logged it under; then next, when set.
	fromCore := func(next func(*http.Response) error) func(*http.Response) error {
		return func(res *http.Response) error {
			res.Header.Del(reqid.ResponseHeader)
			if res.StatusCode >= 400 {
				s.log.Debug("HTTPS request refused by core", "path", res.Request.URL.Path, "status", res.StatusCode,
					reqid.Attr, reqid.From(res.Request.Context()))
			}
			if next == nil {
				return nil
			}
			return next(res)
		}
	}
	oauth, activation := s.tokenProxies(traversalHeaders, fromCore, unavailable)
	config := &httputil.ReverseProxy{
		Transport: s.http.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			file, _ := configFile(pr.In.URL.Path)
			u := *s.coreConfigURL // (url.JoinPath drops the leading slash of an empty base path)
			u.Path, u.RawPath, u.RawQuery = strings.TrimSuffix(u.Path, "/")+"/"+file, "", ""
			pr.Out.URL = &u
			pr.Out.Host = s.coreConfigURL.Host
			pr.Out.Body, pr.Out.ContentLength = http.NoBody, 0
			traversalHeaders(pr)
			pr.Out.Header.Set(traversal.EdgeSIPHeader, net.JoinHostPort(s.cfg.AdvertisedHost, strconv.Itoa(sipPort)))
			pr.Out.Header.Set(traversal.EdgeURLHeader, s.cfg.PublicURL)
		},
		ModifyResponse: fromCore(nil),
		ErrorHandler:   unavailable,
	}
	// The whole form is read here before the core is contacted: a body
	// over the limit is the phone's fault and gets 413 from the edge, not a
	// proxy failure half way through the upload (issue 9 item 14).
	limited := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := httpx.BufferBody(w, r, MaxOAuthBody); err != nil {
				status, desc := http.StatusBadRequest, "the request body could not be read"
				if httpx.TooLarge(err) {
					status, desc = http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", MaxOAuthBody)
				}
				s.log.Debug("OAuth request body refused", "path", r.URL.Path, "status", status, "err", err, reqid.Attr, reqid.FromRequest(r))
				httpx.WriteOAuthError(w, status, "invalid_request", desc, 0)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("POST /oauth2/token", limited(s.tokenHandler(s.activationBudget, activation, oauth)))
	mux.Handle("POST /oauth2/revoke", limited(noCredentials(oauth)))
	mux.Handle("POST /oauth2/device_authorization", limited(oauth)) // RFC 8628 §3.1
	mux.Handle("GET /.well-known/jwks.json", limited(oauth))
	// Every request gets the edge's request ID first (issue 12 §2).
	return reqid.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Exactly the path the phone sent: no dot segments, no encoding,
		// no absolute form — the mux would otherwise clean or redirect.
		p := r.URL.Path
		if r.URL.RawPath != "" || strings.Contains(r.URL.EscapedPath(), "%") || !strings.HasPrefix(r.RequestURI, "/") || path.Clean(p) != p {
			http.NotFound(w, r)
			return
		}
		if _, ok := configFile(p); ok {
			if r.Method != http.MethodGet {
				w.Header().Set("Allow", http.MethodGet)
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			config.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}), &s.rids, nil)
}

// configFile reports whether p is one of the config download files a phone
// may fetch through the edge — /<device>.cnf.xml (device names of letters,
// digits, '-' and '_', at most 64) or /phone-edge-trust.pem — and returns
// it without the leading slash.
func configFile(p string) (string, bool) {
	if p == "/phone-edge-trust.pem" {
		return p[1:], true
	}
	name, ok := strings.CutSuffix(strings.TrimPrefix(p, "/"), ".cnf.xml")
	if !ok || !strings.HasPrefix(p, "/") || name == "" || len(name) > 64 {
		return "", false
	}
	for _, c := range name {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return p[1:], true
}

// keepCoreLink fetches the cores' keys (from the first core that answers,
// edge/cores.go; the keys are the cluster's) now and again: every CoreRetry
// while it fails, hourly once it works. Each attempt is a handshake that
// shows a core this edge's certificate names (S-12 "Find"), as every
// health check does on every core's MRA port.
func (s *Server) keepCoreLink(ctx context.Context) {
	failing := false
	for {
		err := s.jwks.Refresh(ctx)
		switch {
		case err != nil && !failing:
			s.log.Warn("no core reachable over mTLS for keys; retrying", "every", s.cfg.CoreRetry, "err", err)
		case err == nil && failing:
			s.log.Info("core reachable over mTLS for keys")
		}
		failing = err != nil
		wait := time.Hour
		if failing {
			wait = s.cfg.CoreRetry
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// serverNames are the names the cores' certificates are verified for,
// each once.
func (s *Server) serverNames() []string {
	var out []string
	for _, n := range s.cfg.CoreList() {
		if !slices.Contains(out, n.ServerName) {
			out = append(out, n.ServerName)
		}
	}
	return out
}

// resolveAddrs turns host:port into the "ip:port" strings a connection's
// remote address shows.
func resolveAddrs(ctx context.Context, hostport string) []string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), port)}
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.IP.String(), port))
	}
	return out
}
