package oauth

import (
	"time"

	"github.com/edgeway/edgeway/internal/store"
)

// Refresh-token renewal at half of its lifetime (R-3, Unified CM 15).
// Every refresh rotates the refresh token (reuse detection, the refresh
// grace: oauth.go, grace.go); what the rotation does to its expiry depends
// on how much of the lifetime is left:
//
//   - before half of the refresh-token lifetime in force (refresh_token_ttl,
//     Lifetimes.Refresh) has passed, that is while more than half of it is
//     left, the successor keeps the expiry of the token it replaces, so
//     refresh_token_expires_in counts down from one refresh to the next;
//   - from half on, the successor gets a full lifetime from now (renewed).
//
// A phone that refreshes at least once in every half lifetime therefore
// never has to be onboarded again, and one that stops refreshing is cut
// off at the expiry it was last given: a stolen refresh token cannot be
// kept alive beyond it without being used (and so without the rotation's
// reuse detection seeing the theft).

// successorExpiry is the expiry of the refresh token that replaces old at
// now (old has not expired: the store refused it otherwise).
func (s *Server) successorExpiry(old store.RefreshToken, now time.Time) time.Time {
	full := s.ttl.Refresh()
	if renewDue(old.ExpiresAt, now, full) {
		return now.Add(full)
	}
	return old.ExpiresAt
}

// renewDue reports whether half of a refresh token's lifetime has passed at
// now: no more than half of full is left before expires.
func renewDue(expires, now time.Time, full time.Duration) bool {
	return expires.Sub(now) <= full/2
}

// expiresIn is a token's *_expires_in at now: whole seconds left, at
// least 1 (a token the answer carries has not expired).
func expiresIn(expires, now time.Time) int {
	return max(1, int(expires.Sub(now)/time.Second))
}
