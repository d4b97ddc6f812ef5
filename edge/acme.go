package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// ACME challenge types the edge answers (RFC 8555 §8.3, RFC 8737).
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// ACMEConfig takes the public certificate (the one phones see on
// https_addr, sip_addr and turn.tls_listen) from an ACME CA through
// certmagic instead of from tls.public_cert/public_key. See
// deploy/edge.yaml for every key. The edge→core client certificate
// (tls.mtls_cert) stays from the private CA: the core matches its names
// (S-12).
type ACMEConfig struct {
	// Directory is the CA's ACME directory URL (RFC 8555 §7.1.1).
	// Setting it turns ACME on.
	Directory string `yaml:"directory"`
	// Email is the account contact the CA may write to about the
	// certificates. Required: without one certmagic would ask for it on
	// standard input.
	Email string `yaml:"email"`
	// AgreeTerms must be true: it says the operator accepts the CA's
	// terms of service, which account creation asserts (RFC 8555 §7.3).
	AgreeTerms bool `yaml:"agree_terms"`
	// Names are the DNS names (or IP addresses, RFC 8738) to get
	// certificates for, one certificate each (default: advertised_host).
	// A handshake without SNI gets the first.
	Names []string `yaml:"names,omitempty"`
	// CARoot is a PEM bundle trusted for the ACME server's own HTTPS, in
	// place of the system roots: for a private ACME server (optional).
	CARoot string `yaml:"ca_root"`
	// Storage is the folder that keeps the account, keys and certificates
	// (certmagic's file storage). Edges that share it share one account
	// and certificate, and take turns renewing it (certmagic locks in
	// the folder). Required.
	Storage string `yaml:"storage"`
	// Challenge is the challenge type answered: http-01 (default) or
	// tls-alpn-01.
	Challenge string `yaml:"challenge"`
	// ChallengeAddr is host:port the edge listens on while a challenge is
	// open; the CA validates on port 80 (http-01) or 443 (tls-alpn-01),
	// so it must receive what arrives there (default ":80" for http-01,
	// ":443" for tls-alpn-01).
	ChallengeAddr string `yaml:"challenge_addr"`
}

// Enabled reports whether ACME is configured.
func (a ACMEConfig) Enabled() bool { return a.Directory != "" }

func (a ACMEConfig) withDefaults(c Config) ACMEConfig {
	if !a.Enabled() {
		return a
	}
	if len(a.Names) == 0 && c.AdvertisedHost != "" {
		a.Names = []string{c.AdvertisedHost}
	}
	if a.Challenge == "" {
		a.Challenge = ChallengeHTTP01
	}
	if a.ChallengeAddr == "" {
		switch a.Challenge {
		case ChallengeHTTP01:
			a.ChallengeAddr = ":80"
		case ChallengeTLSALPN01:
			a.ChallengeAddr = ":443"
		}
	}
	return a
}

// ErrPublicCertForms refuses a config that sets both the public
// certificate files and ACME: one source for the public certificate.
var ErrPublicCertForms = errors.New("tls.public_cert/tls.public_key and tls.acme are two sources of the public certificate: set one")

func (a ACMEConfig) validate() []error {
	var errs []error
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("tls.acme.directory %q must be an https:// URL (RFC 8555 §6.1)", a.Directory))
	}
	if !a.AgreeTerms {
		errs = append(errs, errors.New("tls.acme.agree_terms must be true: creating an ACME account accepts the CA's terms of service (RFC 8555 §7.3)"))
	}
	if a.Email == "" {
		errs = append(errs, errors.New("tls.acme.email is required: the ACME account's contact (RFC 8555 §7.3)"))
	}
	if len(a.Names) == 0 {
		errs = append(errs, errors.New("tls.acme.names: no name to get a certificate for"))
	}
	for _, n := range a.Names {
		if !certmagic.SubjectQualifiesForCert(n) {
			errs = append(errs, fmt.Errorf("tls.acme.names: %q is not a name or address a certificate can be issued for", n))
		}
	}
	if a.Storage == "" {
		errs = append(errs, errors.New("tls.acme.storage is required: the folder that keeps the ACME account and certificates"))
	}
	switch a.Challenge {
	case ChallengeHTTP01, ChallengeTLSALPN01:
	default:
		errs = append(errs, fmt.Errorf("tls.acme.challenge %q: want %s or %s", a.Challenge, ChallengeHTTP01, ChallengeTLSALPN01))
	}
	if _, p, err := net.SplitHostPort(a.ChallengeAddr); err != nil {
		errs = append(errs, fmt.Errorf("tls.acme.challenge_addr %q: %w", a.ChallengeAddr, err))
	} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		errs = append(errs, fmt.Errorf("tls.acme.challenge_addr %q: bad port", a.ChallengeAddr))
	}
	return errs
}

// acmeCerts is the public certificate from ACME: certmagic obtains it
// when the edge starts (or loads it from storage), renews it in the
// background and swaps the renewal in; every handshake asks it for the
// current certificate, so open connections keep theirs and new ones get
// the new one, without a restart.
type acmeCerts struct {
	cfg   ACMEConfig
	log   *slog.Logger
	roots *x509.CertPool
	magic atomic.Pointer[certmagic.Config]
	cache *certmagic.Cache

	// renewCheck and renewRatio override certmagic's maintenance
	// interval (10m) and renewal window (the last third of a
	// certificate's lifetime) when set: tests.
	renewCheck time.Duration
	renewRatio float64
}

