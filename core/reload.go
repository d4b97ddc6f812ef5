package core

import (
	"fmt"
	"time"

	"github.com/edgeway/edgeway/internal/reload"
	"github.com/edgeway/edgeway/mtls"
)

// LiveFields are the core's configuration keys a reload (SIGHUP) applies
// to the running node; every other key that differs needs a restart and
// keeps its old value. log_level is applied by the process (internal/node
// holds the level). Whatever the keys say, a reload re-reads the
// certificate files tls.cert, tls.key and tls.tomcat_trust name (their
// contents, not new paths): new handshakes see the new certificate, open
// connections keep theirs.
var LiveFields = []string{"log_level", "drain_timeout"}

// CheckReload checks cfg for a reload as New checks it at start: the
// defaulted config validates, and the certificate and trust files it
// names load. It changes nothing; its result is what ApplyReload takes.
func (s *Server) CheckReload(cfg Config) (Config, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("core: config: %w", err)
	}
	if _, err := mtls.NewKeyPair(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
		return Config{}, fmt.Errorf("core: tomcat certificate: %w", err)
	}
	if _, err := mtls.NewTrustStore(cfg.TLS.TomcatTrust); err != nil {
		return Config{}, fmt.Errorf("core: tomcat-trust: %w", err)
	}
	return cfg, nil
}

// ApplyReload applies what may change on a live core from cfg (checked by
// CheckReload): drain_timeout, and the certificate and trust files read
// again. It reports the keys that differ, applied or left for a restart.
// An error is a certificate file that changed between the check and now;
// the previous certificate then stays in service.
func (s *Server) ApplyReload(cfg Config) (reload.Changes, error) {
	ch := reload.Split(s.live(s.fileCfg), cfg, LiveFields...)
	s.drainTimeout.Store(int64(cfg.DrainTimeout))
	s.logLevel.Store(&cfg.LogLevel)
	if err := s.kp.Reload(); err != nil {
		return ch, fmt.Errorf("core: tomcat certificate: %w", err)
	}
	if err := s.trust.Reload(); err != nil {
		return ch, fmt.Errorf("core: tomcat-trust: %w", err)
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
