package activation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// wrongCode is a well-formed code that differs from c.
func wrongCode(c Code, i int) string {
	w := fmt.Sprintf("%016d", i)
	if w == c.Digits() {
		w = fmt.Sprintf("%016d", i+1)
	}
	return w
}

// Issue 9: wrong guesses from distinct sources (so the per-source throttle
// never applies) lock the device's code at the budget; the right code is
// then refused as locked, and re-issuing gives a working code and a fresh
// budget.
func TestDeviceBudgetAcrossSources(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{DeviceBudget: DeviceBudget{MaxWrongGuesses: 4}})
	is := issue(t, s, "SEPB")
	for i := range 4 {
		_, err := s.Redeem(ctx, fmt.Sprintf("198.51.100.%d", i+1), "SEPB", wrongCode(is.Code, i))
		var ge *GuessError
		if !errors.As(err, &ge) || !errors.Is(err, ErrUnknown) || ge.Failures != i+1 || ge.Locked != (i == 3) {
			t.Fatalf("wrong guess %d: %v", i+1, err)
		}
	}
	if _, err := s.Redeem(ctx, "203.0.113.9", "SEPB", is.Code.String()); !errors.Is(err, ErrLocked) {
		t.Fatalf("right code after the budget = %v, want ErrLocked", err)
	}
	cs, err := s.List(ctx, "SEPB")
	if err != nil || len(cs) != 1 || cs[0].LockedAt.IsZero() {
		t.Fatalf("list = %+v, %v", cs, err)
	}
	again := issue(t, s, "SEPB")
	if _, err := s.Redeem(ctx, "198.51.100.77", "SEPB", wrongCode(again.Code, 7)); err == nil {
		t.Fatal("wrong code accepted")
	}
	if _, err := s.Redeem(ctx, "203.0.113.9", "SEPB", again.Code.String()); err != nil {
		t.Fatalf("re-issued code = %v", err)
	}
}

// Malformed codes cannot match any code: they cost the source, not the
// device's budget.
func TestDeviceBudgetIgnoresMalformed(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{DeviceBudget: DeviceBudget{MaxWrongGuesses: 2}})
	is := issue(t, s, "SEPM")
	for i := range 5 {
		if _, err := s.Redeem(ctx, fmt.Sprintf("198.51.100.%d", i+1), "SEPM", "12ab"); !errors.Is(err, ErrMalformed) {
			t.Fatalf("malformed = %v", err)
		}
	}
	if _, err := s.Redeem(ctx, "203.0.113.9", "SEPM", is.Code.String()); err != nil {
		t.Fatalf("right code after malformed guesses = %v", err)
	}
}

// Concurrent wrong guesses from many sources never overshoot: exactly the
// budget is evaluated, every other guess is refused as locked.
func TestDeviceBudgetConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	is := issue(t, s, "SEPK")
	const n = 80
	var (
		mu              sync.Mutex
		guesses, locked int
		wg              sync.WaitGroup
		start           = make(chan struct{})
		unexpected      []error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := s.Redeem(ctx, fmt.Sprintf("10.9.%d.%d", i/250, i%250+1), "SEPK", wrongCode(is.Code, i))
			mu.Lock()
			defer mu.Unlock()
			var ge *GuessError
			switch {
			case errors.As(err, &ge):
				guesses++
			case errors.Is(err, ErrLocked):
				locked++
			default:
				unexpected = append(unexpected, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(unexpected) > 0 || guesses != DefaultMaxWrongGuesses || locked != n-DefaultMaxWrongGuesses {
		t.Fatalf("evaluated %d, locked %d, other %v; want %d and %d", guesses, locked, unexpected, DefaultMaxWrongGuesses, n-DefaultMaxWrongGuesses)
	}
}

func TestDeviceBudgetValidation(t *testing.T) {
	if _, err := New(openStore(t), testSecret, Config{DeviceBudget: DeviceBudget{MaxWrongGuesses: -1}}); err == nil {
		t.Fatal("negative budget accepted")
	}
}
