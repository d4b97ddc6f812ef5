package core

import (
	"net/http"
	"time"

	"github.com/edgeway/edgeway/internal/httpx"
)

// The HTTP answers every core handler shares (moved out of oauth.go; the
// edge writes the same through internal/httpx).

// writeJSON writes v as JSON no cache may keep (httpx.WriteJSON).
func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

// writeOAuthError writes e as an RFC 6749 §5.2 error response, with
// Retry-After when e asks the client to wait.
func writeOAuthError(w http.ResponseWriter, e *OAuthError) {
	retry := 0
	if e.RetryAfter > 0 {
		retry = int(e.RetryAfter.Round(time.Second)/time.Second) + 1
	}
	httpx.WriteOAuthError(w, e.Status, e.Code, e.Description, retry)
}
