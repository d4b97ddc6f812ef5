package configfile

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
	"github.com/edgeway/edgeway/internal/traversal"
)

// PhoneEdgeTrustFile is the path of the Phone-Edge-Trust bundle (S-8) on
// the config port, at the root like the config files.
const PhoneEdgeTrustFile = "/phone-edge-trust.pem"

// configFileRE is a device config file name, as TFTP names them:
// /<device>.cnf.xml with a device name of at most 64 [A-Za-z0-9_-].
var configFileRE = regexp.MustCompile(`^/([A-Za-z0-9_-]{1,64})\.cnf\.xml$`)

// ConfigFileDevice returns the device a config file path names
// (/SEP0011223344AA.cnf.xml → SEP0011223344AA), or ok false when the path
// is not exactly one such file at the root.
func ConfigFileDevice(path string) (device string, ok bool) {
	m := configFileRE.FindStringSubmatch(path)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// ConfigRequestFile is the config port's path rule (S-2, S-16): the file a
// request URL names — "<device>.cnf.xml" with its device, or
// "phone-edge-trust.pem" (device "") — or ok false. The path is taken
// exactly as sent: an escaped form (RawPath set) is never decoded into an
// allowed name, dot segments are never cleaned.
func ConfigRequestFile(u *url.URL) (file, device string, ok bool) {
	if u == nil || u.RawPath != "" || u.Opaque != "" {
		return "", "", false
	}
	if u.Path == PhoneEdgeTrustFile {
		return PhoneEdgeTrustFile[1:], "", true
	}
	if device, ok = ConfigFileDevice(u.Path); !ok {
		return "", "", false
	}
	return u.Path[1:], device, true
}

// DeviceConfig is a device's config file (<device>.cnf.xml): what a SIP
// OAuth phone needs to register. It holds nothing secret: with SIP OAuth
// there is no TFTP encrypted config (S-16); the file is protected by HTTPS
// and the device's own token instead (S-2).
type DeviceConfig struct {
	XMLName xml.Name `xml:"device"`
	Name    string   `xml:"name,attr"`
	Model   string   `xml:"model"`
	// MRA is true when the file was fetched through an edge: the phone is
	// in MRA mode and registers through that edge (S-20).
	MRA             bool                 `xml:"mra"`
	SecurityProfile DeviceConfigSecurity `xml:"securityProfile"`
	SIPServer       DeviceConfigSIP      `xml:"sipServer"`
	// TokenEndpoint is where the phone refreshes its tokens.
	TokenEndpoint string             `xml:"oauth>tokenEndpoint"`
	Lines         []DeviceConfigLine `xml:"lines>line"`
	TURN          DeviceConfigTURN   `xml:"turn"`
}

// DeviceConfigSecurity is the device's phone security profile (S-15).
type DeviceConfigSecurity struct {
	Name      string `xml:"name,attr"`
	Mode      string `xml:"deviceSecurityMode"` // non-secure | authenticated | encrypted
	Transport string `xml:"transport"`          // TCP | UDP | TLS | TCP+UDP
	OAuth     bool   `xml:"enableOAuthAuthentication"`
}

// DeviceConfigSIP is the SIP server the phone registers with.
type DeviceConfigSIP struct {
	Host      string `xml:"host"`
	Port      int    `xml:"port"`
	Transport string `xml:"transport"`
}

// Address is the server as host:port.
func (s DeviceConfigSIP) Address() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DeviceConfigLine is one line (directory number) of the device.
type DeviceConfigLine struct {
	Index  int    `xml:"index,attr"`
	Number string `xml:"number"`
	Domain string `xml:"domain"`
}

// DeviceConfigTURN is the TURN server for media through the edge. The core
// leaves it empty: the edge fills it in on the way out (a later issue).
type DeviceConfigTURN struct {
	Comment string `xml:",comment"`
	Server  string `xml:"server,omitempty"`
}

// Config is what config-file serving needs of the core's configuration.
type Config struct {
	// SIPDomain is every line's domain, and the Bearer challenge's realm.
	SIPDomain string
	// AdvertisedHost and PhoneOAuthPort are the SIP server an on-premises
	// phone registers with (S-11); Issuer is where it refreshes.
	AdvertisedHost string
	PhoneOAuthPort int
	Issuer         string
	// Metrics counts refusals (edgeway_core_config_refusals_total); nil
	// counts nothing.
	Metrics *metrics.Core
}

// Auth is what the config server asks core/oauth: who is calling (an
// admitted edge or on premises, S-12) and whether a token is valid (S-2,
//
type Auth interface {
	PeerOf(r *http.Request) (oauth.Peer, *oauth.OAuthError)
	CheckAccessToken(ctx context.Context, raw string) (*token.Claims, error)
}

// Store is what a config file is built from.
type Store interface {
	GetDevice(ctx context.Context, name string) (store.Device, error)
	GetSecurityProfile(ctx context.Context, name string) (store.SecurityProfile, error)
}

// TrustBundles returns a trust store as a PEM bundle (core/admin.Trust).
type TrustBundles interface {
	Bundle(ctx context.Context, name string) ([]byte, error)
}

// Server serves device configuration files on the config port (6971).
type Server struct {
	cfg   Config
	auth  Auth
	st    Store
	trust TrustBundles
	log   *slog.Logger
}

// New builds the config server.
func New(cfg Config, auth Auth, st Store, trust TrustBundles, log *slog.Logger) *Server {
	return &Server{cfg: cfg, auth: auth, st: st, trust: trust, log: log}
}

// Handler serves device configuration files on the config port
// (6971): GET /<device>.cnf.xml and GET /phone-edge-trust.pem, each only to
// a bearer token of that device (S-2, S-4, S-16). Paths are matched
// exactly, without cleaning: anything else is 404.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, device, ok := ConfigRequestFile(r.URL)
		if !ok {
			http.NotFound(w, r)
			return
		}
		isTrust := device == ""
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if isTrust {
			s.serveTrustFile(w, r)
			return
		}
		s.serveConfigFile(w, r, device)
	})
}

