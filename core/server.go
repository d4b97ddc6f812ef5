package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/edgeway/edgeway/activation"
	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/core/configfile"
	"github.com/edgeway/edgeway/core/lookups"
	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/core/proxy"
	"github.com/edgeway/edgeway/core/registrar"
	"github.com/edgeway/edgeway/core/webui"
	"github.com/edgeway/edgeway/internal/httpx"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
	"github.com/edgeway/edgeway/mtls"
)

// Server is one core node. Build it with New, then Run it (or Serve it on
// listeners you made). Its goroutines stop when the context passed to
// Serve is cancelled.
type Server struct {
	cfg  Config
	st   store.Store
	look *lookups.Cache // cached reads for the per-REGISTER path (core/lookups)
	// loc is the location service (core/registrar), set by Serve: the
	// bindings in memory, written to the store by group commit.
	loc *registrar.Location
	log *slog.Logger
	now func() time.Time
	// admin is the admin API (core/admin).
	admin *admin.API
	// ui is the web administration over the admin API (core/webui), at
	// /ui/ on the same HTTPS address.
	ui *webui.UI
	// auth is the OAuth authorization server (core/oauth): grants, keys,
	// revocation and the access-token check.
	auth *oauth.Server

	kp    *mtls.KeyPair
	trust *mtls.TrustStore
	// fileCfg is cfg as configured, before `admin node set` ports from
	// the store replace its SIP ports (core/listen.go): what a reload
	// compares a config file with.
	fileCfg Config
	// drainTimeout and logLevel are the reloadable fields (core/reload.go)
	// as the last reload set them; zero/nil: cfg's.
	drainTimeout atomic.Int64
	logLevel     atomic.Pointer[string]

	// gate admits edges (S-11, S-12) and owns the admitted MRA
	// connections.
	gate *admission.Gate

	// phone and mra are the two SIP listeners (core/registrar), set by
	// Serve; the proxy (core/proxy) routes calls across them.
	phone, mra *registrar.Port
	proxy      atomic.Pointer[proxy.Proxy]
	// sipGuard validates every SIP request and recovers handler panics on
	// both SIP ports (RFC 3261 §8.2, §16.3); built in New, so its
	// counters can be read at any time.
	sipGuard *sipx.Guard

	// sipOAuthMode is the cluster SIP OAuth mode as this node's SIP service
	// read it when it last (re)started: a change takes effect only at
	// `service restart callmanager` (S-14).
	sipOAuthMode atomic.Bool

	// phoneInFlight is the Phone OAuth port's request accounting, set by
	// Serve (tests read its gauges).
	phoneInFlight atomic.Pointer[sipx.InFlight]

	// metrics are this node's Prometheus metrics (internal/metrics), on a
	// registry of its own; the operations address serves them.
	metrics *metrics.Core
	// located is loc once Serve made it, for the bindings gauge, which
	// scrapes read from other goroutines.
	located atomic.Pointer[registrar.Location]

	// draining: a drain has begun (StartDrain): new calls and health
	// checks are answered 503 (core/proxy).
	draining atomic.Bool

	// deviceGrant tunes the device grant (WithDeviceGrant, RFC 8628).
	deviceGrant oauth.DeviceGrantConfig
}

// StartDrain makes this node answer new calls and edges' health-check
// OPTIONS 503 with Retry-After, so edges send new work to the next core
// of their list; dialogs and REGISTERs go on (issue 12 §2; the assembler,
// internal/node, closes the listeners). It cannot be undone.
func (s *Server) StartDrain() {
	if !s.draining.Swap(true) {
		s.log.Info("drain: answering new calls and health checks 503; dialogs and registrations go on")
	}
}

// Metrics are this node's Prometheus metrics.
func (s *Server) Metrics() *metrics.Core { return s.metrics }

// Ready reports whether this node can serve: its store answers (readiness
// for /readyz; issue 12 §2). The error says why not.
func (s *Server) Ready(ctx context.Context) error {
	if _, _, err := s.st.GetParam(ctx, ParamClusterSIPOAuthMode); err != nil {
		return fmt.Errorf("store unreachable: %w", err)
	}
	return nil
}

