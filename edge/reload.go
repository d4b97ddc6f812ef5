package edge

import (
	"fmt"
	"time"

	"github.com/edgeway/edgeway/internal/reload"
	"github.com/edgeway/edgeway/mtls"
)

// LiveFields are the edge's configuration keys a reload (SIGHUP) applies
// to the running node; every other key that differs needs a restart and
// keeps its old value. log_level is applied by the process (internal/node
// holds the level). Whatever the keys say, a reload re-reads the
// certificate files tls.public_cert and tls.public_key (unless the
// certificate comes from ACME, which renews it itself), tls.mtls_cert,
// tls.mtls_key, tls.core_trust and tls.phone_client_ca name (their
// contents, not new paths; setting or clearing phone_client_ca needs a
// restart):
// new handshakes — phones' to the edge, the edge's to its cores — see the
// new certificate, open connections keep theirs.
var LiveFields = []string{"log_level", "drain_timeout"}

// CheckReload checks cfg for a reload as New checks it at start: the
// defaulted config validates, and the certificate and trust files it
// names load. It changes nothing; its result is what ApplyReload takes.
func (s *Server) CheckReload(cfg Config) (Config, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("edge: config: %w", err)
	}
	if !cfg.TLS.ACME.Enabled() {
		if _, err := mtls.NewKeyPair(cfg.TLS.PublicCert, cfg.TLS.PublicKey); err != nil {
			return Config{}, fmt.Errorf("edge: public certificate: %w", err)
		}
	}
	if _, err := mtls.NewKeyPair(cfg.TLS.MTLSCert, cfg.TLS.MTLSKey); err != nil {
		return Config{}, fmt.Errorf("edge: mTLS client certificate: %w", err)
	}
	if _, err := mtls.NewTrustStore(cfg.TLS.CoreTrust); err != nil {
		return Config{}, fmt.Errorf("edge: core trust: %w", err)
	}
	if cfg.TLS.PhoneClientCA != "" {
		if _, err := mtls.NewTrustStore(cfg.TLS.PhoneClientCA); err != nil {
			return Config{}, fmt.Errorf("edge: phone_client_ca: %w", err)
		}
	}
	return cfg, nil
}

// ApplyReload applies what may change on a live edge from cfg (checked by
// CheckReload): drain_timeout, and the certificate and trust files read
// again. It reports the keys that differ, applied or left for a restart.
// An error is a certificate file that changed between the check and now;
// the previous certificate then stays in service.
func (s *Server) ApplyReload(cfg Config) (reload.Changes, error) {
	ch := reload.Split(s.Config(), cfg, LiveFields...)
	s.drainTimeout.Store(int64(cfg.DrainTimeout))
	s.logLevel.Store(&cfg.LogLevel)
	if kp, ok := s.public.(*mtls.KeyPair); ok {
		if err := kp.Reload(); err != nil {
			return ch, fmt.Errorf("edge: public certificate: %w", err)
		}
	}
	if err := s.client.Reload(); err != nil {
		return ch, fmt.Errorf("edge: mTLS client certificate: %w", err)
	}
	if err := s.trust.Reload(); err != nil {
		return ch, fmt.Errorf("edge: core trust: %w", err)
	}
	if s.phoneTrust != nil {
		if err := s.phoneTrust.Reload(); err != nil {
			return ch, fmt.Errorf("edge: phone_client_ca: %w", err)
		}
	}
	return ch, nil
}

// live overlays the fields a reload changed on the config New took.
func (s *Server) live(c Config) Config {
	if d := time.Duration(s.drainTimeout.Load()); d > 0 {
		c.DrainTimeout = d
	}
	if p := s.logLevel.Load(); p != nil {
		c.LogLevel = *p
	}
	return c
}