// configRefusal is why a config request was refused, with its HTTP answer.
type configRefusal struct {
	status   int
	bearer   string // RFC 6750 error code for WWW-Authenticate, "" for none
	reason   string
	retry    bool // infrastructure: answer Retry-After
	internal error
}

func (e *configRefusal) Error() string { return e.reason }

// configToken authenticates a config request: its bearer token must be a
// valid, unrevoked access token (S-2). It returns the token's claims, or
// the refusal to send.
func (s *Server) configToken(ctx context.Context, r *http.Request) (*token.Claims, string, *configRefusal) {
	hs := r.Header.Values("Authorization")
	if len(hs) == 0 {
		return nil, "", &configRefusal{status: http.StatusUnauthorized, reason: "no Authorization header"}
	}
	scheme, raw, _ := strings.Cut(strings.TrimSpace(hs[0]), " ")
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") {
		// RFC 6750 §3.1: no error code when the request has no bearer token.
		return nil, "", &configRefusal{status: http.StatusUnauthorized, reason: fmt.Sprintf("Authorization scheme %.16q is not Bearer", scheme)}
	}
	fp := sipx.Fingerprint(raw)
	if len(hs) > 1 || raw == "" {
		return nil, fp, &configRefusal{status: http.StatusBadRequest, bearer: "invalid_request", reason: "exactly one Bearer token is required"}
	}
	claims, err := s.auth.CheckAccessToken(ctx, raw)
	if err != nil {
		var te *oauth.TokenError
		if errors.As(err, &te) {
			return nil, fp, &configRefusal{status: http.StatusUnauthorized, bearer: "invalid_token", reason: te.Reason}
		}
		return nil, fp, &configRefusal{status: http.StatusServiceUnavailable, retry: true, reason: "checking the token failed", internal: err}
	}
	return claims, fp, nil
}

