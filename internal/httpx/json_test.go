package httpx

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteOAuthError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteOAuthError(rec, http.StatusTooManyRequests, "slow_down", "too fast", 3)
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d", rec.Code)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache", "Retry-After": "3"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["error"] != "slow_down" || body["error_description"] != "too fast" || len(body) != 2 {
		t.Fatalf("body %v, want the RFC 6749 §5.2 fields only", body)
	}
	rec = httptest.NewRecorder()
	WriteOAuthError(rec, http.StatusBadRequest, "invalid_request", "x", 0)
	if v, ok := rec.Header()["Retry-After"]; ok {
		t.Fatalf("Retry-After %v sent without a delay", v)
	}
}
