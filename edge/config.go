package edge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/internal/fdlimit"
	"github.com/edgeway/edgeway/internal/reload"
	"github.com/edgeway/edgeway/internal/sipx"
)

// DefaultOpsAddr is the edge's default operations address; OpsOff as
// ops_addr serves no operations address.
const (
	DefaultOpsAddr = "127.0.0.1:9465"
	OpsOff         = "off"
)

// Config is the edge's configuration; the YAML file decodes into it and
// flags override it. See deploy/edge.yaml for a commented example.
type Config struct {
	// Node is this edge's name in logs (default: host name).
	Node string `yaml:"node"`
	// HTTPSAddr is the public HTTPS listener for phones (default :8443).
	HTTPSAddr string `yaml:"https_addr"`
	// SIPAddr is the public SIP/TLS listener for phones (default :5061).
	SIPAddr string `yaml:"sip_addr"`
	// OpsAddr is the operations address: Prometheus /metrics, /healthz and
	// /readyz over plain HTTP, for the operator's network, never the
	// public one (default 127.0.0.1:9465; "off" serves none).
	OpsAddr string `yaml:"ops_addr"`
	// DrainTimeout bounds a graceful drain on SIGTERM: the node turns
	// not ready (/readyz 503 "draining"), refuses new connections, new
	// calls (503 + Retry-After) and new TURN allocations on those open
	// (edge/drain.go), and waits this long at most for its calls and TURN
	// allocations to end before it closes everything (default 30s).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// LogLevel is the process's log level: debug, info, warn or error
	// (default info; --log-level overrides it). A reload (SIGHUP) applies
	// it to the running process.
	LogLevel string `yaml:"log_level,omitempty"`
	// AdvertisedHost is the name or address phones and the core use to reach
	// this edge; it goes into Via and Path (default: host of sip_addr, or
	// the node name when that is a wildcard).
	AdvertisedHost string `yaml:"advertised_host"`

	// PublicURL is this edge's HTTPS base URL as phones reach it; the SIP
	// Bearer challenge names its /oauth2/token (RFC 8898 authz_server).
	// Default: https://<advertised_host>:<port of https_addr>.
	PublicURL string `yaml:"public_url"`

	// Cores is the ordered list of core nodes this edge uses (Unified
	// CM's Call Manager Group order; edge/cores.go): each is
	// health-checked, and new SIP requests and HTTPS requests go to the
	// first one that is up. It replaces the single-core keys core_url,
	// core_mra, core_config_url and core_server_name: a config sets one
	// form or the other, never both; with neither, the single-core
	// defaults apply.
	Cores []CoreNode `yaml:"cores,omitempty"`
	// CoreHealthInterval is how often every core is health-checked with a
	// SIP OPTIONS over its mutual-TLS MRA connection (default 5s).
	CoreHealthInterval time.Duration `yaml:"core_health_interval"`
	// CoreHealthTimeout bounds one health check (default 2s).
	CoreHealthTimeout time.Duration `yaml:"core_health_timeout"`
	// CoreDownAfter is how many checks in a row must fail before a core is
	// taken out of use (default 2). A request that cannot open a
	// connection to a core takes it out at once.
	CoreDownAfter int `yaml:"core_down_after"`
	// CoreUpAfter is how many checks in a row must succeed before a core
	// that was out is used again (default 2).
	CoreUpAfter int `yaml:"core_up_after"`

	// CoreURL is the core's HTTPS base URL, reached over mutual TLS
	// (default https://core.edgeway.test:8443). Single-core form: see Cores.
	CoreURL string `yaml:"core_url"`
	// CoreConfigURL is the core's config-download base URL (the TFTP role
	// over HTTPS, S-16), reached over mutual TLS; the edge proxies
	// /<device>.cnf.xml and /phone-edge-trust.pem to it (default
	// https://<host of core_url>:6971).
	CoreConfigURL string `yaml:"core_config_url"`
	// CoreMRA is the core's SIP MRA address, host:port (S-11, default port 5091).
	CoreMRA string `yaml:"core_mra"`
	// CoreServerName is the name verified in the core's certificate
	// (default: host of core_url).
	CoreServerName string `yaml:"core_server_name"`

	// TokenIssuer and TokenAudience must equal the core's issuer and
	// audience (defaults: core_url and urn:edgeway:sip).
	TokenIssuer   string `yaml:"token_issuer"`
	TokenAudience string `yaml:"token_audience"`

	// CoreRetry is how often the edge retries the core while it cannot
	// reach it over mTLS (default 10s).
	CoreRetry time.Duration `yaml:"core_retry"`

	// SIPIdleTimeout closes a silent phone connection (default 5m; phones
	// send CRLF keep-alives, RFC 5626 §4.4.1).
	SIPIdleTimeout time.Duration `yaml:"sip_idle_timeout"`
	// SIPKeepAlive is how often the edge sends a CRLF keep-alive down each
	// registered phone's connection (RFC 5626 §4.4.1), so NATs in front of
	// phones keep the flow open for incoming calls (default 30s; negative:
	// never).
	SIPKeepAlive time.Duration `yaml:"sip_keepalive"`
	// HandshakeTimeout bounds every TLS handshake (default 10s).
	HandshakeTimeout time.Duration `yaml:"handshake_timeout"`
	// MaxConnsPerSource caps connections from one IP on sip_addr and on
	// https_addr (default 200).
	MaxConnsPerSource int `yaml:"max_conns_per_source"`

	// Connection caps (issue 9 item 11). Each listener admits at most its
	// cap of connections, handshaking or open, and closes the rest at
	// accept, so a flood never takes the descriptors the edge needs for
	// its own links. Defaults are shares of the open-file limit (raised to
	// the hard limit at start) after FDReserve and, with TURN on, its relay
	// sockets (turn.max_allocations, at most a quarter of the limit): two
	// thirds to sip_addr, a sixth to https_addr (each HTTPS request may
	// hold a connection to the core too, so it counts twice).
	//
	// FDLimit is the open-file budget the shares are taken from (default:
	// the process's soft RLIMIT_NOFILE; quickstart, running both tiers in
	// one process, gives each half).
	FDLimit int `yaml:"fd_limit"`
	// FDReserve is kept out of every share, for the edge→core links, logs
	// and the like (default: a tenth of fd_limit, at least 512).
	FDReserve int `yaml:"fd_reserve"`
	// MaxConns caps connections on sip_addr.
	MaxConns int `yaml:"max_conns"`
	// HTTPSMaxConns caps connections on https_addr.
	HTTPSMaxConns int `yaml:"https_max_conns"`
	// SIPUnregisteredTimeout closes a phone connection on sip_addr that has
	// not completed a REGISTER (2xx) within this long of its TLS handshake
	// (default 30s); after that only sip_idle_timeout applies.
	SIPUnregisteredTimeout time.Duration `yaml:"sip_unregistered_timeout"`
	// SIPMaxInFlight bounds the requests of one phone connection the edge
	// works on at once; the connection is not read while it is reached, so
	// TCP holds back a pipelining client (issue 9 item 10; default 32;
	// negative: no bound).
	SIPMaxInFlight int `yaml:"sip_max_inflight"`
	// GCPercent is Go's garbage-collection target for the `edgeway edge`
	// process (what GOGC sets): the heap may grow this many percent over
	// the live heap before the next collection. An edge's live heap is
	// mostly its idle phone connections, so the headroom is memory per
	// idle phone (bench/hold/run). Default 50 (Go's is 100); negative:
	// Go's default; the GOGC environment variable, when set, wins. Only
	// the edge command applies it: quickstart and programs embedding the
	// edge leave their process's collector alone.
	GCPercent int `yaml:"gc_percent"`

	// ActivationFailures is this edge's budget of failed activation-code
	// grants across all sources (issue 9, edge/budget.go).
	ActivationFailures FailureBudget `yaml:"activation_failures"`

	TLS TLSConfig `yaml:"tls"`

	// TURN is the media relay (edge/relay, edge/turn.go); it runs when
	// turn.secret_file is set.
	TURN TURNConfig `yaml:"turn"`
}

