package throttle

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ScopeBudget is the Scope of a refusal by a Budget: too many failures
// across all sources.
const ScopeBudget = "budget"

// BudgetConfig tunes a Budget.
type BudgetConfig struct {
	Rate  float64          // failures per second the budget refills; > 0
	Burst int              // failures it holds when full; ≥ 1
	Now   func() time.Time // default time.Now
}

// Budget is a token bucket of failures shared by every source: each failure
// spends one token, the bucket refills at Rate up to Burst, and attempts
// are refused while it holds less than one token. It budgets failures,
// not attempts, so any number of attempts that succeed pass untouched.
//
// Failures are spent when they are known, after the attempt was allowed,
// so attempts in flight when the bucket runs dry still fail and still
// spend: the bucket then goes into debt, which is paid back before the
// next attempt is allowed. Over any interval T the failures spent are
// therefore at most Burst + Rate·T plus the attempts still in flight at
// its end; a burst of concurrent failures is not free, it refuses
// attempts for longer. Safe for concurrent use.
type Budget struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64   // may be negative: debt
	last   time.Time // when tokens was last brought up to date
}

// NewBudget returns a full Budget.
func NewBudget(c BudgetConfig) (*Budget, error) {
	if c.Rate <= 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate) || c.Burst < 1 {
		return nil, errors.New("throttle: a budget needs a positive rate and a burst of at least 1")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Budget{rate: c.Rate, burst: float64(c.Burst), now: c.Now, tokens: float64(c.Burst), last: c.Now()}, nil
}

// refill brings tokens up to now; b.mu is held.
func (b *Budget) refill() {
	now := b.now()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// Allow returns nil when an attempt may go ahead, or an *Error with Scope
// ScopeBudget and the time until the budget holds one token again. It
// spends nothing: call Spend when the attempt has failed.
func (b *Budget) Allow() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	if b.tokens >= 1 {
		return nil
	}
	wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	return &Error{RetryAfter: max(wait, time.Millisecond), Scope: ScopeBudget}
}

// Spend counts one failure.
func (b *Budget) Spend() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	b.tokens--
}

// Tokens returns the failures the budget holds now (negative: debt).
func (b *Budget) Tokens() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill()
	return b.tokens
}

// String describes the budget, for logs.
func (b *Budget) String() string {
	return fmt.Sprintf("%g failures/s, burst %g", b.rate, b.burst)
}