// PhoneInFlight is the Phone OAuth port's per-connection request
// accounting (issue 9 item 10); nil before Serve.
func (s *Server) PhoneInFlight() *sipx.InFlight { return s.phoneInFlight.Load() }

// Option adjusts a Server.
type Option func(*Server)

// WithClock injects the clock used for token expiry and codes (tests).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithDeviceGrant tunes the device grant (RFC 8628): its codes' lifetime
// and poll interval (tests shorten the interval). The verification URI is
// always the node's /ui/device.
func WithDeviceGrant(c oauth.DeviceGrantConfig) Option {
	return func(s *Server) { s.deviceGrant = c }
}

// New builds a core node on an open store. It loads or creates the signing
// key, the activation-code secret and the admin token.
func New(ctx context.Context, cfg Config, st store.Store, log *slog.Logger, opts ...Option) (*Server, error) {
	perNodeIssuer := cfg.Issuer == ""
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("core: config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, fileCfg: cfg, st: st, look: lookups.New(st, lookups.TTL), log: log.With("tier", "core", "node", cfg.Node), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if perNodeIssuer && (cfg.Role == RoleSubscriber || store.IsPostgresURL(cfg.Store)) {
		// Every node of a cluster must issue and accept one issuer, or a
		// phone whose node fails cannot register through another with the
		// tokens it has (issue 11).
		s.log.Warn("no issuer configured: this node issues tokens as its own default issuer, which the other nodes of the cluster refuse; set the same issuer on every node", "issuer", cfg.Issuer)
	}
	s.sipGuard = sipx.NewGuard(s.log.With("sip", "guard"))
	s.metrics = metrics.NewCore()
	s.registerGauges()
	var err error
	if s.kp, err = mtls.NewKeyPair(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
		return nil, fmt.Errorf("core: tomcat certificate: %w", err)
	}
	if s.trust, err = mtls.NewTrustStore(cfg.TLS.TomcatTrust); err != nil {
		return nil, fmt.Errorf("core: tomcat-trust: %w", err)
	}
	if s.gate, err = admission.New(s.look, st, s.trust, s.now, s.log); err != nil {
		return nil, err
	}
	if s.auth, err = oauth.New(ctx, oauth.Config{Issuer: cfg.Issuer, Audience: cfg.Audience,
		AccessTokenTTL: cfg.AccessTokenTTL, RefreshTokenTTL: cfg.RefreshTokenTTL, RefreshGrace: cfg.RefreshGrace,
		ActivationCodeTTL: cfg.ActivationCodeTTL, MaxWrongGuesses: cfg.ActivationGuesses.MaxWrong, GuessWindow: cfg.ActivationGuesses.Window,
		DeviceGrant: oauth.DeviceGrantConfig{TTL: s.deviceGrant.TTL, Interval: s.deviceGrant.Interval,
			VerificationURI: strings.TrimSuffix(cfg.Issuer, "/") + "/ui/device"},
		Metrics: s.metrics, Admins: s.oauthAdmins()},
		st, s.gate, s.log, s.now); err != nil {
		return nil, err
	}
	s.admin = admin.New(admin.Config{Node: cfg.Node, Role: cfg.Role, PhoneOAuthPort: cfg.PhoneOAuthPort, MRAPort: cfg.MRAPort,
		HTTPSAddr: cfg.HTTPSAddr, ConfigAddr: cfg.ConfigAddr, AccessTokenTTL: cfg.AccessTokenTTL, RefreshTokenTTL: cfg.RefreshTokenTTL,
		AdminTokenFile: cfg.AdminTokenFile, Trust: admin.TrustFiles{TomcatTrust: cfg.TLS.TomcatTrust, PhoneEdgeTrust: cfg.TLS.PhoneEdgeTrust}},
		st, admin.Deps{Auth: s.auth, Keys: s.auth.Keys(), Lifetimes: s.auth.Lifetimes(), Edges: s.gate, TLSTrust: s.trust,
			DropBindings: func(ctx context.Context, device string) ([]store.Registration, error) {
				return s.loc.DropDevice(ctx, device)
			},
			SetMode: s.sipOAuthMode.Store, Ports: s.listeningPorts, Purge: s.look.Purge, Now: s.now, Log: s.log})
	if err := s.admin.EnsureBootstrapToken(ctx); err != nil {
		return nil, err
	}
	if s.ui, err = webui.New(s.admin, s.log); err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the effective (defaulted) configuration.
func (s *Server) Config() Config { return s.live(s.cfg) }

// Activation is the activation-code service (admin API, quickstart).
func (s *Server) Activation() *activation.Service { return s.auth.Activation() }

// RotateSigningKey makes a new signing key active. With regen false the
// previous key keeps verifying (and stays in the JWKS) until every token it
// signed has expired. With regen true — the key may be compromised, R-1
// `set key regen authz signing` — the previous keys stop verifying at once,
// so every token they signed stops working.
func (s *Server) RotateSigningKey(ctx context.Context, regen bool) (string, error) {
	return s.auth.Keys().Rotate(ctx, regen)
}

// Listeners are the plain TCP listeners a core node serves on; Serve adds
// TLS to each.
type Listeners struct {
	HTTPS  net.Listener // OAuth + admin API
	Config net.Listener // config files (TFTP over HTTPS, 6971)
	Phone  net.Listener // SIP Phone OAuth port (TLS)
	MRA    net.Listener // SIP MRA port (mutual TLS)
}

// Run listens on the configured addresses (the SIP ports as `admin node
// set` left them, listen.go) and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ls, err := s.Listen(ctx, Listeners{})
	if err != nil {
		return err
	}
	return s.Serve(ctx, ls)
}

