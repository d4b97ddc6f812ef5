package throttle

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxFailures = 5
	DefaultBaseDelay   = time.Second
	DefaultMaxDelay    = 15 * time.Minute
	DefaultForget      = time.Hour
	DefaultMaxEntries  = 100_000
	DefaultMaxInFlight = 32
)

// InFlightRetryAfter is the RetryAfter of a refusal with Scope ScopeInFlight.
const InFlightRetryAfter = time.Second

// Scopes of an *Error: what refused the attempt.
const (
	ScopeSource   = "source"    // the source is locked
	ScopeSubject  = "subject"   // the subject is locked and the source has failed before
	ScopeInFlight = "in-flight" // the source already has MaxInFlight attempts in flight
)

// Config tunes a Limiter; zero fields take the defaults. See the package
// documentation for the rules.
type Config struct {
	MaxFailures int              // failures allowed before back-off; default 5
	BaseDelay   time.Duration    // first lock; default 1s, doubling per further failure
	MaxDelay    time.Duration    // cap on any lock; default 15m
	Forget      time.Duration    // history forgotten after this quiet time; default 1h; must be >= MaxDelay
	MaxEntries  int              // entries per LRU (sources, subjects); default 100000
	MaxInFlight int              // concurrent attempts per source; default 32
	Now         func() time.Time // default time.Now
}