// refuseConfig logs a refusal (never the token, only its fingerprint) and
// answers it.
func (s *Server) refuseConfig(w http.ResponseWriter, r *http.Request, file, device, tokFP string, mra bool, e *configRefusal) {
	s.cfg.Metrics.ConfigRefused(fileLabel(file), e.status)
	attrs := []any{"file", file, "mra", mra, "remote", r.RemoteAddr, "status", e.status, "why", e.reason, reqid.Attr, reqid.FromRequest(r)}
	if device != "" {
		attrs = append(attrs, "token_device", device)
	}
	if tokFP != "" {
		attrs = append(attrs, "tok", tokFP)
	}
	if e.internal != nil {
		s.log.Error("config download failed", append(attrs, "err", e.internal)...)
	} else {
		s.log.Debug("config download refused", attrs...)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch {
	case e.status == http.StatusUnauthorized || e.bearer != "":
		desc := ""
		if e.bearer != "" {
			desc = e.reason
		}
		h.Set("WWW-Authenticate", sipx.BearerChallenge(s.cfg.SIPDomain, "", e.bearer, desc))
	case e.retry:
		h.Set("Retry-After", strconv.Itoa(int(configRetryAfter/time.Second)))
	}
	msg := http.StatusText(e.status)
	if e.internal == nil && e.status != http.StatusNotFound {
		msg += ": " + e.reason
	}
	http.Error(w, msg, e.status)
}

// fileLabel is the metrics label of a config file.
func fileLabel(file string) string {
	if file == PhoneEdgeTrustFile {
		return metrics.ConfigPhoneEdgeTrust
	}
	return metrics.ConfigDevice
}

// refusePeer answers a request from an edge the core no longer admits
// (oauth.PeerOf, S-12).
func (s *Server) refusePeer(w http.ResponseWriter, r *http.Request, file string, perr *oauth.OAuthError) {
	s.cfg.Metrics.ConfigRefused(fileLabel(file), perr.Status)
	s.log.Debug("config download refused", "file", file, "mra", true, "remote", r.RemoteAddr, "status", perr.Status, "why", perr.Description, reqid.Attr, reqid.FromRequest(r))
	oauth.WriteError(w, perr)
}

// serveTrustFile serves the Phone-Edge-Trust bundle (S-8) to any valid
// token of a device that still exists.
func (s *Server) serveTrustFile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, perr := s.auth.PeerOf(r)
	if perr != nil {
		s.refusePeer(w, r, PhoneEdgeTrustFile, perr)
		return
	}
	claims, fp, refusal := s.configToken(ctx, r)
	if refusal != nil {
		s.refuseConfig(w, r, PhoneEdgeTrustFile, "", fp, p.MRA, refusal)
		return
	}
	if refusal := boundRefusal(claims, p.Cnf); refusal != nil {
		s.refuseConfig(w, r, PhoneEdgeTrustFile, claims.Device(), fp, p.MRA, refusal)
		return
	}
	if _, err := s.st.GetDevice(ctx, claims.Device()); errors.Is(err, store.ErrNotFound) {
		s.refuseConfig(w, r, PhoneEdgeTrustFile, claims.Device(), fp, p.MRA,
			&configRefusal{status: http.StatusUnauthorized, bearer: "invalid_token", reason: fmt.Sprintf("token names unknown device %s", claims.Device())})
		return
	} else if err != nil {
		s.refuseConfig(w, r, PhoneEdgeTrustFile, claims.Device(), fp, p.MRA,
			&configRefusal{status: http.StatusServiceUnavailable, retry: true, reason: "reading the device failed", internal: err})
		return
	}
	bundle, err := s.trust.Bundle(ctx, policy.TrustPhoneEdge)
	if err != nil {
		s.refuseConfig(w, r, PhoneEdgeTrustFile, claims.Device(), fp, p.MRA,
			&configRefusal{status: http.StatusServiceUnavailable, retry: true, reason: "reading Phone-Edge-Trust failed", internal: err})
		return
	}
	if len(bundle) == 0 {
		s.refuseConfig(w, r, PhoneEdgeTrustFile, claims.Device(), fp, p.MRA,
			&configRefusal{status: http.StatusNotFound, reason: "S-8: Phone-Edge-Trust holds no certificate"})
		return
	}
	s.log.Debug("config file served", "file", PhoneEdgeTrustFile, "device", claims.Device(), "mra", p.MRA, "edge", p.Edge, reqid.Attr, reqid.FromRequest(r))
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(bundle)
}

// serveConfigFile serves <device>.cnf.xml to that device's own token only
// (S-2, S-4, S-16).
func (s *Server) serveConfigFile(w http.ResponseWriter, r *http.Request, device string) {
	ctx := r.Context()
	file := "/" + device + ".cnf.xml"
	p, perr := s.auth.PeerOf(r)
	if perr != nil {
		s.refusePeer(w, r, file, perr)
		return
	}
	claims, fp, refusal := s.configToken(ctx, r)
	if refusal != nil {
		s.refuseConfig(w, r, file, "", fp, p.MRA, refusal)
		return
	}
	if refusal := boundRefusal(claims, p.Cnf); refusal != nil {
		s.refuseConfig(w, r, file, claims.Device(), fp, p.MRA, refusal)
		return
	}
	if claims.Device() != device {
		s.refuseConfig(w, r, file, claims.Device(), fp, p.MRA, &configRefusal{status: http.StatusForbidden, bearer: "insufficient_scope",
			reason: fmt.Sprintf("S-2: a config file is served only to its own device's token; this token is for %s", claims.Device())})
		return
	}
	dev, err := s.st.GetDevice(ctx, device)
	if errors.Is(err, store.ErrNotFound) {
		s.refuseConfig(w, r, file, claims.Device(), fp, p.MRA, &configRefusal{status: http.StatusNotFound, reason: "unknown device"})
		return
	} else if err != nil {
		s.refuseConfig(w, r, file, claims.Device(), fp, p.MRA,
			&configRefusal{status: http.StatusServiceUnavailable, retry: true, reason: "reading the device failed", internal: err})
		return
	}
	cfg, err := s.deviceConfig(ctx, dev, p, r.Header)
	if err != nil {
		var refusal *configRefusal
		if !errors.As(err, &refusal) {
			refusal = &configRefusal{status: http.StatusServiceUnavailable, retry: true, reason: "building the config failed", internal: err}
		}
		s.refuseConfig(w, r, file, claims.Device(), fp, p.MRA, refusal)
		return
	}
	body, err := xml.MarshalIndent(cfg, "", "  ")
	if err != nil {
		s.refuseConfig(w, r, file, claims.Device(), fp, p.MRA,
			&configRefusal{status: http.StatusServiceUnavailable, retry: true, reason: "encoding the config failed", internal: err})
		return
	}
	s.log.Debug("config file served", "file", file, "device", dev.Name, "mra", p.MRA, "edge", p.Edge, "sip_server", cfg.SIPServer.Address(), reqid.Attr, reqid.FromRequest(r))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
	_, _ = w.Write([]byte("\n"))
}