// Serve serves the given listeners until ctx ends, then closes them.
func (s *Server) Serve(ctx context.Context, ls Listeners) error {
	mode, err := policy.ParamIs(ctx, s.st, ParamClusterSIPOAuthMode, "enabled", "disabled")
	if err != nil {
		return fmt.Errorf("core: reading SIP OAuth mode: %w", err)
	}
	s.sipOAuthMode.Store(mode)
	s.auth.Lifetimes().Reload(ctx)
	if err := s.admin.RegisterNode(ctx, mode, portOf(ls.Phone.Addr().String()), portOf(ls.MRA.Addr().String())); err != nil {
		return err
	}
	if s.loc, err = registrar.NewLocation(ctx, s.st, s.now, s.log.With("svc", "location")); err != nil {
		return err
	}
	// On PostgreSQL the other nodes of the cluster write bindings too.
	_, shared := s.st.(*store.Postgres)
	s.loc.SetShared(shared)
	s.loc.ObserveCommits(s.metrics.LocationCommit)
	s.located.Store(s.loc)
	defer s.located.Store(nil)
	defer s.loc.Close()
	stopFeed, err := s.auth.StartFeed(ctx, s.look.Purge)
	if err != nil {
		return err
	}
	defer stopFeed()

	onReject := func(kind string) func(net.Addr, []string, error) {
		return func(remote net.Addr, names []string, err error) {
			if len(names) > 0 && errors.Is(err, mtls.ErrNotAdmitted) {
				// Trusted chain, names not configured: worth showing in Find.
				s.gate.ReportNames(remote, names)
			}
			if kind == "sip-mra" {
				s.metrics.PeerRefused(peerRefusal(err))
			}
			if errors.Is(err, mtls.ErrConnLimit) || errors.Is(err, mtls.ErrSourceConnLimit) || errors.Is(err, mtls.ErrNotEstablished) {
				// Flood noise (issue 9 item 11): one line per refused
				// socket at Warn would turn a flood into a log flood.
				s.log.Debug("connection refused", "listener", kind, "remote", remote, "err", err)
				return
			}
			s.log.Warn("TLS handshake refused", "listener", kind, "remote", remote, "names", names, "err", err)
		}
	}
	// Each listener has its own cap (issue 9 item 11): a flood of the
	// Phone OAuth port cannot take the slots edges need on the MRA port.
	lo := mtls.ListenerOptions{HandshakeTimeout: s.cfg.HandshakeTimeout}

	httpsOpts := lo
	httpsOpts.MaxConns = s.cfg.HTTPSMaxConns
	httpsOpts.OnReject = onReject("https")
	httpsOpts.OnAccept = func(c *tls.Conn) {
		if st := c.ConnectionState(); len(st.PeerCertificates) > 0 {
			s.gate.ReportNames(c.RemoteAddr(), mtls.CertNames(st.PeerCertificates[0]))
		}
	}
	httpsLn := mtls.NewListener(ls.HTTPS, mtls.OptionalClientServerConfig(s.kp, s.trust, s.gate.Admit), httpsOpts)
	configOpts := lo
	configOpts.MaxConns = s.cfg.ConfigMaxConns
	configOpts.OnReject = onReject("config")
	configLn := mtls.NewListener(ls.Config, mtls.OptionalClientServerConfig(s.kp, s.trust, s.gate.Admit), configOpts)

	phoneOpts := lo
	phoneOpts.MaxConns, phoneOpts.MaxConnsPerSource = s.cfg.PhoneMaxConns, s.cfg.MaxConnsPerSource
	phoneOpts.EstablishTimeout = s.cfg.SIPUnregisteredTimeout
	phoneOpts.OnReject = onReject("sip-phone-oauth")
	phoneLn := mtls.NewListener(ls.Phone, mtls.ServerConfig(s.kp), phoneOpts)

	mraOpts := lo
	mraOpts.MaxConns = s.cfg.MRAMaxConns
	mraOpts.OnReject = onReject("sip-mra")
	mraOpts.OnAccept = func(c *tls.Conn) {
		s.metrics.PeerAdmitted()
		s.gate.Admitted(c)
	}
	mraLn := mtls.NewListener(ls.MRA, mtls.MutualServerConfig(s.kp, s.trust, s.gate.Admit), mraOpts)

	phoneSIP, mraSIP, err := s.newSIP(portOf(ls.Phone.Addr().String()), portOf(ls.MRA.Addr().String()))
	if err != nil {
		return err
	}
	s.phoneInFlight.Store(phoneSIP.InFlight())
	s.gate.Attach(mraSIP.HasConnection)

	// Request IDs (issue 12 §2): an admitted edge's is believed, anyone
	// else's replaced (reqid.HTTP, fromAdmittedEdge).
	rids := reqid.NewSource()
	hs := httpx.NewServer(reqid.HTTP(s.httpHandler(), rids, fromAdmittedEdge), s.log)
	cs := httpx.NewServer(reqid.HTTP(configfile.New(configfile.Config{SIPDomain: s.cfg.SIPDomain, AdvertisedHost: s.cfg.AdvertisedHost, PhoneOAuthPort: s.cfg.PhoneOAuthPort, Issuer: s.cfg.Issuer, Metrics: s.metrics},
		s.auth, s.st, s.admin.Trust(), s.log).Handler(), rids, fromAdmittedEdge), s.log)

	s.log.Info("core listening", "https", ls.HTTPS.Addr(), "config", ls.Config.Addr(), "sip_phone_oauth", ls.Phone.Addr(), "sip_mra", ls.MRA.Addr(), "sip_oauth_mode", mode)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := hs.Serve(httpsLn)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("core: https: %w", err)
	})
	g.Go(func() error {
		if err := cs.Serve(configLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("core: config download: %w", err)
		}
		return nil
	})
	g.Go(func() error { return phoneSIP.Serve(gctx, phoneLn) })
	g.Go(func() error { return mraSIP.Serve(gctx, mraLn) })
	g.Go(func() error { s.purgeLoop(gctx); return nil })
	g.Go(func() error { s.sweepLoop(gctx); return nil })
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		_ = cs.Shutdown(sctx)
		phoneLn.Close()
		mraLn.Close()
		phoneSIP.Close()
		mraSIP.Close()
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// fromAdmittedEdge reports whether an HTTPS request came over a connection
// whose client certificate the handshake verified against tomcat-trust
// and admitted as an Expressway-C (S-11, S-12; the listeners' VerifyConnection,
// mtls.OptionalClientServerConfig with the gate's Admit): the one kind
// of client whose request ID (reqid.Header) the core believes. Phones
// present no client certificate.
func fromAdmittedEdge(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.PeerCertificates) > 0
}

