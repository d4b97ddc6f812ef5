package activation

import (
	"fmt"
	"time"

	"github.com/edgeway/edgeway/internal/throttle"
)

// ThrottleConfig tunes redemption throttling; zero fields take the defaults.
// See the package documentation and internal/throttle for the rules.
type ThrottleConfig struct {
	MaxFailures int           // failures allowed before back-off starts; default 5
	BaseDelay   time.Duration // first lock; default 1s, doubling per further failure
	MaxDelay    time.Duration // cap; default 15m — no lock lasts longer
	Forget      time.Duration // failure history forgotten after this quiet time; default 1h
	MaxEntries  int           // entries per LRU (sources, devices); default 100000
	MaxInFlight int           // concurrent redemptions per source; default 32
}

// Throttle defaults.
const (
	DefaultMaxFailures = throttle.DefaultMaxFailures
	DefaultBaseDelay   = throttle.DefaultBaseDelay
	DefaultMaxDelay    = throttle.DefaultMaxDelay
	DefaultForget      = throttle.DefaultForget
	DefaultMaxEntries  = throttle.DefaultMaxEntries
	DefaultMaxInFlight = throttle.DefaultMaxInFlight
)

// ErrThrottled is what every *ThrottledError unwraps to, for errors.Is.
var ErrThrottled = throttle.ErrThrottled

// ThrottledError is returned by Redeem and Attempt while the source, or the
// device for a source that has failed before, is locked out, or while the
// source has too many redemptions in flight. It is throttle.Error, so
// errors.As with a *ThrottledError matches it.
type ThrottledError = throttle.Error

// Throttle scopes (ThrottledError.Scope).
const (
	ScopeSource   = throttle.ScopeSource   // the source address (or IPv6 /64) is locked
	ScopeDevice   = throttle.ScopeSubject  // the device is locked, and the source has failed before
	ScopeInFlight = throttle.ScopeInFlight // the source has MaxInFlight redemptions in flight
)

// newLimiter maps c onto a throttle.Limiter using the service clock.
func newLimiter(c ThrottleConfig, now func() time.Time) (*throttle.Limiter, error) {
	l, err := throttle.New(throttle.Config{
		MaxFailures: c.MaxFailures,
		BaseDelay:   c.BaseDelay,
		MaxDelay:    c.MaxDelay,
		Forget:      c.Forget,
		MaxEntries:  c.MaxEntries,
		MaxInFlight: c.MaxInFlight,
		Now:         now,
	})
	if err != nil {
		return nil, fmt.Errorf("activation: %w", err)
	}
	return l, nil
}