// deviceConfig builds a device's config file. Through an admitted edge
// (MRA mode, S-20) the phone registers with the edge's public SIP address
// and refreshes at the edge's token endpoint, as the edge reports them in
// traversal headers (believed only because p.MRA means the connection
// presented an admitted Expressway-C certificate, S-12); on premises it
// registers with this node's SIP Phone OAuth port (S-11) and refreshes at
// the core's issuer.
func (s *Server) deviceConfig(ctx context.Context, dev store.Device, p oauth.Peer, h http.Header) (*DeviceConfig, error) {
	cfg := &DeviceConfig{
		Name: dev.Name, Model: dev.Model, MRA: p.MRA,
		Lines: []DeviceConfigLine{{Index: 1, Number: dev.Line, Domain: s.cfg.SIPDomain}},
		TURN:  DeviceConfigTURN{Comment: " TURN server: the edge fills this in for phones in MRA mode (a later issue) "},
	}
	if dev.SecurityProfile != "" {
		prof, err := s.st.GetSecurityProfile(ctx, dev.SecurityProfile)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Reported as missing: the phone cannot use OAuth (S-15).
		case err != nil:
			return nil, fmt.Errorf("security profile %q: %w", dev.SecurityProfile, err)
		default:
			cfg.SecurityProfile = DeviceConfigSecurity{Name: prof.Name, Mode: prof.Mode, Transport: prof.Transport, OAuth: prof.OAuth}
		}
	}
	if !p.MRA {
		cfg.SIPServer = DeviceConfigSIP{Host: s.cfg.AdvertisedHost, Port: s.cfg.PhoneOAuthPort, Transport: "TLS"}
		cfg.TokenEndpoint = strings.TrimSuffix(s.cfg.Issuer, "/") + "/oauth2/token"
		return cfg, nil
	}
	host, port, err := edgeSIPAddress(h.Get(traversal.EdgeSIPHeader))
	if err != nil {
		return nil, &configRefusal{status: http.StatusBadGateway, reason: fmt.Sprintf("edge %s sent no usable %s: %v", p.Edge, traversal.EdgeSIPHeader, err)}
	}
	base, err := edgeBaseURL(h.Get(traversal.EdgeURLHeader))
	if err != nil {
		return nil, &configRefusal{status: http.StatusBadGateway, reason: fmt.Sprintf("edge %s sent no usable %s: %v", p.Edge, traversal.EdgeURLHeader, err)}
	}
	cfg.SIPServer = DeviceConfigSIP{Host: host, Port: port, Transport: "TLS"}
	cfg.TokenEndpoint = base + "/oauth2/token"
	return cfg, nil
}

// edgeSIPAddress parses the edge's public SIP/TLS address (host:port).
func edgeSIPAddress(v string) (string, int, error) {
	host, ps, err := net.SplitHostPort(strings.TrimSpace(v))
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 || host == "" || strings.ContainsAny(host, " /<>\"'&") {
		return "", 0, fmt.Errorf("%q is not a host:port", v)
	}
	return host, port, nil
}

// edgeBaseURL parses the edge's public HTTPS base URL.
func edgeBaseURL(v string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an https:// base URL", v)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// configRetryAfter is how soon a phone may retry after an infrastructure
// error.
const configRetryAfter = time.Second