// newSIP builds the two SIP listeners (S-11) with their handlers: the
// registrar's REGISTER and the proxy's calls, on the location service.
func (s *Server) newSIP(phonePort, mraPort int) (phone, mra *registrar.Port, err error) {
	pc := registrar.PortConfig{Node: s.cfg.Node, SIPDomain: s.cfg.SIPDomain, Issuer: s.cfg.Issuer, AdvertisedHost: s.cfg.AdvertisedHost,
		IdleTimeout: s.cfg.SIPIdleTimeout, MaxInFlight: s.cfg.SIPMaxInFlight}
	if phone, err = registrar.NewPort(pc, s.sipGuard, s.log); err != nil {
		return nil, nil, err
	}
	pc.MRA = true
	if mra, err = registrar.NewPort(pc, s.sipGuard, s.log); err != nil {
		phone.Close()
		return nil, nil, err
	}
	phone.SetNumber(phonePort)
	mra.SetNumber(mraPort)
	mode := s.sipOAuthMode.Load
	reg := registrar.New(registrar.Config{Node: s.cfg.Node, SIPDomain: s.cfg.SIPDomain, MaxRegisterExpires: s.cfg.MaxRegisterExpires},
		registrar.Deps{Mode: mode, Edges: s.gate, Tokens: s.auth, Lookups: s.look, Location: s.loc, Now: s.now, Metrics: s.metrics})
	x := proxy.New(proxy.Config{SIPDomain: s.cfg.SIPDomain, AdvertisedHost: s.cfg.AdvertisedHost, Node: s.cfg.Node},
		proxy.Deps{Mode: mode, Tokens: s.auth, Store: s.st, Location: s.loc, Edges: s.gate, Now: s.now, Metrics: s.metrics, Draining: s.draining.Load}, phone, mra)
	for _, p := range []*registrar.Port{phone, mra} {
		ack, options, call := x.Handlers(p)
		h := registrar.Handlers{Register: reg.Handler(p), Ack: ack, Options: options, Call: call}
		if p.MRA() {
			h = announcing(h, s.gate)
		}
		p.Handle(h)
	}
	s.phone, s.mra = phone, mra
	s.proxy.Store(x)
	return phone, mra, nil
}

