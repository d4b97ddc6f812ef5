package core

import (
	"context"
	"fmt"
	"net/http"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/oauth"
)

// oauthAdmins lets an administrator revoke any token on /oauth2/revoke
// (RFC 7009, R-2): the bearer admin API token is checked by the admin
// API's own Authenticate, and the revocation goes into the admin audit
// log. s.admin is built after the authorization server, before anything
// is served.
func (s *Server) oauthAdmins() *oauth.AdminAuth {
	return &oauth.AdminAuth{
		Authenticate: func(ctx context.Context, bearer string) (string, error) {
			t, terr := s.admin.Authenticate(ctx, bearer)
			switch {
			case terr == nil:
				return admin.TokenActor(t), nil
			case terr.Status == http.StatusServiceUnavailable:
				return "", terr.Err
			}
			return "", fmt.Errorf("%w: %v", oauth.ErrNotAdmin, terr.Err)
		},
		Audit: s.st.Audit,
	}
}
