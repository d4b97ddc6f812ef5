package httpx

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// WriteJSON writes v as a JSON response that no cache may keep (RFC 6749
// §5.1 asks it of token responses; Edgeway's other JSON answers hold
// tokens, codes or configuration as well).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteOAuthError writes an RFC 6749 §5.2 error response; retryAfter,
// when positive, is sent as Retry-After in seconds (RFC 9110 §10.2.3).
func WriteOAuthError(w http.ResponseWriter, status int, code, description string, retryAfter int) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	WriteJSON(w, status, map[string]string{"error": code, "error_description": description})
}
