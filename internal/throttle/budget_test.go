package throttle

import (
	"errors"
	"sync"
	"testing"
	"time"
)

type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBudget(t *testing.T) {
	clk := &manualClock{t: time.Unix(1000, 0)}
	b, err := NewBudget(BudgetConfig{Rate: 2, Burst: 3, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Successes spend nothing: any number of attempts pass.
	for range 100 {
		if err := b.Allow(); err != nil {
			t.Fatalf("full budget refused: %v", err)
		}
	}
	for range 3 {
		if err := b.Allow(); err != nil {
			t.Fatal(err)
		}
		b.Spend()
	}
	var te *Error
	if err := b.Allow(); !errors.As(err, &te) || te.Scope != ScopeBudget || te.RetryAfter != 500*time.Millisecond || !errors.Is(err, ErrThrottled) {
		t.Fatalf("spent budget: %v", err)
	}
	clk.Advance(500 * time.Millisecond) // one token back at 2/s
	if err := b.Allow(); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	// Failures in flight when the budget ran dry still spend: debt is
	// paid back before the next attempt.
	for range 5 {
		b.Spend()
	}
	if got := b.Tokens(); got != -4 {
		t.Fatalf("tokens = %v, want -4", got)
	}
	if err := b.Allow(); !errors.As(err, &te) || te.RetryAfter != 2500*time.Millisecond {
		t.Fatalf("in debt: %v", err)
	}
	clk.Advance(2500 * time.Millisecond)
	if err := b.Allow(); err != nil {
		t.Fatalf("debt paid: %v", err)
	}
	// The bucket never holds more than Burst.
	clk.Advance(time.Hour)
	if got := b.Tokens(); got != 3 {
		t.Fatalf("tokens after an hour = %v, want 3", got)
	}
}

func TestBudgetConfig(t *testing.T) {
	for _, c := range []BudgetConfig{{}, {Rate: 1}, {Burst: 1}, {Rate: -1, Burst: 1}} {
		if _, err := NewBudget(c); err == nil {
			t.Errorf("NewBudget(%+v) accepted", c)
		}
	}
}

// Concurrent spenders are all counted.
func TestBudgetConcurrent(t *testing.T) {
	clk := &manualClock{t: time.Unix(1000, 0)}
	b, err := NewBudget(BudgetConfig{Rate: 1, Burst: 10, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _ = b.Allow(); b.Spend() })
	}
	wg.Wait()
	if got := b.Tokens(); got != -40 {
		t.Fatalf("tokens = %v, want -40", got)
	}
}