// CoreNode is one core node of the ordered list (Config.Cores).
type CoreNode struct {
	// URL is the node's HTTPS base URL (OAuth, keys), reached over mutual
	// TLS. Required.
	URL string `yaml:"url"`
	// MRA is the node's SIP MRA address, host:port (S-11; default: host of
	// url, port 5091).
	MRA string `yaml:"mra,omitempty"`
	// ConfigURL is the node's config-download base URL (the TFTP role,
	// S-16; default: host of url, port 6971).
	ConfigURL string `yaml:"config_url,omitempty"`
	// ServerName is the name verified in the node's certificate (default:
	// host of url).
	ServerName string `yaml:"server_name,omitempty"`
}

// withDefaults fills the derived fields from URL.
func (n CoreNode) withDefaults() CoreNode {
	u, _ := url.Parse(n.URL)
	if u == nil || u.Hostname() == "" {
		return n
	}
	if n.ConfigURL == "" {
		n.ConfigURL = "https://" + net.JoinHostPort(u.Hostname(), "6971")
	}
	if n.MRA == "" {
		n.MRA = net.JoinHostPort(u.Hostname(), "5091")
	}
	if n.ServerName == "" {
		n.ServerName = u.Hostname()
	}
	return n
}

// validate reports the problems of one core entry; key names it in
// messages ("core_url" for the single-core form, "cores[i].url" …).
func (n CoreNode) validate(urlKey, mraKey, configKey string) []error {
	var errs []error
	if u, err := url.Parse(n.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("%s %q must be an https:// URL", urlKey, n.URL))
	}
	if cu, err := url.Parse(n.ConfigURL); err != nil || cu.Scheme != "https" || cu.Host == "" {
		errs = append(errs, fmt.Errorf("%s %q must be an https:// URL", configKey, n.ConfigURL))
	}
	if _, p, err := net.SplitHostPort(n.MRA); err != nil {
		errs = append(errs, fmt.Errorf("%s %q: %w", mraKey, n.MRA, err))
	} else if n, err := strconv.Atoi(p); err != nil || n < 1024 || n > 49151 {
		errs = append(errs, fmt.Errorf("%s port %q: S-11: SIP ports must be in 1024-49151", mraKey, p))
	}
	return errs
}

