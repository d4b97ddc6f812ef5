package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/edgeway/edgeway/internal/httpx"
	"github.com/edgeway/edgeway/internal/throttle"
	"github.com/edgeway/edgeway/internal/token"
)

// FailureBudget is the edge's global budget of failed activation-code
// grants (issue 9): a token bucket that every activation grant the core
// answers 400 invalid_grant spends one token of, whatever its source, and
// that refills at Rate per second up to Burst. While it is spent the edge
// answers activation grants itself, 429 slow_down with Retry-After,
// without contacting the core. Successful grants spend nothing, so bulk
// onboarding with the right codes is never slowed down by it; other
// grants (refresh tokens) are never refused by it.
type FailureBudget struct {
	// Rate is the failed activation grants per second the budget refills
	// (default 10).
	Rate float64 `yaml:"rate"`
	// Burst is the failed grants the budget holds when full (default 100).
	Burst int `yaml:"burst"`
}

func (b FailureBudget) withDefaults() FailureBudget {
	if b.Rate == 0 {
		b.Rate = 10
	}
	if b.Burst == 0 {
		b.Burst = 100
	}
	return b
}

func (b FailureBudget) validate() []error {
	if b.Rate <= 0 || b.Burst < 1 {
		return []error{fmt.Errorf("activation_failures: rate (%g) must be positive and burst (%d) at least 1", b.Rate, b.Burst)}
	}
	return nil
}

// tokenHandler serves POST /oauth2/token: activation-code grants go through
// the failure budget to activation, everything else straight to other.
// The body, already bounded to MaxOAuthBody (an oversized one got 413
// before this), is read to find the grant type and handed on unchanged.
func (s *Server) tokenHandler(budget *throttle.Budget, activation, other http.Handler) http.Handler {
	var spent atomic.Bool // logged once per episode, not per refusal
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOAuthBody))
		if err != nil {
			writeEdgeOAuthError(w, http.StatusBadRequest, "invalid_request", "unreadable or oversized request body (RFC 6749 §3.2)", 0)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		r.TransferEncoding = nil
		if !isActivationGrant(r, body) {
			other.ServeHTTP(w, r)
			return
		}
		s.metrics.Activation(true)
		if err := budget.Allow(); err != nil {
			s.metrics.Activation(false)
			retry := 1
			if te := (*throttle.Error)(nil); errors.As(err, &te) {
				retry = te.RetryAfterSeconds()
			}
			if !spent.Swap(true) {
				s.log.Warn("failed activation grants over budget: refusing activation grants at the edge until it refills",
					"budget", budget.String(), "retry_after_s", retry)
			}
			writeEdgeOAuthError(w, http.StatusTooManyRequests, "slow_down",
				"too many failed activation attempts through this edge; retry later", retry)
			return
		}
		if spent.Swap(false) {
			s.log.Info("activation failure budget refilled: activation grants reach the core again")
		}
		activation.ServeHTTP(w, r)
	})
}

// isActivationGrant reports whether a token request is an activation-code
// grant, read the way the core reads it: a form body (RFC 6749 §3.2) whose
// grant_type is the activation-code grant.
func isActivationGrant(r *http.Request, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	form, err := url.ParseQuery(string(body))
	return err == nil && form.Get("grant_type") == token.GrantTypeActivationCode
}

// spendOnFailure spends one token of budget when the core refused an
// activation grant with 400 invalid_grant: a wrong, used, expired, revoked
// or locked code, or an unknown device. The body is put back as read.
func spendOnFailure(budget *throttle.Budget, res *http.Response) error {
	if res.StatusCode != http.StatusBadRequest {
		return nil
	}
	head, err := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if err != nil {
		return fmt.Errorf("edge: reading the token error response: %w", err)
	}
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), res.Body), res.Body}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(head, &e) == nil && e.Error == "invalid_grant" {
		budget.Spend()
	}
	return nil
}

// writeEdgeOAuthError writes an RFC 6749 §5.2 error from the edge itself.
func writeEdgeOAuthError(w http.ResponseWriter, status int, code, desc string, retryAfter int) {
	httpx.WriteOAuthError(w, status, code, desc, retryAfter)
}