func (c Config) withDefaults() (Config, error) {
	if c.MaxFailures < 0 || c.BaseDelay < 0 || c.MaxDelay < 0 || c.Forget < 0 || c.MaxEntries < 0 || c.MaxInFlight < 0 {
		return c, errors.New("throttle: negative setting")
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
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.BaseDelay > c.MaxDelay {
		return c, fmt.Errorf("throttle: BaseDelay %v exceeds MaxDelay %v", c.BaseDelay, c.MaxDelay)
	}
	if c.Forget < c.MaxDelay {
		return c, fmt.Errorf("throttle: Forget %v is shorter than MaxDelay %v", c.Forget, c.MaxDelay)
	}
	return c, nil
}

// ErrThrottled is what every *Error unwraps to, for errors.Is.
var ErrThrottled = errors.New("throttle: too many attempts")

// Error is a refused attempt: which lock refused it and when to come back.
type Error struct {
	RetryAfter time.Duration // until the lock ends (InFlightRetryAfter for ScopeInFlight)
	Scope      string        // ScopeSource, ScopeSubject or ScopeInFlight
}

func (e *Error) Error() string {
	what := "too many failed attempts from this source"
	switch e.Scope {
	case ScopeSubject:
		what = "too many failed attempts on this subject"
	case ScopeInFlight:
		what = "too many concurrent attempts from this source"
	case ScopeBudget:
		what = "too many failed attempts from all sources"
	}
	return fmt.Sprintf("throttle: %s; retry after %v", what, e.RetryAfter.Round(time.Millisecond))
}

// Unwrap returns ErrThrottled.
func (e *Error) Unwrap() error { return ErrThrottled }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds (at least 1),
// for an HTTP Retry-After header.
func (e *Error) RetryAfterSeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

// record is the failure history of one source or subject.
type record struct {
	failures int
	last     time.Time // time of the last failure
}

// Limiter throttles attempts by source and subject. It is safe for
// concurrent use.
type Limiter struct {
	cfg Config

	// mu makes every check-and-update step atomic across the three
	// structures below.
	mu       sync.Mutex
	sources  *lru.Cache[string, record] // by SourceKey
	subjects *lru.Cache[string, record]
	inFlight map[string]int // by SourceKey; an entry is removed when its count returns to 0
}

// New returns a Limiter with cfg (zero fields take the defaults).
func New(cfg Config) (*Limiter, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	src, err := lru.New[string, record](cfg.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	sub, err := lru.New[string, record](cfg.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return &Limiter{cfg: cfg, sources: src, subjects: sub, inFlight: make(map[string]int)}, nil
}

// SourceKey is the key a source address is throttled under: an IPv4 address
// (also when written IPv4-mapped, "::ffff:192.0.2.1") as itself, any other
// IPv6 address as its /64 prefix ("2001:db8:1:2::/64"; a zone is dropped),
// and a string that is not an IP address verbatim.
func SourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip // unreachable for a valid IPv6 address
	}
	return p.String()
}

// Begin admits one attempt by source (an IP address string, keyed by
// SourceKey; unparsable strings are used verbatim) on subject (a device
// name, a username). It refuses with an *Error when the source is locked;
// when the subject is locked and this source has at least one recorded
// failure; or when the source already has MaxInFlight attempts in flight.
// A refusal changes nothing: it neither counts as a failure nor extends a
// lock.
//
// An admitted attempt must be ended with exactly one of Fail, Succeed or
// Abandon; later calls are no-ops, so `defer a.Abandon()` is a safe guard.
func (l *Limiter) Begin(source, subject string) (*Attempt, error) {
	key := SourceKey(source)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	src := l.get(l.sources, key, now)
	if left := l.remaining(src, now); left > 0 {
		return nil, &Error{RetryAfter: left, Scope: ScopeSource}
	}
	if src.failures > 0 {
		sub := l.get(l.subjects, subject, now)
		if left := l.remaining(sub, now); left > 0 {
			return nil, &Error{RetryAfter: left, Scope: ScopeSubject}
		}
	}
	if l.inFlight[key] >= l.cfg.MaxInFlight {
		return nil, &Error{RetryAfter: InFlightRetryAfter, Scope: ScopeInFlight}
	}
	l.inFlight[key]++
	return &Attempt{l: l, source: key, subject: subject}, nil
}

// Attempt is one admitted attempt, in flight until ended.
type Attempt struct {
	l       *Limiter
	source  string // SourceKey of the source
	subject string
	ended   atomic.Bool
}

// Source returns the key the attempt's source is throttled under (see
// SourceKey).
func (a *Attempt) Source() string { return a.source }

// Subject returns the subject the attempt was admitted on.
func (a *Attempt) Subject() string { return a.subject }

// Ended reports whether the attempt has been ended.
func (a *Attempt) Ended() bool { return a == nil || a.ended.Load() }

// Fail ends the attempt and counts one failure for its source and one for
// its subject, at the current time.
func (a *Attempt) Fail() { a.end(outcomeFail) }

// Succeed ends the attempt and clears the failure histories of its source
// and its subject.
func (a *Attempt) Succeed() { a.end(outcomeSucceed) }

// Abandon ends the attempt without a verdict (an infrastructure error, a
// cancelled request): nothing is counted.
func (a *Attempt) Abandon() { a.end(outcomeAbandon) }

type outcome int

const (
	outcomeFail outcome = iota
	outcomeSucceed
	outcomeAbandon
)

func (a *Attempt) end(o outcome) {
	if a == nil || !a.ended.CompareAndSwap(false, true) {
		return
	}
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.inFlight[a.source]; n > 1 {
		l.inFlight[a.source] = n - 1
	} else {
		delete(l.inFlight, a.source)
	}
	switch o {
	case outcomeFail:
		now := l.cfg.Now()
		l.countFailure(l.sources, a.source, now)
		l.countFailure(l.subjects, a.subject, now)
	case outcomeSucceed:
		l.sources.Remove(a.source)
		l.subjects.Remove(a.subject)
	}
}

func (l *Limiter) countFailure(c *lru.Cache[string, record], key string, now time.Time) {
	r := l.get(c, key, now)
	r.failures++
	if now.After(r.last) {
		r.last = now
	}
	c.Add(key, r)
}

// lockDuration is BaseDelay·2^(failures−MaxFailures) capped at MaxDelay, or
// zero below MaxFailures.
func (l *Limiter) lockDuration(failures int) time.Duration {
	if failures < l.cfg.MaxFailures {
		return 0
	}
	d := l.cfg.BaseDelay
	for i := failures - l.cfg.MaxFailures; i > 0; i-- {
		if d >= l.cfg.MaxDelay/2 {
			return l.cfg.MaxDelay
		}
		d *= 2
	}
	return min(d, l.cfg.MaxDelay)
}

// remaining is how long r keeps its key locked after now.
func (l *Limiter) remaining(r record, now time.Time) time.Duration {
	d := l.lockDuration(r.failures)
	if d == 0 {
		return 0
	}
	if left := r.last.Add(d).Sub(now); left > 0 {
		return left
	}
	return 0
}

// get returns the live history of key: the zero record when it has none or
// it has been quiet for Forget (it is then dropped).
func (l *Limiter) get(c *lru.Cache[string, record], key string, now time.Time) record {
	r, ok := c.Get(key)
	if !ok {
		return record{}
	}
	if now.Sub(r.last) >= l.cfg.Forget {
		c.Remove(key)
		return record{}
	}
	return r
}

// ForgetSubject drops the failure history of subject (its secret was
// replaced: an activation code re-issued), so a source that failed on the
// old secret is not held back by the subject lock on the new one.
func (l *Limiter) ForgetSubject(subject string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subjects.Remove(subject)
}

// lens returns the number of tracked sources, subjects and sources with
// attempts in flight (for tests).
func (l *Limiter) lens() (sources, subjects, inFlight int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sources.Len(), l.subjects.Len(), len(l.inFlight)
}