// CoreList is the ordered list of cores in effect: Cores, or the one core
// the single-core keys name.
func (c Config) CoreList() []CoreNode {
	if len(c.Cores) > 0 {
		return c.Cores
	}
	return []CoreNode{{URL: c.CoreURL, MRA: c.CoreMRA, ConfigURL: c.CoreConfigURL, ServerName: c.CoreServerName}}
}

// TLSConfig names the edge's certificate files.
type TLSConfig struct {
	// PublicCert/PublicKey: the certificate phones see on 8443 and 5061
	// (and TURN over TLS). Or ACME: set one or the other.
	PublicCert string `yaml:"public_cert"`
	PublicKey  string `yaml:"public_key"`
	// ACME takes the public certificate from an ACME CA (edge/acme.go).
	ACME ACMEConfig `yaml:"acme"`
	// MTLSCert/MTLSKey: the client certificate presented to the core; its
	// subject/SAN must match an Expressway-C entry on the core (S-12).
	MTLSCert string `yaml:"mtls_cert"`
	MTLSKey  string `yaml:"mtls_key"`
	// CoreTrust: the CA bundle that verifies the core's Tomcat certificate.
	CoreTrust string `yaml:"core_trust"`
	// PhoneClientCA: the CA bundle (Cisco's manufacturing CAs for MICs,
	// the cluster's CAPF for LSCs) that a client certificate a phone
	// presents on 8443 and 5061 must verify against (edge/bound.go). The
	// edge always asks phones for a certificate and never requires one;
	// with this set, a certificate that does not verify fails the
	// handshake. Unset: any certificate is accepted for binding tokens to
	// it (RFC 8705 §2.2, self-signed certificates: the handshake proves
	// the phone holds its key). A reload (SIGHUP) re-reads the file.
	PhoneClientCA string `yaml:"phone_client_ca"`
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Node == "" {
		c.Node, _ = os.Hostname()
		if c.Node == "" {
			c.Node = "edge"
		}
	}
	if c.HTTPSAddr == "" {
		c.HTTPSAddr = ":8443"
	}
	if c.SIPAddr == "" {
		c.SIPAddr = ":5061"
	}
	if c.OpsAddr == "" {
		c.OpsAddr = DefaultOpsAddr
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.AdvertisedHost == "" {
		host, _, _ := net.SplitHostPort(c.SIPAddr)
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = c.Node
		}
		c.AdvertisedHost = host
	}
	if c.PublicURL == "" {
		_, port, _ := net.SplitHostPort(c.HTTPSAddr)
		c.PublicURL = "https://" + net.JoinHostPort(c.AdvertisedHost, port)
	}
	if len(c.Cores) == 0 {
		// The single-core form: the one core's keys, defaulted.
		if c.CoreURL == "" {
			c.CoreURL = "https://core.edgeway.test:8443"
		}
		u, _ := url.Parse(c.CoreURL)
		if c.CoreConfigURL == "" && u != nil && u.Hostname() != "" {
			c.CoreConfigURL = "https://" + net.JoinHostPort(u.Hostname(), "6971")
		}
		if c.CoreMRA == "" && u != nil {
			c.CoreMRA = net.JoinHostPort(u.Hostname(), "5091")
		}
		if c.CoreServerName == "" && u != nil {
			c.CoreServerName = u.Hostname()
		}
	} else {
		cores := make([]CoreNode, len(c.Cores))
		for i, n := range c.Cores {
			cores[i] = n.withDefaults()
		}
		c.Cores = cores
	}
	if c.TokenIssuer == "" {
		// Every node of a cluster issues tokens under one issuer (core.yaml
		// issuer, the same on each node); by default the first core's URL.
		c.TokenIssuer = c.CoreList()[0].URL
	}
	if c.CoreHealthInterval == 0 {
		c.CoreHealthInterval = 5 * time.Second
	}
	if c.CoreHealthTimeout == 0 {
		c.CoreHealthTimeout = 2 * time.Second
	}
	if c.CoreDownAfter == 0 {
		c.CoreDownAfter = 2
	}
	if c.CoreUpAfter == 0 {
		c.CoreUpAfter = 2
	}
	if c.TokenAudience == "" {
		c.TokenAudience = "urn:edgeway:sip"
	}
	if c.CoreRetry == 0 {
		c.CoreRetry = 10 * time.Second
	}
	if c.SIPIdleTimeout == 0 {
		c.SIPIdleTimeout = 5 * time.Minute
	}
	if c.SIPKeepAlive == 0 {
		c.SIPKeepAlive = 30 * time.Second
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.MaxConnsPerSource == 0 {
		c.MaxConnsPerSource = 200
	}
	c.TLS.ACME = c.TLS.ACME.withDefaults(c)
	c.ActivationFailures = c.ActivationFailures.withDefaults()
	c.TURN = c.TURN.withDefaults(c)
	if c.FDLimit == 0 {
		c.FDLimit = fdlimit.Current()
	}
	limit := c.FDLimit
	if c.FDReserve == 0 {
		c.FDReserve = fdlimit.DefaultReserve(limit)
	}
	turnFDs := 0
	if c.TURN.SecretFile != "" {
		turnFDs = min(c.TURN.MaxAllocations, limit/4)
	}
	if c.MaxConns == 0 {
		c.MaxConns = fdlimit.Share(limit, c.FDReserve, turnFDs, 2, 3, 64)
	}
	if c.HTTPSMaxConns == 0 {
		c.HTTPSMaxConns = fdlimit.Share(limit, c.FDReserve, turnFDs, 1, 6, 64)
	}
	if c.SIPUnregisteredTimeout == 0 {
		c.SIPUnregisteredTimeout = 30 * time.Second
	}
	if c.SIPMaxInFlight == 0 {
		c.SIPMaxInFlight = sipx.DefaultInFlightLimit
	}
	if c.GCPercent == 0 {
		c.GCPercent = DefaultGCPercent
	}
	return c
}

// DefaultGCPercent is the edge's default GCPercent. Against Go's 100 it
// cuts an idle phone's memory on the edge by about 4 KiB (27 → 23 KiB
// with 10,000 phones; bench/hold/results.md) for more frequent
// collections under load.
const DefaultGCPercent = 50

// Validate reports every problem with a defaulted config.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, c.validateCores()...)
	if err := reload.ValidateLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if p, err := url.Parse(c.PublicURL); err != nil || p.Scheme != "https" || p.Host == "" {
		errs = append(errs, fmt.Errorf("public_url %q must be an https:// URL", c.PublicURL))
	}
	if c.OpsAddr != OpsOff {
		if _, _, err := net.SplitHostPort(c.OpsAddr); err != nil {
			errs = append(errs, fmt.Errorf("ops_addr %q: %w (or %q)", c.OpsAddr, err, OpsOff))
		}
	}
	for name, addr := range map[string]string{"https_addr": c.HTTPSAddr, "sip_addr": c.SIPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		}
	}
	switch {
	case c.TLS.ACME.Enabled():
		if c.TLS.PublicCert != "" || c.TLS.PublicKey != "" {
			errs = append(errs, ErrPublicCertForms)
		}
		errs = append(errs, c.TLS.ACME.validate()...)
		// The solver listens on challenge_addr only while a challenge is
		// open; it cannot share a port the edge already serves on.
		_, cp, _ := net.SplitHostPort(c.TLS.ACME.ChallengeAddr)
		for key, addr := range map[string]string{"https_addr": c.HTTPSAddr, "sip_addr": c.SIPAddr, "turn.listen": c.TURN.Listen, "turn.tls_listen": c.TURN.TLSListen} {
			if _, p, err := net.SplitHostPort(addr); err == nil && p == cp && (key == "https_addr" || key == "sip_addr" || c.TURN.SecretFile != "") {
				errs = append(errs, fmt.Errorf("tls.acme.challenge_addr %q shares its port with %s %q: the challenge needs a port of its own", c.TLS.ACME.ChallengeAddr, key, addr))
			}
		}
	case c.TLS.PublicCert == "" || c.TLS.PublicKey == "":
		errs = append(errs, errors.New("tls.public_cert and tls.public_key (or tls.acme) are required (run `edgeway pki init` for a development PKI)"))
	}
	if c.TLS.MTLSCert == "" || c.TLS.MTLSKey == "" || c.TLS.CoreTrust == "" {
		errs = append(errs, errors.New("tls.mtls_cert, tls.mtls_key and tls.core_trust are required (run `edgeway pki init` for a development PKI)"))
	}
	for name, v := range map[string]int{"max_conns_per_source": c.MaxConnsPerSource, "max_conns": c.MaxConns, "https_max_conns": c.HTTPSMaxConns, "fd_reserve": c.FDReserve, "fd_limit": c.FDLimit} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s %d must be positive", name, v))
		}
	}
	if c.SIPUnregisteredTimeout < 0 {
		errs = append(errs, fmt.Errorf("sip_unregistered_timeout %s must be positive", c.SIPUnregisteredTimeout))
	}
	errs = append(errs, c.ActivationFailures.validate()...)
	errs = append(errs, c.TURN.validate()...)
	return errors.Join(errs...)
}