// announcing wraps the MRA port's handlers so that every request (after
// the guard validated it) tells the gate which edge the connection speaks
// for: the sent-by of its top Via, which the edge writes, as it writes
// the host:port of its Path (core/admission Gate.Announce). Edges send an
// OPTIONS to every core of their list every few seconds (edge/cores.go),
// so each node knows every edge's connection before a call needs it.
func announcing(h registrar.Handlers, g *admission.Gate) registrar.Handlers {
	wrap := func(next sipgo.RequestHandler) sipgo.RequestHandler {
		return func(req *sip.Request, tx sip.ServerTransaction) {
			if v := req.Via(); v != nil {
				g.Announce(req.Source(), admission.EdgeAddr(v.Host, v.Port))
			}
			next(req, tx)
		}
	}
	return registrar.Handlers{Register: wrap(h.Register), Ack: wrap(h.Ack), Options: wrap(h.Options), Call: wrap(h.Call)}
}

// Calls is the number of dialogs this node is routing (tests, metrics).
func (s *Server) Calls() int {
	if x := s.proxy.Load(); x != nil {
		return x.Calls()
	}
	return 0
}

// SIPRefused is the number of requests this node answered 400 for a
// missing, duplicated or malformed mandatory header, on both SIP ports.
func (s *Server) SIPRefused() uint64 { return s.sipGuard.Refused() }

// SIPDropped is the number of ACKs and responses this node dropped for a
// missing, duplicated or malformed mandatory header, on both SIP ports.
func (s *Server) SIPDropped() uint64 { return s.sipGuard.Dropped() }

