package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/fdlimit"
	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
)

// configPath finds --config/-config in args before the flag set is built,
// so the file's values become the flags' defaults (flags override file).
func configPath(args []string) string {
	for i, a := range args {
		for _, p := range []string{"--config=", "-config="} {
			if len(a) > len(p) && a[:len(p)] == p {
				return a[len(p):]
			}
		}
		if (a == "--config" || a == "-config") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func loadYAML(path string, into any) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func coreFlags(fs *flag.FlagSet, c *core.Config) {
	fs.String("config", "", "YAML config file (see deploy/core.yaml); flags override it. SIGHUP reads it again and applies log_level, drain_timeout and the certificate files' contents; other changes wait for a restart (deploy/README.md)")
	fs.StringVar(&c.Node, "node", c.Node, "node name, unique in the cluster (default: host name)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (default ./edgeway-data)")
	fs.StringVar(&c.Store, "store", c.Store, "SQLite database file (default DATA-DIR/core.db)")
	fs.StringVar(&c.SIPAddress, "sip-address", c.SIPAddress, "IP the SIP listeners bind (default 0.0.0.0)")
	fs.IntVar(&c.PhoneOAuthPort, "phone-oauth-port", c.PhoneOAuthPort, "SIP Phone OAuth port, TLS (S-11; default 5090; 1024-49151)")
	fs.IntVar(&c.MRAPort, "mra-port", c.MRAPort, "SIP MRA port, mutual TLS, edges only (S-11; default 5091; 1024-49151)")
	fs.StringVar(&c.HTTPSAddr, "https-addr", c.HTTPSAddr, "OAuth + admin API HTTPS address (default :8443)")
	fs.StringVar(&c.ConfigAddr, "config-addr", c.ConfigAddr, "config download HTTPS address, the TFTP role (default :6971)")
	fs.StringVar(&c.SIPDomain, "sip-domain", c.SIPDomain, "SIP domain of the lines (default edgeway.test)")
	fs.StringVar(&c.Issuer, "issuer", c.Issuer, "access-token issuer (default https://NODE:8443)")
	fs.StringVar(&c.Audience, "audience", c.Audience, "access-token audience (default urn:edgeway:sip)")
	fs.DurationVar(&c.AccessTokenTTL, "access-token-ttl", c.AccessTokenTTL, "access token lifetime (default 60m)")
	fs.DurationVar(&c.RefreshTokenTTL, "refresh-token-ttl", c.RefreshTokenTTL, "refresh token lifetime (default 1440h)")
	fs.Func("refresh-grace", "how long a refresh response lost on the way may be fetched once more by the same device with the same refresh token (RFC 9700 §4.14.2; default 30s, 0 disables, at most 5m)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		c.RefreshGrace = &d
		return nil
	})
	fs.DurationVar(&c.ActivationCodeTTL, "activation-code-ttl", c.ActivationCodeTTL, "activation code validity (default 168h)")
	fs.IntVar(&c.MaxRegisterExpires, "max-register-expires", c.MaxRegisterExpires, "longest binding a REGISTER may ask for, seconds (default 3600)")
	fs.DurationVar(&c.SIPIdleTimeout, "sip-idle-timeout", c.SIPIdleTimeout, "close a silent SIP connection after this long (default 5m)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "bound on every TLS handshake (default 10s)")
	fs.DurationVar(&c.SIPUnregisteredTimeout, "sip-unregistered-timeout", c.SIPUnregisteredTimeout, "close a Phone OAuth connection that has not registered this long after its handshake (default 30s)")
	fs.IntVar(&c.SIPMaxInFlight, "sip-max-inflight", c.SIPMaxInFlight, "requests of one Phone OAuth connection worked on at once; its reads wait beyond (default 32; negative: no bound)")
	fs.IntVar(&c.FDLimit, "fd-limit", c.FDLimit, "open-file budget the connection caps are shares of (default: the soft limit, raised to the hard one at start)")
	fs.IntVar(&c.FDReserve, "fd-reserve", c.FDReserve, "open files kept out of every listener's connection cap (default: a tenth of fd-limit, at least 512)")
	fs.IntVar(&c.PhoneMaxConns, "phone-max-conns", c.PhoneMaxConns, "connections on the Phone OAuth port (default: 60% of the open-file limit after fd-reserve)")
	fs.IntVar(&c.MRAMaxConns, "mra-max-conns", c.MRAMaxConns, "connections on the MRA port (default: 15% of the open-file limit after fd-reserve)")
	fs.IntVar(&c.HTTPSMaxConns, "https-max-conns", c.HTTPSMaxConns, "connections on the HTTPS port (default: 15% of the open-file limit after fd-reserve)")
	fs.IntVar(&c.ConfigMaxConns, "config-max-conns", c.ConfigMaxConns, "connections on the config download port (default: 10% of the open-file limit after fd-reserve)")
	fs.IntVar(&c.MaxConnsPerSource, "max-conns-per-source", c.MaxConnsPerSource, "connections from one IP on the Phone OAuth port (default 200)")
	fs.StringVar(&c.TLS.Cert, "tls-cert", c.TLS.Cert, "Tomcat certificate (PEM)")
	fs.StringVar(&c.TLS.Key, "tls-key", c.TLS.Key, "Tomcat key (PEM)")
	fs.StringVar(&c.TLS.TomcatTrust, "tomcat-trust", c.TLS.TomcatTrust, "tomcat-trust bundle that verifies edge certificates (S-11)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "on SIGTERM, how long to wait for calls and TURN allocations to end while refusing new work, before closing (default 30s; a second signal stops at once; drain_timeout in the config file is reloaded on SIGHUP)")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", c.AdminTokenFile, "admin API token file, created when missing (default DATA-DIR/admin.token)")
}

func edgeFlags(fs *flag.FlagSet, c *edge.Config) {
	fs.String("config", "", "YAML config file (see deploy/edge.yaml); flags override it. SIGHUP reads it again and applies log_level, drain_timeout and the certificate files' contents; other changes wait for a restart (deploy/README.md)")
	fs.StringVar(&c.Node, "node", c.Node, "edge name in logs (default: host name)")
	fs.StringVar(&c.HTTPSAddr, "https-addr", c.HTTPSAddr, "public HTTPS address for phones (default :8443)")
	fs.StringVar(&c.SIPAddr, "sip-addr", c.SIPAddr, "public SIP/TLS address for phones (default :5061)")
	fs.StringVar(&c.AdvertisedHost, "advertised-host", c.AdvertisedHost, "host phones and the core use to reach this edge (Via, Path)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "this edge's HTTPS base URL as phones reach it (default https://ADVERTISED-HOST:PORT)")
	fs.StringVar(&c.CoreURL, "core-url", c.CoreURL, "core HTTPS base URL, reached over mutual TLS (one core; for several, the cores list in the config file)")
	fs.StringVar(&c.CoreConfigURL, "core-config-url", c.CoreConfigURL, "core config-download base URL, reached over mutual TLS (default https://HOST-OF-CORE-URL:6971)")
	fs.StringVar(&c.CoreMRA, "core-mra", c.CoreMRA, "core SIP MRA address host:port (S-11)")
	fs.StringVar(&c.CoreServerName, "core-server-name", c.CoreServerName, "name to verify in the core's certificate (default: host of core-url)")
	fs.StringVar(&c.TokenIssuer, "token-issuer", c.TokenIssuer, "the cores' token issuer, the same on every node (default: the first core's URL)")
	fs.StringVar(&c.TokenAudience, "token-audience", c.TokenAudience, "the core's token audience (default urn:edgeway:sip)")
	fs.DurationVar(&c.SIPIdleTimeout, "sip-idle-timeout", c.SIPIdleTimeout, "close a silent phone connection after this long (default 5m)")
	fs.DurationVar(&c.SIPKeepAlive, "sip-keepalive", c.SIPKeepAlive, "send a CRLF keep-alive down each registered phone's connection this often (default 30s; negative: never)")
	fs.DurationVar(&c.CoreHealthInterval, "core-health-interval", c.CoreHealthInterval, "health-check every core this often, SIP OPTIONS over its MRA connection (default 5s)")
	fs.DurationVar(&c.CoreHealthTimeout, "core-health-timeout", c.CoreHealthTimeout, "bound on one core health check (default 2s)")
	fs.IntVar(&c.CoreDownAfter, "core-down-after", c.CoreDownAfter, "failed health checks in a row that take a core out of use (default 2)")
	fs.IntVar(&c.CoreUpAfter, "core-up-after", c.CoreUpAfter, "good health checks in a row that bring a core back (default 2)")
	fs.DurationVar(&c.CoreRetry, "core-retry", c.CoreRetry, "retry the core this often while it cannot be reached (default 10s)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", c.HandshakeTimeout, "bound on every TLS handshake (default 10s)")
	fs.IntVar(&c.MaxConnsPerSource, "max-conns-per-source", c.MaxConnsPerSource, "connections allowed from one IP on the SIP and HTTPS ports (default 200)")
	fs.IntVar(&c.FDLimit, "fd-limit", c.FDLimit, "open-file budget the connection caps are shares of (default: the soft limit, raised to the hard one at start)")
	fs.IntVar(&c.FDReserve, "fd-reserve", c.FDReserve, "open files kept out of every listener's connection cap (default: a tenth of fd-limit, at least 512)")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "connections on the SIP port (default: 2/3 of fd-limit after fd-reserve and TURN's relay sockets)")
	fs.IntVar(&c.HTTPSMaxConns, "https-max-conns", c.HTTPSMaxConns, "connections on the HTTPS port (default: 1/6 of fd-limit after fd-reserve and TURN's relay sockets)")
	fs.DurationVar(&c.SIPUnregisteredTimeout, "sip-unregistered-timeout", c.SIPUnregisteredTimeout, "close a phone connection that has not registered this long after its handshake (default 30s)")
	fs.IntVar(&c.SIPMaxInFlight, "sip-max-inflight", c.SIPMaxInFlight, "requests of one phone connection worked on at once; its reads wait beyond (default 32; negative: no bound)")
	fs.IntVar(&c.GCPercent, "gc-percent", c.GCPercent, "Go's GC target for this process, as GOGC: heap growth over the live heap before a collection, in percent (default 50; negative: Go's 100; a GOGC environment variable wins)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "on SIGTERM, how long to wait for calls and TURN allocations to end while refusing new work, before closing (default 30s; a second signal stops at once; drain_timeout in the config file is reloaded on SIGHUP)")
	fs.StringVar(&c.TLS.PublicCert, "public-cert", c.TLS.PublicCert, "certificate phones see (PEM)")
	fs.StringVar(&c.TLS.PublicKey, "public-key", c.TLS.PublicKey, "key of the public certificate (PEM)")
	fs.StringVar(&c.TLS.ACME.Directory, "acme-directory", c.TLS.ACME.Directory, "take the public certificate from this ACME CA directory URL instead of --public-cert (tls.acme)")
	fs.StringVar(&c.TLS.ACME.Email, "acme-email", c.TLS.ACME.Email, "ACME account contact address (required with --acme-directory)")
	fs.BoolVar(&c.TLS.ACME.AgreeTerms, "acme-agree-terms", c.TLS.ACME.AgreeTerms, "accept the ACME CA's terms of service (required with --acme-directory)")
	fs.Func("acme-names", "comma-separated names to get ACME certificates for (default: advertised_host)", func(v string) error {
		c.TLS.ACME.Names = strings.Split(v, ",")
		return nil
	})
	fs.StringVar(&c.TLS.ACME.Storage, "acme-storage", c.TLS.ACME.Storage, "folder for the ACME account and certificates (required with --acme-directory)")
	fs.StringVar(&c.TLS.ACME.CARoot, "acme-ca-root", c.TLS.ACME.CARoot, "PEM bundle trusted for a private ACME server's HTTPS instead of the system roots")
	fs.StringVar(&c.TLS.ACME.Challenge, "acme-challenge", c.TLS.ACME.Challenge, "ACME challenge answered: http-01 or tls-alpn-01 (default http-01)")
	fs.StringVar(&c.TLS.ACME.ChallengeAddr, "acme-challenge-addr", c.TLS.ACME.ChallengeAddr, "address listened on while an ACME challenge is open (default :80 for http-01, :443 for tls-alpn-01)")
	fs.StringVar(&c.TLS.MTLSCert, "mtls-cert", c.TLS.MTLSCert, "client certificate for the core (its name must match an Expressway-C entry, S-12)")
	fs.StringVar(&c.TLS.MTLSKey, "mtls-key", c.TLS.MTLSKey, "key of the client certificate")
	fs.StringVar(&c.TLS.CoreTrust, "core-trust", c.TLS.CoreTrust, "CA bundle that verifies the core's certificate")
}

// tierFlags is a tier's command line over its config file: the YAML
// (when --config is given) decoded into a fresh config, then the flags
// addFlags registers, which override it. The tier's log_level is the
// default of --log-level.
type tierFlags[T any] struct {
	name     string
	addFlags func(*flag.FlagSet, *T)
	logLevel func(*T) *string
}

// parse reads the config file and the flags in args. out takes the flag
// set's usage and errors (io.Discard on a reload: they were shown at start).
func (t tierFlags[T]) parse(args []string, out io.Writer) (cfg T, format, prof string, err error) {
	if err := loadYAML(configPath(args), &cfg); err != nil {
		return cfg, "", "", err
	}
	fs := flag.NewFlagSet("edgeway "+t.name, flag.ContinueOnError)
	fs.SetOutput(out)
	t.addFlags(fs, &cfg)
	lv := t.logLevel(&cfg)
	if *lv == "" {
		*lv = "info"
	}
	fs.StringVar(lv, "log-level", *lv, "log level: debug, info, warn, error (default: log_level of the config file, else info; "+
		"SIGHUP re-reads the file, and a --log-level given here keeps winning over it)")
	fmtFlag := fs.String("log-format", "text", "log format: text or json")
	pp := pprofFlag(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, "", "", err
	}
	return cfg, *fmtFlag, *pp, nil
}

// reload is the tier's config as a reload (SIGHUP) reads it: the file
// again, with the same command line over it.
func (t tierFlags[T]) reload(args []string) (*T, string, error) {
	cfg, _, _, err := t.parse(args, io.Discard)
	if err != nil {
		return nil, configPath(args), err
	}
	return &cfg, configPath(args), nil
}

// tierConfig loads a tier's YAML (when --config is given) into cfg, lets
// the flags registered by addFlags override it, and builds the logger.
func tierConfig[T any](ctx context.Context, t tierFlags[T], args []string, cfg *T) (*slog.Logger, error) {
	c, format, prof, err := t.parse(args, os.Stderr)
	if err != nil {
		return nil, err
	}
	*cfg = c
	log, err := newLogger(*t.logLevel(cfg), format)
	if err != nil {
		return nil, err
	}
	return log, servePprof(ctx, prof, log)
}

var (
	coreTier = tierFlags[core.Config]{name: "core", addFlags: coreFlags, logLevel: func(c *core.Config) *string { return &c.LogLevel }}
	edgeTier = tierFlags[edge.Config]{name: "edge", addFlags: edgeFlags, logLevel: func(c *edge.Config) *string { return &c.LogLevel }}
)

// raiseFDLimit lifts the soft open-file limit to the hard one, before the
// tiers' config defaults derive their connection caps from it (issue 9
// item 11).
func raiseFDLimit(log *slog.Logger) {
	l, err := fdlimit.Raise()
	if err != nil {
		log.Warn("cannot raise the open-file limit; connection caps follow the current one", "soft", l.Soft, "hard", l.Hard, "err", err)
		return
	}
	log.Info("open-file limit", "soft", l.Soft, "hard", l.Hard, "soft_before", l.SoftBefore)
}

func logCoreCaps(log *slog.Logger, c core.Config) {
	log.Info("core connection caps", "fd_limit", c.FDLimit, "fd_reserve", c.FDReserve, "phone_max_conns", c.PhoneMaxConns, "mra_max_conns", c.MRAMaxConns,
		"https_max_conns", c.HTTPSMaxConns, "config_max_conns", c.ConfigMaxConns, "max_conns_per_source", c.MaxConnsPerSource,
		"sip_max_inflight", c.SIPMaxInFlight, "sip_unregistered_timeout", c.SIPUnregisteredTimeout)
}

func logEdgeCaps(log *slog.Logger, c edge.Config) {
	log.Info("edge connection caps", "fd_limit", c.FDLimit, "fd_reserve", c.FDReserve, "max_conns", c.MaxConns, "https_max_conns", c.HTTPSMaxConns,
		"max_conns_per_source", c.MaxConnsPerSource, "sip_max_inflight", c.SIPMaxInFlight, "sip_unregistered_timeout", c.SIPUnregisteredTimeout)
}

func runCore(ctx context.Context, args []string, out io.Writer) error {
	var cfg core.Config
	log, err := tierConfig(ctx, coreTier, args, &cfg)
	if err != nil {
		return err
	}
	raiseFDLimit(log)
	cfg = cfg.WithDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	st, err := store.OpenURL(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := node.New(ctx, node.Config{Core: &cfg, Store: st, Log: log, SetLevel: setLogLevel})
	if err != nil {
		return err
	}
	logCoreCaps(log, n.Core.Config())
	if err := n.Bind(ctx, node.Listeners{}); err != nil {
		return err
	}
	return serveDraining(ctx, n, log, func() (node.Reloaded, error) {
		c, file, err := coreTier.reload(args)
		if err != nil {
			return node.Reloaded{}, fmt.Errorf("core config %s: %w", file, err)
		}
		return node.Reloaded{Core: c, CoreFile: file}, nil
	})
}

func runEdge(ctx context.Context, args []string, out io.Writer) error {
	var cfg edge.Config
	log, err := tierConfig(ctx, edgeTier, args, &cfg)
	if err != nil {
		return err
	}
	raiseFDLimit(log)
	n, err := node.New(ctx, node.Config{Edge: &cfg, Log: log, SetLevel: setLogLevel})
	if err != nil {
		return err
	}
	pct, from := edgeGCPercent(n.Edge.Config().GCPercent, os.Getenv("GOGC"))
	if from == "gc_percent" {
		debug.SetGCPercent(pct)
	}
	log.Info("garbage collector", "gc_percent", pct, "from", from)
	logEdgeCaps(log, n.Edge.Config())
	if err := n.Bind(ctx, node.Listeners{}); err != nil {
		return err
	}
	return serveDraining(ctx, n, log, func() (node.Reloaded, error) {
		c, file, err := edgeTier.reload(args)
		if err != nil {
			return node.Reloaded{}, fmt.Errorf("edge config %s: %w", file, err)
		}
		return node.Reloaded{Edge: c, EdgeFile: file}, nil
	})
}

// edgeGCPercent is the GC target the edge process runs with and where it
// comes from: the GOGC environment variable when set (the runtime has
// applied it already), else the config's gc_percent, else Go's default.
func edgeGCPercent(configured int, env string) (int, string) {
	if env != "" {
		if env == "off" {
			return -1, "GOGC"
		}
		if v, err := strconv.Atoi(env); err == nil {
			return v, "GOGC"
		}
		return 100, "GOGC (unparsable: Go's default)"
	}
	if configured > 0 {
		return configured, "gc_percent"
	}
	return 100, "Go's default"
}

func runQuickstart(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "stop" {
		return runQuickstartStop(ctx, args[1:], out)
	}
	fs := flag.NewFlagSet("edgeway quickstart", flag.ContinueOnError)
	dir := fs.String("dir", "edgeway-data", "directory for PKI, configs, store and quickstart.json (reused when it exists; "+
		"core.yaml and edge.yaml there are written at each start and re-read on SIGHUP)")
	coreIP := fs.String("core-ip", "127.0.0.2", "loopback IP for the core (127.0.0.1 where 127.0.0.2 is unavailable)")
	edgeIP := fs.String("edge-ip", "127.0.0.1", "loopback IP for the edge")
	level, format := logFlags(fs)
	prof := pprofFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(*level, *format)
	if err != nil {
		return err
	}
	if err := servePprof(ctx, *prof, log); err != nil {
		return err
	}
	raiseFDLimit(log)
	a := quickstart.DefaultAddrs()
	a.CoreIP, a.EdgeIP = *coreIP, *edgeIP
	if a.CoreIP == a.EdgeIP {
		// Same IP: move the core's HTTPS off the edge's 8443.
		a.CoreHTTPS = 9443
	}
	lay, err := quickstart.Prepare(*dir, a)
	if err != nil {
		return err
	}
	// Both tiers in one process: each takes its connection caps from half
	// the open-file limit (issue 9 item 11).
	lay.Core.FDLimit, lay.Edge.FDLimit = fdlimit.Current()/2, fdlimit.Current()/2
	lay.Core.LogLevel, lay.Edge.LogLevel = *level, *level
	// Another quickstart on these addresses: say so before touching the
	// store it is using (stale bindings, codes, passwords).
	if err := portsFree(lay.Edge.SIPAddr, lay.Edge.HTTPSAddr, lay.Core.HTTPSAddr); err != nil {
		return fmt.Errorf("quickstart: %w (%s)", err, whoHoldsPorts(err, filepath.Join(lay.Dir, "quickstart.json")))
	}
	st, err := store.Open(ctx, lay.Core.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := dropStaleBindings(ctx, st, lay.Edge.SIPAddr, log); err != nil {
		return err
	}
	n, err := node.New(ctx, node.Config{Core: &lay.Core, Store: st, Edge: &lay.Edge, Log: log, SetLevel: setLogLevel})
	if err != nil {
		return err
	}
	pws, err := quickstart.LoadPasswords(lay.Dir)
	if err != nil {
		return err
	}
	devs, users, err := quickstart.ProvisionWithPassword(ctx, st, n.Core.Activation(), pws.Demo)
	if err != nil {
		return err
	}
	admin, err := quickstart.ProvisionAdminWithPassword(ctx, st, pws.Admin)
	if err != nil {
		return err
	}
	logCoreCaps(log, n.Core.Config())
	logEdgeCaps(log, n.Edge.Config())
	// Bind every port before serving anything, so a busy port is reported
	// at once and the edge finds the core listening. The core's SIP ports
	// are the ones `admin node set` left in the store, if any (S-11).
	if err := n.Bind(ctx, node.Listeners{}); err != nil {
		return fmt.Errorf("quickstart: %w (%s)", err, whoHoldsPorts(err, filepath.Join(lay.Dir, "quickstart.json")))
	}
	ls := n.Listeners()
	info := quickstart.Info{
		EdgeHTTPS: "https://" + lay.Edge.HTTPSAddr, EdgeSIP: lay.Edge.SIPAddr,
		CoreHTTPS: "https://" + lay.Core.HTTPSAddr, CoreConfig: "https://" + lay.Core.ConfigAddr,
		CorePhoneOAuth: ls.Core.Phone.Addr().String(), CoreMRA: ls.Core.MRA.Addr().String(),
		CACert: lay.PKI.CACert, AdminTokenFile: lay.Core.AdminTokenFile,
		Domain: quickstart.Domain, Devices: devs, Users: users, Admin: &admin, PID: os.Getpid(),
	}
	if ls.CoreOps != nil && ls.EdgeOps != nil {
		info.CoreOps, info.EdgeOps = ls.CoreOps.Addr().String(), ls.EdgeOps.Addr().String()
	}
	info = lay.WithTURN(info)
	infoPath := filepath.Join(lay.Dir, "quickstart.json")
	if err := quickstart.WriteInfo(infoPath, info); err != nil {
		n.Close()
		return err
	}
	printNextSteps(out, infoPath, info)
	err = serveDraining(ctx, n, log, func() (node.Reloaded, error) {
		return quickstartReload(lay, *level)
	})
	fmt.Fprintf(out, "stopped; state kept in %s\n", lay.Dir)
	return err
}

// quickstartReload reads a quickstart's core.yaml and edge.yaml again for
// a reload (SIGHUP), with what the start set beside them: the halved
// open-file budgets, and --log-level where a file has no log_level. The
// next start writes both files afresh.
func quickstartReload(lay quickstart.Layout, level string) (node.Reloaded, error) {
	r := node.Reloaded{Core: new(core.Config), CoreFile: filepath.Join(lay.Dir, "core.yaml"),
		Edge: new(edge.Config), EdgeFile: filepath.Join(lay.Dir, "edge.yaml")}
	if err := loadYAML(r.CoreFile, r.Core); err != nil {
		return node.Reloaded{}, err
	}
	if err := loadYAML(r.EdgeFile, r.Edge); err != nil {
		return node.Reloaded{}, err
	}
	if r.Core.FDLimit == 0 {
		r.Core.FDLimit = lay.Core.FDLimit
	}
	if r.Edge.FDLimit == 0 {
		r.Edge.FDLimit = lay.Edge.FDLimit
	}
	for _, lv := range []*string{&r.Core.LogLevel, &r.Edge.LogLevel} {
		if *lv == "" {
			*lv = level
		}
	}
	return r, nil
}

// dropStaleBindings removes, before the core loads them, the bindings a
// previous run of this quickstart left: those made on premises (their
// connection was to that process) and those whose Path goes through its
// own edge (the flow token names a connection of that process). Their
// phones are gone with it; until they register again a call to them could
// only fail. Bindings through other edges (bench/hold/run's) are kept.
func dropStaleBindings(ctx context.Context, st store.Store, edgeSIP string, log *slog.Logger) error {
	regs, err := st.Registrations(ctx, "", time.Now())
	if err != nil {
		return fmt.Errorf("quickstart: reading bindings: %w", err)
	}
	var stale []store.RegistrationKey
	for _, r := range regs {
		own := !r.MRA
		for _, p := range r.Path {
			own = own || strings.Contains(p, "@"+edgeSIP+";") || strings.Contains(p, "@"+edgeSIP+">")
		}
		if own {
			stale = append(stale, store.RegistrationKey{AOR: r.AOR, Contact: r.Contact})
		}
	}
	if len(stale) == 0 {
		return nil
	}
	if err := st.ApplyRegistrations(ctx, nil, stale); err != nil {
		return fmt.Errorf("quickstart: dropping the previous run's bindings: %w", err)
	}
	log.Info("dropped the previous run's bindings: their phones' connections ended with it", "bindings", len(stale))
	return nil
}

// whoHoldsPorts says what most likely holds a quickstart's ports: the
// quickstart whose pid quickstart.json names, when it still runs.
func whoHoldsPorts(err error, infoPath string) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return "is another Edgeway running? try --core-ip 127.0.0.1 where 127.0.0.2 is unavailable"
	}
	if info, rerr := quickstart.ReadInfo(infoPath); rerr == nil && info.PID != os.Getpid() && processAlive(info.PID) {
		return fmt.Sprintf("another quickstart (pid %d from %s) is running: stop it with Ctrl-C in its terminal, "+
			"`kill %d` or `edgeway quickstart stop --dir %s`", info.PID, infoPath, info.PID, filepath.Dir(infoPath))
	}
	return "another program holds it, not the quickstart of this directory: `ss -ltnp` names it; " +
		"a quickstart started with `go run … &` and stopped with `kill $!` leaves its server running (kill the edgeway process), " +
		"or choose other addresses with --edge-ip and --core-ip"
}

// runQuickstartStop signals the quickstart whose pid DIR/quickstart.json
// names and waits for it to exit.
func runQuickstartStop(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("edgeway quickstart stop", flag.ContinueOnError)
	dir := fs.String("dir", "edgeway-data", "the quickstart's directory")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for it to exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	infoPath := filepath.Join(*dir, "quickstart.json")
	info, err := quickstart.ReadInfo(infoPath)
	if err != nil {
		return fmt.Errorf("quickstart stop: %w", err)
	}
	if !processAlive(info.PID) {
		fmt.Fprintf(out, "no quickstart running: pid %d from %s has exited\n", info.PID, infoPath)
		return nil
	}
	if err := terminate(info.PID); err != nil {
		return fmt.Errorf("quickstart stop: signalling pid %d: %w", info.PID, err)
	}
	deadline := time.NewTimer(*wait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for processAlive(info.PID) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("quickstart stop: pid %d still running %s after SIGTERM", info.PID, *wait)
		case <-tick.C:
		}
	}
	fmt.Fprintf(out, "stopped quickstart pid %d; state kept in %s\n", info.PID, *dir)
	return nil
}

func printNextSteps(out io.Writer, infoPath string, info quickstart.Info) {
	fmt.Fprintf(out, `
Edgeway is running on loopback.
  edge  HTTPS %-28s SIP/TLS %s
  core  HTTPS %-28s Phone OAuth %s  MRA (mTLS) %s
  operations (Prometheus /metrics, /healthz, /readyz): core http://%s  edge http://%s
  everything a script needs: %s

Demo devices (activation codes are one-time, valid 168 h):
`, info.EdgeHTTPS, info.EdgeSIP, info.CoreHTTPS, info.CorePhoneOAuth, info.CoreMRA, info.CoreOps, info.EdgeOps, infoPath)
	for _, d := range info.Devices {
		where := "on-prem"
		if d.MRA {
			where = "MRA"
		}
		fmt.Fprintf(out, "  %-16s %-5s line %s@%s  %-7s code %s\n", d.Name, d.Model, d.Line, d.Domain, where, d.ActivationCode)
	}
	for _, u := range info.Users {
		fmt.Fprintf(out, "  user %s password %s (on-prem soft client login only, S-18; kept in passwords.json across restarts)\n", u.Username, u.Password)
	}
	if info.Admin != nil {
		fmt.Fprintf(out, "  admin API account %s password %s (the admin CLI uses %s)\n", info.Admin.Username, info.Admin.Password, info.AdminTokenFile)
		fmt.Fprintf(out, "  web administration %s/ui/ (log in as %s with that password)\n", info.CoreHTTPS, info.Admin.Username)
	}
	var mra []quickstart.Device
	for _, d := range info.Devices {
		if d.MRA {
			mra = append(mra, d)
		}
	}
	if len(mra) > 0 {
		d := mra[0]
		fmt.Fprintf(out, `
Next, in another terminal:
  ./edgeway phone --quickstart %s --device %s --code %s
      onboard through the edge, register over mTLS to the core, refresh, Ctrl-C un-registers
  ./edgeway admin --quickstart %s registrations
  ./edgeway admin --quickstart %s expressway find
`, infoPath, d.Name, d.ActivationCode, infoPath, infoPath)
		if len(mra) > 1 {
			b := mra[1]
			fmt.Fprintf(out, `
A call with SRTP media relayed by the edge's TURN server (each phone keeps its tokens in phones/ beside quickstart.json):
  ./edgeway phone --quickstart %s --device %s --answer        # terminal 1
  ./edgeway phone --quickstart %s --device %s --call %s --talk 3s
      prints packets sent/received, loss, reordering and jitter at hang-up
`, infoPath, b.Name, infoPath, d.Name, b.Line)
		}
		fmt.Fprintf(out, `
A load test (provisions its own phones through the admin API):
  ./edgeway bench register --quickstart %s --phones 200 --duration 10s
`, infoPath)
	}
}

// serveDraining serves a bound node until ctx ends (SIGTERM or Ctrl-C),
// then drains it (internal/node Drain: not ready, no new connections,
// calls and TURN allocations may end, up to drain_timeout) before it
// stops. A second SIGTERM or Ctrl-C during the drain stops at once.
// Meanwhile each SIGHUP reloads the configuration that load reads
// (node.Reload: what is safe applies, nothing changes on an error).
func serveDraining(ctx context.Context, n *node.Node, log *slog.Logger, load func() (node.Reloaded, error)) error {
	// SIGHUP is caught before anything is served, so that a node that
	// answers (its ops address, say) never dies of one.
	stopReloads := reloadOnHangup(n, load)
	defer stopReloads()
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Serve(sctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	again, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := n.Drain(again, n.DrainTimeout()); errors.Is(err, context.Canceled) {
		log.Info("drain: second signal, stopping at once")
	}
	cancel()
	return <-done
}

// reloadOnHangup reloads n's configuration on each SIGHUP, one at a time,
// until the returned stop is called, which returns once the goroutine has
// ended (a reload under way finishes first).
func reloadOnHangup(n *node.Node, load func() (node.Reloaded, error)) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// Errors are logged and counted by Reload.
				_, _ = n.Reload(ctx, load)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-ended
	}
}

// portsFree reports the first of addrs something already listens on (TCP).
func portsFree(addrs ...string) error {
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		ln.Close()
	}
	return nil
}