// ErrCoreForms is the refusal of a config that names its cores both ways:
// the cores list and a single-core key.
var ErrCoreForms = errors.New("cores and the single-core keys (core_url, core_mra, core_config_url, core_server_name) are two forms of one setting: use one (with cores, set url, mra, config_url and server_name on each entry)")

// validateCores checks the core list (or the single core) and the health
// check settings.
func (c Config) validateCores() []error {
	var errs []error
	if len(c.Cores) == 0 {
		errs = append(errs, c.CoreList()[0].validate("core_url", "core_mra", "core_config_url")...)
	} else {
		if c.CoreURL != "" || c.CoreMRA != "" || c.CoreConfigURL != "" || c.CoreServerName != "" {
			errs = append(errs, ErrCoreForms)
		}
		seen := make(map[string]int, len(c.Cores))
		for i, n := range c.Cores {
			key := fmt.Sprintf("cores[%d]", i)
			errs = append(errs, n.validate(key+".url", key+".mra", key+".config_url")...)
			mra := strings.ToLower(n.MRA)
			if j, dup := seen[mra]; dup {
				errs = append(errs, fmt.Errorf("%s.mra %q is cores[%d]'s too: list each core once", key, n.MRA, j))
			}
			seen[mra] = i
		}
	}
	if c.CoreHealthInterval <= 0 || c.CoreHealthTimeout <= 0 {
		errs = append(errs, fmt.Errorf("core_health_interval %s and core_health_timeout %s must be positive", c.CoreHealthInterval, c.CoreHealthTimeout))
	}
	if c.CoreDownAfter < 1 || c.CoreUpAfter < 1 {
		errs = append(errs, fmt.Errorf("core_down_after %d and core_up_after %d must be at least 1", c.CoreDownAfter, c.CoreUpAfter))
	}
	return errs
}

