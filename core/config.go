package core

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/edgeway/edgeway/internal/fdlimit"
	"github.com/edgeway/edgeway/internal/reload"
	"github.com/edgeway/edgeway/internal/sipx"
)

// DefaultOpsAddr is the core's default operations address; OpsOff as
// ops_addr serves no operations address.
const (
	DefaultOpsAddr = "127.0.0.1:9464"
	OpsOff         = "off"
)

// Config is the core's configuration; the YAML file decodes into it and
// command-line flags override it. Zero values take the defaults documented
// on each field (see WithDefaults) and deploy/core.yaml.
type Config struct {
	// Node is this core node's name, unique in the cluster (default: host name).
	Node string `yaml:"node"`
	// Role is "publisher" (default; runs cluster-wide commands such as
	// `utils sipOAuth-mode`, S-13) or "subscriber" (reads the publisher's
	// settings from the shared store).
	Role string `yaml:"role"`
	// Store is the SQLite database file (default DataDir/core.db), or a
	// postgres:// URL of the PostgreSQL server a cluster's nodes share.
	Store string `yaml:"store"`
	// DataDir holds the store and the admin token (default ./edgeway-data).
	DataDir string `yaml:"data_dir"`

	// SIPAddress is the IP the SIP listeners bind (default 0.0.0.0).
	SIPAddress string `yaml:"sip_address"`
	// AdvertisedHost is the name or address on-premises phones use to reach
	// this node; config files name it as the SIP server (default:
	// sip_address, or the node name when that is 0.0.0.0).
	AdvertisedHost string `yaml:"advertised_host"`
	// PhoneOAuthPort is the SIP Phone OAuth port, TLS, on-premises (S-11, default 5090).
	PhoneOAuthPort int `yaml:"phone_oauth_port"`
	// MRAPort is the SIP MRA port, mutual TLS, edges only (S-11, default 5091).
	MRAPort int `yaml:"mra_port"`
	// HTTPSAddr is the OAuth + admin API listener (default :8443).
	HTTPSAddr string `yaml:"https_addr"`
	// ConfigAddr serves device config files over HTTPS, the TFTP role, only
	// to the device's own token (S-2, S-4, S-16; default :6971).
	ConfigAddr string `yaml:"config_addr"`
	// OpsAddr is the operations address: Prometheus /metrics, /healthz and
	// /readyz over plain HTTP, for the operator's network, never the
	// phones' (default 127.0.0.1:9464; "off" serves none).
	OpsAddr string `yaml:"ops_addr"`
	// DrainTimeout bounds a graceful drain on SIGTERM: the node turns
	// not ready (/readyz 503 "draining"), refuses new connections on its
	// HTTPS, config, Phone OAuth and MRA ports (internal/node), and waits
	// this long at most for the dialogs it routes to end before it closes
	// everything (default 30s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// LogLevel is the process's log level: debug, info, warn or error
	// (default info; --log-level overrides it). A reload (SIGHUP) applies
	// it to the running process.
	LogLevel string `yaml:"log_level,omitempty"`

	// SIPDomain is the domain of every line's address of record (default edgeway.test).
	SIPDomain string `yaml:"sip_domain"`
	// Issuer is the "iss" of access tokens (default https://<node>:8443).
	Issuer string `yaml:"issuer"`
	// Audience is the "aud" of access tokens (default urn:edgeway:sip).
	Audience string `yaml:"audience"`
	// AccessTokenTTL is the access token lifetime (default 60m).
	AccessTokenTTL time.Duration `yaml:"access_token_ttl"`
	// RefreshTokenTTL is the refresh token lifetime (default 60 days =
	// 1440h). A refresh made once half of it has passed renews the refresh
	// token to a full lifetime; one made before keeps its expiry (R-3,
	// core/oauth/renewal.go).
	RefreshTokenTTL time.Duration `yaml:"refresh_token_ttl"`
	// RefreshGrace is how long after a refresh the same refresh token,
	// presented again by the same device (same path — through an edge or
	// on-premises — and same source IP), gets the response it lost once
	// more instead of being treated as a replay (RFC 9700 §4.14.2; issue 9
	// item 15). Default 30s; 0 disables; at most 5m. Nil means the default.
	RefreshGrace *time.Duration `yaml:"refresh_grace"`
	// ActivationCodeTTL is how long an activation code is valid (default 168h).
	ActivationCodeTTL time.Duration `yaml:"activation_code_ttl"`
	// ActivationGuesses is the per-device budget of wrong activation-code
	// guesses (issue 9): see ActivationGuessConfig.
	ActivationGuesses ActivationGuessConfig `yaml:"activation_guesses"`

	// MaxRegisterExpires caps a binding's lifetime in seconds (default 3600);
	// a binding never outlives the token that created it.
	MaxRegisterExpires int `yaml:"max_register_expires"`
	// SIPIdleTimeout closes a SIP connection that sends nothing, not even a
	// CRLF keep-alive, for this long (default 5m).
	SIPIdleTimeout time.Duration `yaml:"sip_idle_timeout"`
	// HandshakeTimeout bounds every TLS handshake (default 10s).
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// SIPUnregisteredTimeout closes a connection on the Phone OAuth port
	// that has not completed a REGISTER (2xx) within this long of its TLS
	// handshake (default 30s); after that only sip_idle_timeout applies.
	SIPUnregisteredTimeout time.Duration `yaml:"sip_unregistered_timeout"`
	// SIPMaxInFlight bounds the requests of one connection on the Phone
	// OAuth port the core works on at once; the connection is not read
	// while it is reached, so TCP holds back a pipelining client (issue 9
	// item 10; default 32; negative: no bound). The MRA port is not
	// bounded: each edge multiplexes all its phones on its connection, and
	// bounds each phone itself.
	SIPMaxInFlight int `yaml:"sip_max_inflight"`

	// Connection caps (issue 9 item 11). Each listener admits at most its
	// cap of connections, handshaking or open, and closes the rest at
	// accept; the listeners' caps add up to less than the open-file limit
	// (raised to the hard limit at start) minus FDReserve, so a flood on
	// the Phone OAuth port never takes the MRA port's, the admin API's or
	// the store's descriptors. Defaults are shares of what the limit
	// leaves after FDReserve: 60 % Phone OAuth, 15 % MRA, 15 % HTTPS, 10 %
	// config download.
	//
	// FDLimit is the open-file budget the shares are taken from (default:
	// the process's soft RLIMIT_NOFILE; quickstart, running both tiers in
	// one process, gives each half).
	FDLimit int `yaml:"fd_limit"`
	// FDReserve is kept out of every share, for the store, logs and the
	// like (default: a tenth of fd_limit, at least 512).
	FDReserve int `yaml:"fd_reserve"`
	// PhoneMaxConns, MRAMaxConns, HTTPSMaxConns and ConfigMaxConns cap the
	// Phone OAuth, MRA, HTTPS and config download listeners.
	PhoneMaxConns  int `yaml:"phone_max_conns"`
	MRAMaxConns    int `yaml:"mra_max_conns"`
	HTTPSMaxConns  int `yaml:"https_max_conns"`
	ConfigMaxConns int `yaml:"config_max_conns"`
	// MaxConnsPerSource caps connections from one IP on the Phone OAuth
	// port (default 200). The other listeners allow 1000 per IP.
	MaxConnsPerSource int `yaml:"max_conns_per_source"`

	TLS TLSConfig `yaml:"tls"`

	// AdminTokenFile holds the admin API bearer token; created (0600) on
	// first start when missing (default DataDir/admin.token).
	AdminTokenFile string `yaml:"admin_token_file"`
}

