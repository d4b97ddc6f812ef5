package core

import (
	"context"
	"fmt"
	"os"
)

// Trust store names (S-8, S-11).
const (
	TrustTomcat    = "tomcat-trust"
	TrustPhoneEdge = "phone-edge-trust"
)

// trustBundle returns a trust store as a PEM bundle: the configured file's
// certificates followed by those uploaded through the admin API.
func (s *Server) trustBundle(ctx context.Context, name string) ([]byte, error) {
	var path string
	switch name {
	case TrustTomcat:
		path = s.cfg.TLS.TomcatTrust
	case TrustPhoneEdge:
		path = s.cfg.TLS.PhoneEdgeTrust
	default:
		return nil, fmt.Errorf("unknown trust store %q", name)
	}
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust store %s: %w", name, err)
	}
	return b, nil
}