func newACMECerts(cfg ACMEConfig, log *slog.Logger) (*acmeCerts, error) {
	a := &acmeCerts{cfg: cfg, log: log}
	if cfg.CARoot != "" {
		pem, err := os.ReadFile(cfg.CARoot)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.ca_root: %w", err)
		}
		a.roots = x509.NewCertPool()
		if !a.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme.ca_root %s: no PEM certificate in it", cfg.CARoot)
		}
	}
	if err := os.MkdirAll(cfg.Storage, 0o700); err != nil {
		return nil, fmt.Errorf("tls.acme.storage: %w", err)
	}
	return a, nil
}

// start builds certmagic's cache (its maintenance goroutine renews in the
// background) and gets a certificate for every name: from storage when
// one is there and fresh, from the CA otherwise. It fails when a name has
// none, so the edge never serves phones without a certificate. stop ends
// the maintenance.
func (a *acmeCerts) start(ctx context.Context) error {
	nop := zap.NewNop()
	var magic *certmagic.Config
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		RenewCheckInterval: a.renewCheck,
		Logger:             nop,
	})
	magic = certmagic.New(a.cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: a.cfg.Storage},
		RenewalWindowRatio: a.renewRatio,
		DefaultServerName:  a.cfg.Names[0],
		Logger:             nop,
		OnEvent:            a.onEvent,
	})
	host, port, _ := net.SplitHostPort(a.cfg.ChallengeAddr)
	p, _ := strconv.Atoi(port)
	iss := certmagic.ACMEIssuer{
		CA:                      a.cfg.Directory,
		TestCA:                  a.cfg.Directory,
		Email:                   a.cfg.Email,
		Agreed:                  a.cfg.AgreeTerms,
		TrustedRoots:            a.roots,
		ListenHost:              host,
		DisableHTTPChallenge:    a.cfg.Challenge != ChallengeHTTP01,
		DisableTLSALPNChallenge: a.cfg.Challenge != ChallengeTLSALPN01,
		Logger:                  nop,
	}
	if a.cfg.Challenge == ChallengeHTTP01 {
		iss.AltHTTPPort = p
	} else {
		iss.AltTLSALPNPort = p
	}
	magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(magic, iss)}
	a.magic.Store(magic)
	if err := magic.ManageSync(ctx, a.cfg.Names); err != nil {
		a.stop()
		return fmt.Errorf("edge: ACME certificate for %v from %s: %w", a.cfg.Names, a.cfg.Directory, err)
	}
	return nil
}

func (a *acmeCerts) stop() {
	if a.cache != nil {
		a.cache.Stop()
		a.cache = nil
	}
	a.magic.Store(nil)
}

// onEvent logs certmagic's certificate events.
func (a *acmeCerts) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		a.log.Info("ACME certificate obtained", "names", data["identifier"], "renewal", data["renewal"], "issuer", data["issuer"])
	case "cert_failed":
		a.log.Warn("ACME certificate not obtained", "names", data["identifier"], "renewal", data["renewal"], "remaining", data["remaining"], "err", data["error"])
	case "cert_ocsp_revoked":
		a.log.Warn("ACME certificate revoked", "names", data["identifier"])
	}
	return nil
}

// errNoACMECert is the handshake error before the certificate is there.
var errNoACMECert = errors.New("edge: the ACME certificate is not there yet")

// GetCertificate gives a handshake the current certificate for its SNI
// (tls.acme.names[0] without one).
func (a *acmeCerts) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m := a.magic.Load()
	if m == nil {
		return nil, errNoACMECert
	}
	return m.GetCertificate(hello)
}

// renew renews every name's certificate now, whether due or not, and
// swaps the new ones in for new handshakes.
func (a *acmeCerts) renew(ctx context.Context) error {
	m := a.magic.Load()
	if m == nil {
		return errNoACMECert
	}
	var errs []error
	for _, name := range a.cfg.Names {
		old := a.cache.AllMatchingCertificates(name)
		if err := m.RenewCertSync(ctx, name, true); err != nil {
			errs = append(errs, fmt.Errorf("renewing %s: %w", name, err))
			continue
		}
		cur, err := m.CacheManagedCertificate(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("loading renewed %s: %w", name, err))
			continue
		}
		var stale []string
		for _, c := range old {
			if c.Hash() != cur.Hash() {
				stale = append(stale, c.Hash())
			}
		}
		a.cache.Remove(stale)
	}
	return errors.Join(errs...)
}

// RenewPublicCertificate renews the ACME certificates now, due or not,
// and swaps them in: new handshakes get the new certificate, open
// connections keep theirs. certmagic renews on its own as expiry nears;
// this is for operators' tooling and tests. It fails when the public
// certificate does not come from ACME.
func (s *Server) RenewPublicCertificate(ctx context.Context) error {
	a, ok := s.public.(*acmeCerts)
	if !ok {
		return errors.New("edge: the public certificate does not come from ACME (tls.acme)")
	}
	return a.renew(ctx)
}