// ActivationGuessConfig is the per-device budget of wrong activation-code
// guesses, counted in the store so that it holds across every source, edge
// and core node: MaxWrong wrong guesses naming a device within Window lock
// its outstanding code until an administrator issues a new one.
type ActivationGuessConfig struct {
	// MaxWrong is the number of wrong guesses that locks the code (default 10).
	MaxWrong int `yaml:"max_wrong"`
	// Window is the fixed counting window, opened by its first wrong guess
	// (default 1h).
	Window time.Duration `yaml:"window"`
}

// TLSConfig names the core's certificate files (S-11).
type TLSConfig struct {
	// Cert and Key are the "Tomcat" certificate used on 5090, 5091 and HTTPS.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// TomcatTrust is the PEM bundle that must verify an edge's client
	// certificate on the MRA port (S-11).
	TomcatTrust string `yaml:"tomcat_trust"`
	// PhoneEdgeTrust is the bundle phones use to trust the core (S-8).
	PhoneEdgeTrust string `yaml:"phone_edge_trust"`
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Node == "" {
		c.Node, _ = os.Hostname()
		if c.Node == "" {
			c.Node = "core"
		}
	}
	if c.Role == "" {
		c.Role = RolePublisher
	}
	if c.DataDir == "" {
		c.DataDir = "edgeway-data"
	}
	if c.Store == "" {
		c.Store = c.DataDir + "/core.db"
	}
	if c.SIPAddress == "" {
		c.SIPAddress = "0.0.0.0"
	}
	if c.AdvertisedHost == "" {
		c.AdvertisedHost = c.SIPAddress
		if ip := net.ParseIP(c.SIPAddress); ip == nil || ip.IsUnspecified() {
			c.AdvertisedHost = c.Node
		}
	}
	if c.PhoneOAuthPort == 0 {
		c.PhoneOAuthPort = 5090
	}
	if c.MRAPort == 0 {
		c.MRAPort = 5091
	}
	if c.HTTPSAddr == "" {
		c.HTTPSAddr = ":8443"
	}
	if c.ConfigAddr == "" {
		c.ConfigAddr = ":6971"
	}
	if c.OpsAddr == "" {
		c.OpsAddr = DefaultOpsAddr
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.SIPDomain == "" {
		c.SIPDomain = "edgeway.test"
	}
	if c.Issuer == "" {
		c.Issuer = "https://" + c.Node + ":8443"
	}
	if c.Audience == "" {
		c.Audience = "urn:edgeway:sip"
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = 60 * time.Minute
	}
	if c.RefreshTokenTTL == 0 {
		c.RefreshTokenTTL = 60 * 24 * time.Hour
	}
	if c.RefreshGrace == nil {
		d := DefaultRefreshGrace
		c.RefreshGrace = &d
	}
	if c.ActivationCodeTTL == 0 {
		c.ActivationCodeTTL = 168 * time.Hour
	}
	if c.ActivationGuesses.MaxWrong == 0 {
		c.ActivationGuesses.MaxWrong = 10
	}
	if c.ActivationGuesses.Window == 0 {
		c.ActivationGuesses.Window = time.Hour
	}
	if c.MaxRegisterExpires == 0 {
		c.MaxRegisterExpires = 3600
	}
	if c.SIPIdleTimeout == 0 {
		c.SIPIdleTimeout = 5 * time.Minute
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.AdminTokenFile == "" {
		c.AdminTokenFile = c.DataDir + "/admin.token"
	}
	if c.SIPUnregisteredTimeout == 0 {
		c.SIPUnregisteredTimeout = 30 * time.Second
	}
	if c.SIPMaxInFlight == 0 {
		c.SIPMaxInFlight = sipx.DefaultInFlightLimit
	}
	if c.FDLimit == 0 {
		c.FDLimit = fdlimit.Current()
	}
	limit := c.FDLimit
	if c.FDReserve == 0 {
		c.FDReserve = fdlimit.DefaultReserve(limit)
	}
	for _, sh := range []struct {
		v        *int
		num, den int
	}{{&c.PhoneMaxConns, 6, 10}, {&c.MRAMaxConns, 15, 100}, {&c.HTTPSMaxConns, 15, 100}, {&c.ConfigMaxConns, 1, 10}} {
		if *sh.v == 0 {
			*sh.v = fdlimit.Share(limit, c.FDReserve, 0, sh.num, sh.den, 64)
		}
	}
	if c.MaxConnsPerSource == 0 {
		c.MaxConnsPerSource = 200
	}
	return c
}

// Validate reports the first problem with a defaulted config.
func (c Config) Validate() error {
	var errs []error
	if c.Role != RolePublisher && c.Role != RoleSubscriber {
		errs = append(errs, fmt.Errorf("role %q: want publisher or subscriber", c.Role))
	}
	if err := ValidatePort("phone_oauth_port", c.PhoneOAuthPort); err != nil {
		errs = append(errs, err)
	}
	if err := ValidatePort("mra_port", c.MRAPort); err != nil {
		errs = append(errs, err)
	}
	if c.PhoneOAuthPort == c.MRAPort {
		errs = append(errs, fmt.Errorf("S-11: phone_oauth_port and mra_port must differ (both %d)", c.MRAPort))
	}
	if net.ParseIP(c.SIPAddress) == nil {
		errs = append(errs, fmt.Errorf("sip_address %q is not an IP address", c.SIPAddress))
	}
	if _, _, err := net.SplitHostPort(c.HTTPSAddr); err != nil {
		errs = append(errs, fmt.Errorf("https_addr %q: %w", c.HTTPSAddr, err))
	}
	if _, _, err := net.SplitHostPort(c.ConfigAddr); err != nil {
		errs = append(errs, fmt.Errorf("config_addr %q: %w", c.ConfigAddr, err))
	}
	if c.OpsAddr != OpsOff {
		if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
			errs = append(errs, fmt.Errorf("ops_addr %q: %w (or %q)", c.OpsAddr, err, OpsOff))
		}
	}
	if c.TLS.Cert == "" || c.TLS.Key == "" || c.TLS.TomcatTrust == "" {
		errs = append(errs, errors.New("tls.cert, tls.key and tls.tomcat_trust are required (run `edgeway pki init` for a development PKI)"))
	}
	if c.AccessTokenTTL < time.Minute || c.RefreshTokenTTL < c.AccessTokenTTL {
		errs = append(errs, errors.New("access_token_ttl must be ≥ 1m and refresh_token_ttl ≥ access_token_ttl"))
	}
	if c.ActivationGuesses.MaxWrong < 1 || c.ActivationGuesses.Window < time.Second {
		errs = append(errs, errors.New("activation_guesses.max_wrong must be ≥ 1 and activation_guesses.window ≥ 1s"))
	}
	if c.RefreshGrace != nil && (*c.RefreshGrace < 0 || *c.RefreshGrace > MaxRefreshGrace) {
		errs = append(errs, fmt.Errorf("refresh_grace %v: want 0 (off) to %v", *c.RefreshGrace, MaxRefreshGrace))
	}
	if c.MaxRegisterExpires < 60 {
		errs = append(errs, errors.New("max_register_expires must be ≥ 60"))
	}
	for name, v := range map[string]int{"fd_limit": c.FDLimit, "fd_reserve": c.FDReserve, "phone_max_conns": c.PhoneMaxConns, "mra_max_conns": c.MRAMaxConns,
		"https_max_conns": c.HTTPSMaxConns, "config_max_conns": c.ConfigMaxConns, "max_conns_per_source": c.MaxConnsPerSource} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %d must be positive", name, v))
		}
	}
	if c.SIPUnregisteredTimeout < 0 {
		errs = append(errs, fmt.Errorf("sip_unregistered_timeout %s must be positive", c.SIPUnregisteredTimeout))
	}
	if err := reload.ValidateLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) phoneAddr() string {
	return net.JoinHostPort(c.SIPAddress, strconv.Itoa(c.PhoneOAuthPort))
}

func (c Config) mraAddr() string { return net.JoinHostPort(c.SIPAddress, strconv.Itoa(c.MRAPort)) }

// portOf is the port of a host:port address, 0 if it has none.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