// ---- TURN (edge/turn.go, edge/relay) ----

// TURNConfig configures the edge's TURN relay (RFC 8656). See
// deploy/edge.yaml for every key with its default.
type TURNConfig struct {
	// SecretFile holds the secret shared by all edge nodes that signs TURN
	// credentials (internal/turncred, at least 32 bytes). TURN runs, and
	// token responses carry credentials, only when it is set.
	SecretFile string `yaml:"secret_file"`
	// Listen is the TURN address for UDP and TCP (default :3478); TLSListen
	// is TURN over TLS with the public certificate (default :5349).
	Listen    string `yaml:"listen"`
	TLSListen string `yaml:"tls_listen"`
	// PublicHost is the host in the turn:/turns: URLs handed to phones
	// (default: advertised_host).
	PublicHost string `yaml:"public_host"`
	// Realm is the long-term credential realm (default: node).
	Realm string `yaml:"realm"`
	// RelayAddress is the IP advertised in XOR-RELAYED-ADDRESS (default:
	// advertised_host when it is an IP, otherwise its first IPv4 address,
	// resolved when TURN starts). RelayBind is where relay sockets are
	// bound (default 0.0.0.0); RelayPorts their range (default 36000-59999).
	RelayAddress string `yaml:"relay_address"`
	RelayBind    string `yaml:"relay_bind"`
	RelayPorts   string `yaml:"relay_ports"`
	// MaxAllocationsPerDevice (default 4; more → 486) and MaxAllocations
	// (default 10000; more → 508, or 300 with alternate_servers) bound
	// live allocations.
	MaxAllocationsPerDevice int `yaml:"max_allocations_per_device"`
	MaxAllocations          int `yaml:"max_allocations"`
	// AlternateServers are other edges' TURN addresses, "ip:port" (UDP
	// and TCP; the same secret and realm): when this relay holds
	// max_allocations, an authenticated Allocate is answered 300 Try
	// Alternate with the next of them in ALTERNATE-SERVER (round robin;
	// RFC 8656 §7.2, RFC 8489 §10) instead of 508. Default: none.
	AlternateServers []string `yaml:"alternate_servers,omitempty"`
	// MaxBitrate is the relayed bytes per second allowed per allocation in
	// each direction (default 64000); excess datagrams are dropped.
	MaxBitrate int `yaml:"max_bitrate"`
	// AllowedPeers and DeniedPeers are CIDR prefixes (or single
	// addresses) of peers relays may and may not reach (edge/relay/policy.go).
	// By default loopback, unspecified, private (RFC 1918), shared
	// (100.64/10), benchmarking (198.18/15), link-local, multicast and
	// reserved IPv4 addresses, and IPv6 loopback, unspecified, ULA,
	// link-local, site-local and multicast addresses are refused (403), in
	// every spelling (IPv4-mapped, NAT64, 6to4). AllowedPeers lifts that
	// default for the prefixes it names; DeniedPeers refuses more. Neither
	// ever opens the core's addresses or the edge's own listeners.
	AllowedPeers []string `yaml:"allowed_peers,omitempty"`
	DeniedPeers  []string `yaml:"denied_peers,omitempty"`
	// AllowLoopbackPeers is deprecated: it adds 127.0.0.0/8 and ::1 to
	// allowed_peers. Name the loopback addresses you need in allowed_peers
	// instead.
	AllowLoopbackPeers bool `yaml:"allow_loopback_peers,omitempty"`
	// TCPIdleTimeout closes a TURN TCP or TLS connection that holds no
	// allocation for this long: one that never allocates, or whose
	// allocation ended (default 10s).
	TCPIdleTimeout time.Duration `yaml:"tcp_idle_timeout"`
	// RevocationPoll is how often the edge asks the core which refresh
	// token families were revoked, to refuse their TURN credentials (401)
	// and close their allocations (default 2s).
	RevocationPoll time.Duration `yaml:"revocation_poll"`
	// BatchIO reads and writes the TURN UDP listener's datagrams several
	// per system call (recvmmsg/sendmmsg, internal/udpbatch) instead of one
	// recvfrom or sendto each (default true). A datagram is never held back
	// waiting for more. false serves the socket one datagram per call, as
	// before issue 13.
	BatchIO *bool `yaml:"batch_io,omitempty"`
}

