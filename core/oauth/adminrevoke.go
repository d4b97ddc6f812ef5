package oauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/store"
)

// RFC 7009 revocation by an administrator (R-2, issue 15). POST
// /oauth2/revoke without credentials is a client revoking its own token:
// whoever holds a token may revoke it (a refresh token takes its family
// with it, an access token only itself). With `Authorization: Bearer
// <admin API token>` (checked exactly as the admin API checks it) an
// administrator revokes ANY token by value: a refresh token's whole
// family, or an access token (its jti) and its family, so the phone that
// held it can neither refresh nor register. Each such revocation is
// audited as "oauth.revoke", naming the family and jti, never the token.
//
// Refusals: a credential that is not a valid admin API token is 401
// invalid_client (RFC 6749 §5.2; nothing is revoked, the request is not
// treated as a client's own); an administrator's request that came through
// an edge is 401 invalid_client as well (the admin API is not reachable
// through an edge; the edge refuses such a request itself, and drops
// Authorization from everything it forwards). An unknown or invalid token
// is 200 (RFC 7009 §2.2), as for clients.

// ErrNotAdmin marks a bearer token that is not a valid admin API token
// (AdminAuth.Authenticate).
var ErrNotAdmin = errors.New("oauth: not a valid admin API token")

// AdminAuth lets administrators revoke on /oauth2/revoke (Config.Admins).
// It keeps this package apart from core/admin: the core passes the admin
// API's own check in.
type AdminAuth struct {
	// Authenticate checks a raw bearer admin API token exactly as the
	// admin API does and names its holder for the audit log. A refusal
	// wraps ErrNotAdmin; any other error is the store's (503).
	Authenticate func(ctx context.Context, bearer string) (actor string, err error)
	// Audit records an administrative change.
	Audit func(ctx context.Context, e store.AuditEntry) error
}

// ActionOAuthRevoke is the audit action of an administrator's RFC 7009
// revocation.
const ActionOAuthRevoke = "oauth.revoke"

// Token type hints of RFC 7009 §2.1 (and §4.1.2's registry).
const (
	HintAccessToken  = "access_token"
	HintRefreshToken = "refresh_token"
)

// checkTokenTypeHint refuses a token_type_hint this server does not
// revoke (RFC 7009 §2.2.1 unsupported_token_type); the two it knows only
// order the search (§2.1), and a refresh token is told from an access
// token by its prefix anyway.
func checkTokenTypeHint(hint string) *OAuthError {
	switch hint {
	case "", HintAccessToken, HintRefreshToken:
		return nil
	}
	return oauthErr(http.StatusBadRequest, "unsupported_token_type",
		"RFC 7009 §2.2.1: token_type_hint %q is not a token type this server revokes (access_token, refresh_token)", hint)
}

// adminBearer reads the request's credentials for an administrator's
// revocation: the actor, or the refusal.
func (s *Server) adminBearer(r *http.Request) (string, *OAuthError) {
	notAdmin := func(why string) *OAuthError {
		return oauthErr(http.StatusUnauthorized, "invalid_client", "RFC 7009 §2.1, RFC 6749 §5.2: %s; nothing was revoked", why)
	}
	p, perr := s.PeerOf(r)
	if perr != nil {
		return "", perr
	}
	if p.MRA {
		return "", notAdmin("an administrator's revocation is not reachable through an edge (the admin API is not): revoke on the core")
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || s.cfg.Admins == nil {
		return "", notAdmin("the only credential /oauth2/revoke takes is an admin API token (Authorization: Bearer)")
	}
	actor, err := s.cfg.Admins.Authenticate(r.Context(), raw)
	switch {
	case errors.Is(err, ErrNotAdmin):
		return "", notAdmin("the bearer token is not a valid admin API token")
	case err != nil:
		s.log.Error("checking an admin API token on /oauth2/revoke", "err", err, reqid.Attr, reqid.FromRequest(r))
		return "", &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again", RetryAfter: time.Second}
	}
	return actor, nil
}

// handleAdminRevoke is /oauth2/revoke with an Authorization header.
func (s *Server) handleAdminRevoke(w http.ResponseWriter, r *http.Request, raw string) {
	actor, oe := s.adminBearer(r)
	if oe != nil {
		if oe.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgeway-admin", error="invalid_token"`)
		}
		WriteError(w, oe)
		return
	}
	if err := s.adminRevoke(r.Context(), actor, raw); err != nil {
		s.log.Error("administrator's revocation", "err", err, reqid.Attr, reqid.FromRequest(r))
		WriteError(w, &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again", RetryAfter: time.Second})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// adminRevoke revokes what raw names: a refresh token's family, or an
// access token and its family. A token that names nothing (unknown,
// malformed, badly signed, expired) revokes nothing and is no error (RFC
// 7009 §2.2); a family revoked already is not revoked or audited again.
func (s *Server) adminRevoke(ctx context.Context, actor, raw string) error {
	now := s.now()
	var jti, family, device, what string
	if strings.HasPrefix(raw, refreshPrefix) {
		// Rotating marks it used (a revoked token is used up); its family
		// is what is revoked.
		t, err := s.st.RotateRefreshToken(ctx, hashSecret(raw), now, nil)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRevoked):
			return nil
		case err != nil && !errors.Is(err, store.ErrAlreadyUsed) && !errors.Is(err, store.ErrExpired):
			return err
		}
		family, device, what = t.Family, t.Device, "refresh token"
	} else {
		c, err := s.keys.Verify(ctx, raw)
		if err != nil {
			return nil
		}
		if err := s.st.RevokeAccessToken(ctx, c.ID, c.ExpiresAt.Time); err != nil {
			return err
		}
		if err := s.NoteRevoked(ctx, store.ChangeToken, c.ID); err != nil {
			s.log.Error("reading back an access token revocation", "err", err)
		}
		jti, family, device, what = c.ID, c.Family, c.Subject, "access token"
	}
	if family != "" {
		if err := s.st.RevokeFamily(ctx, family, now); err != nil {
			return err
		}
		if err := s.NoteRevoked(ctx, store.ChangeFamily, family); err != nil {
			s.log.Error("reading back a family revocation", "err", err)
		}
	}
	detail := what + " of device " + device + ": family " + orNone(family)
	if jti != "" {
		detail += ", jti " + jti
	}
	s.log.Info("token revoked by an administrator (RFC 7009)", "actor", actor, "device", device, "family", family, "jti", jti, reqid.Attr, reqid.From(ctx))
	if s.cfg.Admins.Audit != nil {
		if err := s.cfg.Admins.Audit(ctx, store.AuditEntry{At: now, Actor: actor, Action: ActionOAuthRevoke, Detail: detail}); err != nil {
			s.log.Error("audit", "action", ActionOAuthRevoke, "err", err)
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
