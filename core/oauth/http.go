package oauth

import (
	"net/http"
	"time"

	"github.com/edgeway/edgeway/internal/httpx"
	"github.com/edgeway/edgeway/internal/throttle"
)

// The HTTP answers of the OAuth endpoints (the edge writes the same
// through internal/httpx).

// writeJSON writes v as JSON no cache may keep (httpx.WriteJSON).
func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

// apiError writes {"error": err} with status, as the admin API does.
func apiError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// WriteError writes e as an RFC 6749 §5.2 error response, with
// Retry-After when e asks the client to wait.
func WriteError(w http.ResponseWriter, e *OAuthError) {
	retry := 0
	if e.RetryAfter > 0 {
		retry = int(e.RetryAfter.Round(time.Second)/time.Second) + 1
	}
	httpx.WriteOAuthError(w, e.Status, e.Code, e.Description, retry)
}

// Logins throttles failed password logins per source and username: the
// password grant's, and the admin API's login.
func (s *Server) Logins() *throttle.Limiter { return s.logins }

// PasswordSlot takes one of the few password checks that may run at once
// (each costs 64 MiB of Argon2id); ok is false when all are busy, and the
// caller tells the client to come back.
func (s *Server) PasswordSlot() (release func(), ok bool) {
	select {
	case s.passwordSlots <- struct{}{}:
		return func() { <-s.passwordSlots }, true
	default:
		return nil, false
	}
}
