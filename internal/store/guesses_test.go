package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Issue 9: wrong guesses naming a device are counted in the store, so the
// budget holds across sources, edges and core nodes; the guess that reaches
// the budget locks the device's outstanding code, which then refuses even
// the right code until a new one is issued.
func TestGuessBudgetLocksDevice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		budget := GuessBudget{Max: 3, Window: time.Hour}
		right := []byte("right")
		putCode(t, s, "c1", "SEPL", right)
		putCode(t, s, "other", "SEPO", []byte("theirs"))

		wrong := [][]byte{[]byte("w1"), []byte("theirs"), []byte("w3")} // unknown, another device's, unknown
		for i, h := range wrong {
			_, err := s.RedeemActivationCode(ctx, h, "SEPL", t0.Add(time.Duration(i)*time.Minute), budget)
			var ge *GuessError
			if !errors.As(err, &ge) || ge.Device != "SEPL" || ge.Failures != i+1 || ge.Locked != (i == 2) {
				t.Fatalf("wrong guess %d: %v (%+v)", i+1, err, ge)
			}
			if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrWrongDevice) {
				t.Fatalf("wrong guess %d does not wrap its verdict: %v", i+1, err)
			}
		}
		// Locked: the right code is refused, and so is every other guess; none
		// of them is looked up or counted.
		for _, h := range [][]byte{right, []byte("w4"), []byte("theirs")} {
			if _, err := s.RedeemActivationCode(ctx, h, "SEPL", t0.Add(time.Hour), budget); !errors.Is(err, ErrLocked) {
				t.Fatalf("guess on a locked device = %v, want ErrLocked", err)
			}
		}
		cs, err := s.ListActivationCodes(ctx, "SEPL")
		must(t, err)
		if len(cs) != 1 || !cs[0].LockedAt.Equal(t0.Add(2*time.Minute)) || !cs[0].UsedAt.IsZero() {
			t.Fatalf("codes of SEPL = %+v", cs)
		}
		// Another device's code is untouched by guesses naming SEPL.
		if c, err := s.RedeemActivationCode(ctx, []byte("theirs"), "SEPO", t0, budget); err != nil || c.ID != "other" {
			t.Fatalf("other device's code = %+v, %v", c, err)
		}

		// Re-issue: revoke, reset, a new code; the budget starts again at 1.
		must(t, s.RevokeDeviceActivationCodes(ctx, "SEPL", t0.Add(2*time.Hour)))
		must(t, s.ResetActivationGuesses(ctx, "SEPL"))
		putCode(t, s, "c2", "SEPL", []byte("right-2"))
		var ge *GuessError
		if _, err := s.RedeemActivationCode(ctx, []byte("w5"), "SEPL", t0.Add(2*time.Hour), budget); !errors.As(err, &ge) || ge.Failures != 1 || ge.Locked {
			t.Fatalf("first wrong guess after re-issue = %v", err)
		}
		if c, err := s.RedeemActivationCode(ctx, []byte("right-2"), "SEPL", t0.Add(2*time.Hour), budget); err != nil || c.ID != "c2" {
			t.Fatalf("re-issued code = %+v, %v", c, err)
		}
		// The old locked code stays revoked, never redeemable.
		if _, err := s.RedeemActivationCode(ctx, right, "SEPL", t0.Add(2*time.Hour), budget); !errors.Is(err, ErrRevoked) {
			t.Fatalf("old locked code after re-issue = %v", err)
		}
	})
}

// The window is fixed from its first wrong guess: guesses spread wider than
// the window never reach the budget.
func TestGuessBudgetWindow(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		budget := GuessBudget{Max: 2, Window: time.Hour}
		putCode(t, s, "c1", "SEPW", []byte("right"))
		var ge *GuessError
		if _, err := s.RedeemActivationCode(ctx, []byte("w1"), "SEPW", t0, budget); !errors.As(err, &ge) || ge.Failures != 1 {
			t.Fatalf("first = %v", err)
		}
		if _, err := s.RedeemActivationCode(ctx, []byte("w2"), "SEPW", t0.Add(time.Hour), budget); !errors.As(err, &ge) || ge.Failures != 1 || ge.Locked {
			t.Fatalf("first of a new window = %v", err)
		}
		if _, err := s.RedeemActivationCode(ctx, []byte("right"), "SEPW", t0.Add(time.Hour), budget); err != nil {
			t.Fatalf("right code, never locked = %v", err)
		}
	})
}

// Nothing is counted without a budget, for a device with no outstanding
// code (nothing to guess or lock; this also keeps the table bounded by the
// devices that have codes), nor for a code of the device itself that is
// used, revoked or expired (not a guess: the caller holds a real code).
func TestGuessBudgetCountsOnlyGuesses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		budget := GuessBudget{Max: 1, Window: time.Hour}
		var ge *GuessError

		if _, err := s.RedeemActivationCode(ctx, []byte("w"), "NOCODES", t0, budget); !errors.Is(err, ErrNotFound) || errors.As(err, &ge) {
			t.Fatalf("device without codes = %v", err)
		}
		putCode(t, s, "c1", "SEPU", []byte("used"))
		if _, err := s.RedeemActivationCode(ctx, []byte("used"), "SEPU", t0, budget); err != nil {
			t.Fatal(err)
		}
		putCode(t, s, "c2", "SEPU", []byte("next"))
		if _, err := s.RedeemActivationCode(ctx, []byte("used"), "SEPU", t0, budget); !errors.Is(err, ErrAlreadyUsed) || errors.As(err, &ge) {
			t.Fatalf("own used code = %v", err)
		}
		if _, err := s.RedeemActivationCode(ctx, []byte("w"), "SEPU", t0, GuessBudget{}); !errors.Is(err, ErrNotFound) || errors.As(err, &ge) {
			t.Fatalf("no budget = %v", err)
		}
		if _, err := s.RedeemActivationCode(ctx, []byte("next"), "SEPU", t0, budget); err != nil {
			t.Fatalf("code after uncounted failures = %v", err)
		}
		if n := rawCount(t, s, `SELECT COUNT(*) FROM activation_guesses`); n != 0 {
			t.Fatalf("%d guess counters, want 0", n)
		}
	})
}

// Concurrent wrong guesses through two handles on one database (two core
// nodes) are counted one by one: exactly Max are evaluated as wrong guesses,
// every later one is refused as locked, and the lock is reported once.
func TestGuessBudgetConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, s2 := db.open(), db.open()
		const max, n = 10, 60
		budget := GuessBudget{Max: max, Window: time.Hour}
		putCode(t, s, "c1", "SEPC", []byte("right"))
		var (
			mu                     sync.Mutex
			counted, locked, locks int
			seen                   = map[int]bool{}
			wg                     sync.WaitGroup
		)
		start := make(chan struct{})
		for i := range n {
			st := []Store{s, s2}[i%2]
			wg.Go(func() {
				<-start
				_, err := st.RedeemActivationCode(ctx, []byte{'w', byte(i)}, "SEPC", t0, budget)
				mu.Lock()
				defer mu.Unlock()
				var ge *GuessError
				switch {
				case errors.As(err, &ge):
					counted++
					seen[ge.Failures] = true
					if ge.Locked {
						locks++
					}
				case errors.Is(err, ErrLocked):
					locked++
				default:
					t.Errorf("guess %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if counted != max || locked != n-max || locks != 1 || len(seen) != max || !seen[1] || !seen[max] {
			t.Fatalf("counted %d (failures seen %v), locked %d, lock reports %d; want %d, 1..%d, %d, 1", counted, seen, locked, locks, max, max, n-max)
		}
	})
}
