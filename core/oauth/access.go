package oauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// TokenError is why an access token was refused; it maps to RFC 6750
// error="invalid_token" (a SIP 401 on the registrar, an HTTP 401 on the
// config server).
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return e.Reason }

// CheckAccessToken verifies an access token (signature, issuer, audience,
// expiry; S-2) and checks it has not been revoked, alone or with its grant
// (R-2). Infrastructure errors come back unwrapped, so callers answer "try
// later" rather than "bad token".
func (s *Server) CheckAccessToken(ctx context.Context, raw string) (*token.Claims, error) {
	claims, err := s.keys.Verify(ctx, raw)
	if err != nil {
		reason := "token signature, issuer or audience is not valid"
		if errors.Is(err, token.ErrExpired) {
			reason = "token expired"
		} else if errors.Is(err, token.ErrWrongType) {
			reason = "RFC 9068 §4, RFC 8725 §3.11: not an access token (typ must be at+jwt)"
		}
		return nil, &TokenError{Reason: fmt.Sprintf("%s: %v", reason, err)}
	}
	var rv store.Revocation
	if s.feed != nil {
		rv, err = s.feed.revocation(ctx, claims.ID, claims.Family)
	} else {
		rv, err = s.st.TokenRevocation(ctx, claims.ID, claims.Family)
	}
	switch {
	case err != nil:
		return nil, err
	case rv.Revoked:
		return nil, &TokenError{Reason: "token revoked"}
	case rv.FamilyMissing:
		return nil, &TokenError{Reason: "token's grant no longer exists"}
	case rv.FamilyRevoked:
		return nil, &TokenError{Reason: "token's grant revoked"}
	}
	return claims, nil
}
