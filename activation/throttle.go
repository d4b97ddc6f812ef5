package activation

import (
	"errors"
	"fmt"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ThrottleConfig tunes redemption throttling; zero fields take the defaults.
// See the package documentation for the rules.
type ThrottleConfig struct {
	MaxFailures int           // failures allowed before back-off starts; default 5
	BaseDelay   time.Duration // first lock; default 1s, doubling per further failure
	MaxDelay    time.Duration // cap; default 15m — no lock lasts longer
	Forget      time.Duration // failure history forgotten after this quiet time; default 1h
	MaxEntries  int           // entries per LRU (sources, devices); default 100000
}

// Throttle defaults.
const (
	DefaultMaxFailures = 5
	DefaultBaseDelay   = time.Second
	DefaultMaxDelay    = 15 * time.Minute
	DefaultForget      = time.Hour
	DefaultMaxEntries  = 100_000
)

func (c ThrottleConfig) withDefaults() (ThrottleConfig, error) {
	if c.MaxFailures < 0 || c.BaseDelay < 0 || c.MaxDelay < 0 || c.Forget < 0 || c.MaxEntries < 0 {
		return c, errors.New("activation: negative throttle setting")
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.BaseDelay == 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.Forget == 0 {
		c.Forget = DefaultForget
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.BaseDelay > c.MaxDelay {
		return c, fmt.Errorf("activation: throttle BaseDelay %v exceeds MaxDelay %v", c.BaseDelay, c.MaxDelay)
	}
	if c.Forget < c.MaxDelay {
		return c, fmt.Errorf("activation: throttle Forget %v is shorter than MaxDelay %v", c.Forget, c.MaxDelay)
	}
	return c, nil
}

// ErrThrottled is what every *ThrottledError unwraps to, for errors.Is.
var ErrThrottled = errors.New("activation: too many failed attempts")

// ThrottledError is returned by Redeem while the source, or the device for
// a source that has failed before, is locked out.
type ThrottledError struct {
	RetryAfter time.Duration // until the lock ends
	Scope      string        // "source" or "device"
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("activation: too many failed attempts for this %s; retry after %v",
		e.Scope, e.RetryAfter.Round(time.Millisecond))
}

// Unwrap returns ErrThrottled.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds (at least 1),
// for an HTTP Retry-After header.
func (e *ThrottledError) RetryAfterSeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Throttle scopes.
const (
	ScopeSource = "source"
	ScopeDevice = "device"
)

// record is the failure history of one source or device.
type record struct {
	failures int
	last     time.Time // time of the last failure
}

// throttle holds the failure histories in two bounded LRUs. mu makes each
// check-and-count step atomic across both caches.
type throttle struct {
	cfg     ThrottleConfig
	mu      sync.Mutex
	sources *lru.Cache[string, record]
	devices *lru.Cache[string, record]
}

func newThrottle(cfg ThrottleConfig) (*throttle, error) {
	src, err := lru.New[string, record](cfg.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("activation: %w", err)
	}
	dev, err := lru.New[string, record](cfg.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("activation: %w", err)
	}
	return &throttle{cfg: cfg, sources: src, devices: dev}, nil
}

// lockDuration is BaseDelay·2^(failures−MaxFailures) capped at MaxDelay, or
// zero below MaxFailures.
func (t *throttle) lockDuration(failures int) time.Duration {
	if failures < t.cfg.MaxFailures {
		return 0
	}
	d := t.cfg.BaseDelay
	for i := failures - t.cfg.MaxFailures; i > 0; i-- {
		if d >= t.cfg.MaxDelay/2 {
			return t.cfg.MaxDelay
		}
		d *= 2
	}
	return min(d, t.cfg.MaxDelay)
}

// remaining is how long r keeps its key locked after now.
func (t *throttle) remaining(r record, now time.Time) time.Duration {
	d := t.lockDuration(r.failures)
	if d == 0 {
		return 0
	}
	if left := r.last.Add(d).Sub(now); left > 0 {
		return left
	}
	return 0
}

// get returns the live history of key (the zero record when it has none or
// it has been forgotten).
func (t *throttle) get(c *lru.Cache[string, record], key string, now time.Time) record {
	r, ok := c.Get(key)
	if !ok {
		return record{}
	}
	if now.Sub(r.last) >= t.cfg.Forget {
		c.Remove(key)
		return record{}
	}
	return r
}

// ticket is an admitted attempt, provisionally counted as a failure.
type ticket struct {
	source, device string
	now            time.Time
	prevSrc        record
	prevDev        record
}

// admit checks the locks for source and device and, when the attempt may
// proceed, counts it as a failure until settled with succeed or undo.
func (t *throttle) admit(source, device string, now time.Time) (ticket, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	src := t.get(t.sources, source, now)
	if left := t.remaining(src, now); left > 0 {
		return ticket{}, &ThrottledError{RetryAfter: left, Scope: ScopeSource}
	}
	dev := t.get(t.devices, device, now)
	if src.failures > 0 {
		if left := t.remaining(dev, now); left > 0 {
			return ticket{}, &ThrottledError{RetryAfter: left, Scope: ScopeDevice}
		}
	}
	tk := ticket{source: source, device: device, now: now, prevSrc: src, prevDev: dev}
	t.sources.Add(source, record{failures: src.failures + 1, last: now})
	t.devices.Add(device, record{failures: dev.failures + 1, last: now})
	return tk, nil
}

// succeed clears the histories of the ticket's source and device.
func (t *throttle) succeed(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sources.Remove(tk.source)
	t.devices.Remove(tk.device)
}

// undo takes back the provisional failure of an attempt that ended without
// a verdict (store or context error).
func (t *throttle) undo(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.undoOne(t.sources, tk.source, tk.prevSrc, tk.now)
	t.undoOne(t.devices, tk.device, tk.prevDev, tk.now)
}

func (t *throttle) undoOne(c *lru.Cache[string, record], key string, prev record, now time.Time) {
	r, ok := c.Peek(key)
	if !ok {
		return
	}
	switch {
	case r.failures == prev.failures+1 && r.last.Equal(now):
		// Untouched since admit: restore exactly.
		if prev.failures == 0 {
			c.Remove(key)
		} else {
			c.Add(key, prev)
		}
	case r.failures > 1:
		r.failures--
		c.Add(key, r)
	default:
		c.Remove(key)
	}
}

// lens returns the number of tracked sources and devices.
func (t *throttle) lens() (sources, devices int) {
	return t.sources.Len(), t.devices.Len()
}