// SIPPanics is the number of SIP handler panics this node recovered from.
func (s *Server) SIPPanics() uint64 { return s.sipGuard.Panics() }

// httpHandler routes the core's HTTPS port: OAuth endpoints for phones and
// edges, the admin API and its web pages (/ui/) for operators.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", s.auth.HandleToken)
	mux.HandleFunc("/oauth2/revoke", s.auth.HandleRevoke)
	mux.HandleFunc("/oauth2/device_authorization", s.auth.HandleDeviceAuthorization) // RFC 8628
	mux.HandleFunc(oauth.IntrospectPath, s.auth.HandleIntrospect)                    // edges and admin tokens (RFC 7662; core/oauth/introspect.go)
	mux.HandleFunc("GET /.well-known/jwks.json", s.auth.HandleJWKS)
	mux.HandleFunc("GET "+RevokedFamiliesPath, s.auth.HandleRevokedFamilies) // edges only (core/oauth/revocations.go)
	s.admin.Routes(mux)
	s.ui.Routes(mux)
	return mux
}

// listeningPorts are the SIP ports this node serves, 0 before Serve.
func (s *Server) listeningPorts() (phone, mra int) {
	if s.phone != nil && s.mra != nil {
		return s.phone.Number(), s.mra.Number()
	}
	return 0, 0
}

// AccessTTL is the access-token lifetime in force on this node.
func (s *Server) AccessTTL() time.Duration { return s.auth.Lifetimes().Access() }

// sweepLoop re-checks admitted edges and reloads uploaded trust every few
// seconds, so changes made on any node of the cluster apply here too.
func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.gate.Sweep(ctx)
			s.auth.Keys().Reload(ctx)
			s.auth.Lifetimes().Reload(ctx)
			if err := s.admin.Trust().Reload(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reloading uploaded trust", "err", err)
			}
		}
	}
}

func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.proxy.Load().ExpireCalls(s.now())
			if err := s.st.Purge(ctx, s.now()); err != nil && ctx.Err() == nil {
				s.log.Warn("purge", "err", err)
			}
		}
	}
}

// JWKS is the public key set the core publishes.
func (s *Server) JWKS() token.JWKS { return s.auth.Keys().JWKS() }

// peerRefusal is the edgeway_core_mra_peers_refused_total reason of an
// MRA-port connection refused in or after the handshake.
func peerRefusal(err error) int {
	switch {
	case errors.Is(err, mtls.ErrNotAdmitted), admission.Refused(err):
		return metrics.PeerNotConfigured
	case errors.Is(err, mtls.ErrConnLimit), errors.Is(err, mtls.ErrSourceConnLimit):
		return metrics.PeerConnLimit
	}
	return metrics.PeerUntrusted
}

// registerGauges adds the node's gauges and the counts it already keeps
// to its registry, read at scrape time.
func (s *Server) registerGauges() {
	r := s.metrics.Reg
	metrics.GaugeFunc(r, "edgeway_core_bindings", "Live registrations (bindings) this node holds in its location service.", func() float64 {
		if l := s.located.Load(); l != nil {
			return float64(l.Count())
		}
		return 0
	})
	metrics.GaugeFunc(r, "edgeway_core_dialogs", "Dialogs (calls) this node routes.", func() float64 { return float64(s.Calls()) })
	metrics.CounterFunc(r, "edgeway_core_sip_malformed_total", "SIP messages refused (400) or dropped for a missing, duplicated or malformed mandatory header (RFC 3261 §8.2).",
		prometheus.Labels{"action": "refused"}, func() float64 { return float64(s.sipGuard.Refused()) })
	metrics.CounterFunc(r, "edgeway_core_sip_malformed_total", "SIP messages refused (400) or dropped for a missing, duplicated or malformed mandatory header (RFC 3261 §8.2).",
		prometheus.Labels{"action": "dropped"}, func() float64 { return float64(s.sipGuard.Dropped()) })
	metrics.CounterFunc(r, "edgeway_core_sip_handler_panics_total", "SIP handler panics recovered.", nil, func() float64 { return float64(s.sipGuard.Panics()) })
}