func (t TURNConfig) withDefaults(c Config) TURNConfig {
	if t.Listen == "" {
		t.Listen = ":3478"
	}
	if t.TLSListen == "" {
		t.TLSListen = ":5349"
	}
	if t.PublicHost == "" {
		t.PublicHost = c.AdvertisedHost
	}
	if t.Realm == "" {
		t.Realm = c.Node
	}
	if ip := net.ParseIP(c.AdvertisedHost); t.RelayAddress == "" && ip != nil && !ip.IsUnspecified() {
		t.RelayAddress = c.AdvertisedHost
	}
	if t.RelayBind == "" {
		t.RelayBind = "0.0.0.0"
	}
	if t.RelayPorts == "" {
		t.RelayPorts = "36000-59999"
	}
	if t.MaxAllocationsPerDevice == 0 {
		t.MaxAllocationsPerDevice = 4
	}
	if t.MaxAllocations == 0 {
		t.MaxAllocations = 10000
	}
	if t.MaxBitrate == 0 {
		t.MaxBitrate = 64000
	}
	if t.TCPIdleTimeout == 0 {
		t.TCPIdleTimeout = 10 * time.Second
	}
	if t.RevocationPoll == 0 {
		t.RevocationPoll = 2 * time.Second
	}
	if t.BatchIO == nil {
		on := true
		t.BatchIO = &on
	}
	return t
}

func (t TURNConfig) validate() []error {
	var errs []error
	for name, addr := range map[string]string{"turn.listen": t.Listen, "turn.tls_listen": t.TLSListen} {
		if _, p, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		} else if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s %q: bad port", name, addr))
		}
	}
	if t.PublicHost == "" {
		errs = append(errs, errors.New("turn.public_host must not be empty"))
	}
	if t.RevocationPoll < 0 {
		errs = append(errs, errors.New("turn.revocation_poll must be positive"))
	}
	// The relay's own keys: realm, relay address, ports, peers, quotas,
	// alternates, idle timeout (edge/relay/config.go).
	if err := t.relayConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errs
}
