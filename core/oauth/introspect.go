package oauth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// IntrospectPath is the RFC 7662 token introspection endpoint. It serves
// the edges and operators' tools, never phones: the caller authenticates
// with an admitted Expressway-C's client certificate (S-12, as the edge's
// mutual TLS to the core) or an admin API token (Authorization: Bearer,
// Config.Admins). The edge does not forward it (edge/edge.go's mux).
const IntrospectPath = "/oauth2/introspect"

// introspectChallenge is the WWW-Authenticate of a 401 from the endpoint.
const introspectChallenge = `Bearer realm="edgeway-introspection"`

// Introspection is an RFC 7662 §2.2 answer. An inactive token is
// {"active": false} and nothing else (§2.2: no detail on why).
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	// Cnf is the certificate an access token is bound to (RFC 8705 §3.2).
	Cnf *token.Confirmation `json:"cnf,omitempty"`
}

// introspectCaller authenticates the caller of the endpoint (RFC 7662
// §2.1): who it is, or the refusal to write.
func (s *Server) introspectCaller(r *http.Request) (string, *OAuthError) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		_, name, err := s.edges.Entry(r.Context(), r.TLS.PeerCertificates[0])
		switch {
		case errors.Is(err, admission.ErrEdgeNotConfigured):
			return "", oauthErr(http.StatusUnauthorized, "invalid_client", "RFC 7662 §2.1, S-12: this edge is no longer a configured Expressway-C")
		case err != nil:
			s.log.Error("checking edge certificate", "err", err, reqid.Attr, reqid.FromRequest(r))
			return "", &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again", RetryAfter: time.Second}
		}
		return "edge " + name, nil
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		return "", oauthErr(http.StatusUnauthorized, "invalid_client",
			"RFC 7662 §2.1: introspection needs an admitted Expressway-C's client certificate or an admin API token (Authorization: Bearer)")
	}
	if s.cfg.Admins == nil {
		return "", oauthErr(http.StatusUnauthorized, "invalid_client", "RFC 7662 §2.1: admin API tokens are not accepted here")
	}
	actor, err := s.cfg.Admins.Authenticate(r.Context(), strings.TrimSpace(raw))
	switch {
	case errors.Is(err, ErrNotAdmin):
		return "", oauthErr(http.StatusUnauthorized, "invalid_client", "RFC 7662 §2.1: the bearer credential is not a valid admin API token")
	case err != nil:
		s.log.Error("checking admin token", "err", err, reqid.Attr, reqid.FromRequest(r))
		return "", &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again", RetryAfter: time.Second}
	}
	return actor, nil
}

// HandleIntrospect is POST /oauth2/introspect (RFC 7662): form
// parameters token (required) and token_type_hint (access_token,
// refresh_token; only an ordering hint, §2.1, so any value is accepted and
// both kinds are looked up by their form). The answer is an Introspection.
func (s *Server) HandleIntrospect(w http.ResponseWriter, r *http.Request) {
	caller, e := s.introspectCaller(r)
	if e != nil {
		if e.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", introspectChallenge)
		}
		WriteError(w, e)
		return
	}
	if e := parseForm(w, r); e != nil {
		WriteError(w, e)
		return
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		WriteError(w, oauthErr(http.StatusBadRequest, "invalid_request", "RFC 7662 §2.1: token is required"))
		return
	}
	var (
		out *Introspection
		err error
	)
	if strings.HasPrefix(raw, refreshPrefix) {
		out, err = s.introspectRefresh(r.Context(), raw)
	} else {
		out, err = s.introspectAccess(r.Context(), raw)
	}
	if err != nil {
		s.log.Error("introspecting a token", "err", err, reqid.Attr, reqid.FromRequest(r))
		WriteError(w, &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again", RetryAfter: time.Second})
		return
	}
	s.log.Debug("token introspected", "caller", caller, "active", out.Active, "sub", out.Sub, reqid.Attr, reqid.FromRequest(r))
	writeJSON(w, http.StatusOK, out)
}

// introspectAccess answers for an access token exactly as the REGISTER
// check (CheckAccessToken) decides: signature, issuer, audience, expiry,
// typ at+jwt (RFC 9068 §4) and revocation of the token or its family.
func (s *Server) introspectAccess(ctx context.Context, raw string) (*Introspection, error) {
	c, err := s.CheckAccessToken(ctx, raw)
	var te *TokenError
	switch {
	case errors.As(err, &te):
		return &Introspection{}, nil
	case err != nil:
		return nil, err
	}
	out := &Introspection{Active: true, TokenType: "Bearer", ClientID: c.ClientID, Username: c.User,
		Sub: c.Subject, Aud: c.Audience, Iss: c.Issuer, Jti: c.ID, Cnf: c.Cnf}
	if out.ClientID == "" {
		out.ClientID = c.Subject // an untyped token of the release before
	}
	if c.ExpiresAt != nil {
		out.Exp = c.ExpiresAt.Unix()
	}
	if c.IssuedAt != nil {
		out.Iat = c.IssuedAt.Unix()
	}
	if c.NotBefore != nil {
		out.Nbf = c.NotBefore.Unix()
	}
	return out, nil
}

// introspectRefresh answers for an opaque refresh token, found by its
// hash: active while it is the family's current token, unexpired, and its
// family is neither revoked nor gone (the revocation state the REGISTER
// check reads).
func (s *Server) introspectRefresh(ctx context.Context, raw string) (*Introspection, error) {
	t, err := s.st.RefreshTokenByHash(ctx, hashSecret(raw))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Introspection{}, nil
	case err != nil:
		return nil, err
	}
	if !t.RotatedAt.IsZero() || !s.now().Before(t.ExpiresAt) {
		return &Introspection{}, nil
	}
	var rv store.Revocation
	if s.feed != nil {
		rv, err = s.feed.revocation(ctx, "", t.Family)
	} else {
		rv, err = s.st.TokenRevocation(ctx, "", t.Family)
	}
	switch {
	case err != nil:
		return nil, err
	case rv.Revoked || rv.FamilyRevoked || rv.FamilyMissing:
		return &Introspection{}, nil
	}
	return &Introspection{Active: true, TokenType: "refresh_token", ClientID: t.Device, Sub: t.Device, Username: t.Username,
		Iss: s.cfg.Issuer, Exp: t.ExpiresAt.Unix(), Iat: t.IssuedAt.Unix()}, nil
}
