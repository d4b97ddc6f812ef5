package throttle

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a manually advanced test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t *testing.T, cfg Config) (*Limiter, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, clk
}

func begin(t *testing.T, l *Limiter, source, subject string) *Attempt {
	t.Helper()
	a, err := l.Begin(source, subject)
	if err != nil {
		t.Fatalf("Begin(%q, %q) = %v, want admitted", source, subject, err)
	}
	return a
}

func refused(t *testing.T, l *Limiter, source, subject, scope string) *Error {
	t.Helper()
	a, err := l.Begin(source, subject)
	var te *Error
	if !errors.As(err, &te) || a != nil {
		t.Fatalf("Begin(%q, %q) = %v, %v; want *Error", source, subject, a, err)
	}
	if te.Scope != scope || !errors.Is(err, ErrThrottled) {
		t.Fatalf("Begin(%q, %q) refused with %+v, want scope %q", source, subject, te, scope)
	}
	return te
}

// fail runs n admitted attempts that fail.
func fail(t *testing.T, l *Limiter, source, subject string, n int) {
	t.Helper()
	for range n {
		begin(t, l, source, subject).Fail()
	}
}

func (l *Limiter) peek(source, subject string) (src, sub record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	src, _ = l.sources.Peek(SourceKey(source))
	sub, _ = l.subjects.Peek(subject)
	return src, sub
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{MaxFailures: -1},
		{BaseDelay: -1},
		{MaxDelay: -1},
		{Forget: -1},
		{MaxEntries: -1},
		{MaxInFlight: -1},
		{MaxDelay: 2 * time.Hour}, // Forget (1h) < MaxDelay
		{BaseDelay: time.Hour, MaxDelay: time.Minute}, // BaseDelay > MaxDelay
	}
	for _, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	l, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := l.cfg
	if c.MaxFailures != 5 || c.BaseDelay != time.Second || c.MaxDelay != 15*time.Minute || c.Forget != time.Hour ||
		c.MaxEntries != 100000 || c.MaxInFlight != 32 || c.Now == nil {
		t.Fatalf("defaults = %+v", l.cfg)
	}
}

func TestLockDuration(t *testing.T) {
	l, _ := newLimiter(t, Config{MaxFailures: 3, BaseDelay: 3 * time.Second, MaxDelay: 20 * time.Second, MaxEntries: 1})
	want := map[int]time.Duration{0: 0, 2: 0, 3: 3 * time.Second, 4: 6 * time.Second, 5: 12 * time.Second, 6: 20 * time.Second, 1000: 20 * time.Second, 1 << 40: 20 * time.Second}
	for f, w := range want {
		if got := l.lockDuration(f); got != w {
			t.Errorf("lockDuration(%d) = %v, want %v", f, got, w)
		}
	}
}

func TestLockSchedule(t *testing.T) {
	l, clk := newLimiter(t, Config{})
	const src, sub = "198.51.100.7", "SEP1"
	fail(t, l, src, sub, DefaultMaxFailures)
	te := refused(t, l, src, sub, ScopeSource)
	if te.RetryAfter != time.Second {
		t.Fatalf("first lock %v, want 1s", te.RetryAfter)
	}
	// Refused attempts do not extend the lock, whatever their number.
	clk.Advance(400 * time.Millisecond)
	for range 10 {
		if te := refused(t, l, src, sub, ScopeSource); te.RetryAfter != 600*time.Millisecond {
			t.Fatalf("lock extended: %v", te.RetryAfter)
		}
	}
	if r, _ := l.peek(src, sub); r.failures != DefaultMaxFailures {
		t.Fatalf("refusals counted: %d failures", r.failures)
	}
	clk.Advance(600 * time.Millisecond)

	// Each time the lock ends, exactly one attempt is allowed; its failure
	// doubles the lock: 2s, 4s, ... capped at 15m.
	prev := time.Second
	for k := 1; k <= 15; k++ {
		a := begin(t, l, src, sub)
		// While it is in flight the source is not locked yet (the outcome
		// is unknown), and nothing has been counted.
		if r, _ := l.peek(src, sub); r.failures != DefaultMaxFailures+k-1 {
			t.Fatalf("in flight: %d failures", r.failures)
		}
		clk.Advance(10 * time.Millisecond) // the outcome takes a while
		a.Fail()
		te := refused(t, l, src, sub, ScopeSource)
		want := min(time.Second<<k, DefaultMaxDelay)
		if te.RetryAfter != want {
			t.Fatalf("lock after %d failures = %v, want %v", DefaultMaxFailures+k, te.RetryAfter, want)
		}
		if te.RetryAfter < prev {
			t.Fatalf("lock %v after %v", te.RetryAfter, prev)
		}
		prev = te.RetryAfter
		if !strings.Contains(te.Error(), "source") {
			t.Fatalf("Error() = %q", te.Error())
		}
		clk.Advance(te.RetryAfter - time.Nanosecond)
		refused(t, l, src, sub, ScopeSource)
		clk.Advance(time.Nanosecond)
	}
	if prev != DefaultMaxDelay {
		t.Fatalf("never reached the cap: %v", prev)
	}
}

func TestForget(t *testing.T) {
	l, clk := newLimiter(t, Config{})
	fail(t, l, "203.0.113.1", "SEP1", 4)
	clk.Advance(time.Hour)
	// History forgotten: five more failures are allowed before a lock.
	fail(t, l, "203.0.113.1", "SEP1", 5)
	refused(t, l, "203.0.113.1", "SEP1", ScopeSource)
	// A locked key is forgotten too, after Forget quiet time.
	clk.Advance(time.Hour)
	if src, sub := l.peek("203.0.113.1", "SEP1"); src.failures != 5 || sub.failures != 5 {
		t.Fatalf("before Begin: %+v %+v", src, sub)
	}
	begin(t, l, "203.0.113.1", "SEP1").Fail()
	if src, sub := l.peek("203.0.113.1", "SEP1"); src.failures != 1 || sub.failures != 1 {
		t.Fatalf("after forget: %+v %+v", src, sub)
	}
}

func TestCleanSourceNotBlockedBySubjectLock(t *testing.T) {
	l, _ := newLimiter(t, Config{})
	const attacker, other, phone = "203.0.113.66", "203.0.113.77", "192.0.2.10"
	// Ten guesses in flight at once, then all fail.
	var as []*Attempt
	for range 10 {
		as = append(as, begin(t, l, attacker, "SEP1"))
	}
	for _, a := range as {
		a.Fail()
	}
	refused(t, l, attacker, "SEP1", ScopeSource)
	refused(t, l, attacker, "SEP2", ScopeSource)

	// A source that has failed before (elsewhere) meets the subject lock.
	begin(t, l, other, "SEP2").Fail()
	te := refused(t, l, other, "SEP1", ScopeSubject)
	if te.RetryAfter != 32*time.Second || !strings.Contains(te.Error(), "subject") {
		t.Fatalf("subject lock = %v (%v)", te, te.RetryAfter)
	}
	// The refusal counted nothing.
	if src, sub := l.peek(other, "SEP1"); src.failures != 1 || sub.failures != 10 {
		t.Fatalf("after refusal: %+v %+v", src, sub)
	}
	// A clean source is not blocked; its success clears the subject.
	begin(t, l, phone, "SEP1").Succeed()
	begin(t, l, other, "SEP1").Succeed()
	// ... and the other source's history with it.
	if src, sub := l.peek(other, "SEP1"); src.failures != 0 || sub.failures != 0 {
		t.Fatalf("after success: %+v %+v", src, sub)
	}
	// The attacker stays locked.
	refused(t, l, attacker, "SEP1", ScopeSource)
}

func TestSucceedClears(t *testing.T) {
	l, _ := newLimiter(t, Config{})
	fail(t, l, "192.0.2.1", "alice", 4)
	begin(t, l, "192.0.2.1", "alice").Succeed()
	if ns, nsub, nf := l.lens(); ns != 0 || nsub != 0 || nf != 0 {
		t.Fatalf("after success: %d sources, %d subjects, %d in flight", ns, nsub, nf)
	}
	// The full allowance again.
	fail(t, l, "192.0.2.1", "alice", 5)
	refused(t, l, "192.0.2.1", "alice", ScopeSource)
}

func TestAbandonCountsNothing(t *testing.T) {
	l, _ := newLimiter(t, Config{})
	fail(t, l, "192.0.2.1", "alice", 2)
	for range 50 {
		begin(t, l, "192.0.2.1", "alice").Abandon()
	}
	if src, sub := l.peek("192.0.2.1", "alice"); src.failures != 2 || sub.failures != 2 {
		t.Fatalf("after abandons: %+v %+v", src, sub)
	}
	if _, _, nf := l.lens(); nf != 0 {
		t.Fatalf("%d sources still in flight", nf)
	}
	fail(t, l, "192.0.2.1", "alice", 3)
	refused(t, l, "192.0.2.1", "alice", ScopeSource)
}

func TestMaxInFlight(t *testing.T) {
	l, _ := newLimiter(t, Config{})
	var as []*Attempt
	for range DefaultMaxInFlight {
		as = append(as, begin(t, l, "192.0.2.1", "SEP1"))
	}
	te := refused(t, l, "192.0.2.1", "SEP2", ScopeInFlight)
	if te.RetryAfter != time.Second || te.RetryAfterSeconds() != 1 || !strings.Contains(te.Error(), "concurrent") {
		t.Fatalf("in-flight refusal = %+v: %v", te, te)
	}
	// Other sources are unaffected.
	begin(t, l, "192.0.2.2", "SEP1").Abandon()
	// One ends: one more is admitted.
	as[0].Succeed()
	as[0] = begin(t, l, "192.0.2.1", "SEP1")
	refused(t, l, "192.0.2.1", "SEP1", ScopeInFlight)
	// In-flight refusals counted nothing.
	if src, sub := l.peek("192.0.2.1", "SEP1"); src.failures != 0 || sub.failures != 0 {
		t.Fatalf("after in-flight refusals: %+v %+v", src, sub)
	}
	for _, a := range as {
		a.Abandon()
	}
	if _, _, nf := l.lens(); nf != 0 {
		t.Fatalf("%d in-flight entries left", nf)
	}

	// A configured limit.
	l2, _ := newLimiter(t, Config{MaxInFlight: 2})
	begin(t, l2, "2001:db8::1", "x")
	begin(t, l2, "2001:db8::2", "y") // same /64: same source
	refused(t, l2, "2001:db8::3", "z", ScopeInFlight)
	begin(t, l2, "2001:db8:0:1::1", "x") // next /64
}

func TestIdempotentEnd(t *testing.T) {
	l, _ := newLimiter(t, Config{})
	a := begin(t, l, "192.0.2.1", "SEP1")
	b := begin(t, l, "192.0.2.1", "SEP1")
	a.Fail()
	a.Fail()
	a.Succeed()
	a.Abandon()
	if !a.Ended() || b.Ended() {
		t.Fatal("Ended() wrong")
	}
	if src, sub := l.peek("192.0.2.1", "SEP1"); src.failures != 1 || sub.failures != 1 {
		t.Fatalf("after repeated ends: %+v %+v", src, sub)
	}
	if _, _, nf := l.lens(); nf != 1 || l.inFlight["192.0.2.1"] != 1 {
		t.Fatalf("in flight = %v", l.inFlight)
	}
	// The usual pattern: defer Abandon after an explicit outcome.
	func() {
		defer b.Abandon()
		b.Succeed()
	}()
	if ns, nsub, nf := l.lens(); ns != 0 || nsub != 0 || nf != 0 {
		t.Fatalf("after success: %d/%d/%d", ns, nsub, nf)
	}
	// A nil attempt (from a refused Begin) is inert.
	var n *Attempt
	n.Fail()
	n.Succeed()
	n.Abandon()
	if !n.Ended() {
		t.Fatal("nil attempt not ended")
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                        "192.0.2.1",
		"::ffff:192.0.2.1":                 "192.0.2.1",
		"::ffff:c000:0201":                 "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":             "2001:db8:1:2::/64",
		"2001:db8:1:2::1":                  "2001:db8:1:2::/64",
		"2001:DB8:1:2:ffff:ffff:ffff:ffff": "2001:db8:1:2::/64",
		"fe80::1%eth0":                     "fe80::/64",
		"::1":                              "::/64",
		"unix:/run/x.sock":                 "unix:/run/x.sock",
		"192.0.2.1:5060":                   "192.0.2.1:5060",
		"":                                 "",
	} {
		if got := SourceKey(in); got != want {
			t.Errorf("SourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIPv6Grouping(t *testing.T) {
	l, _ := newLimiter(t, Config{})
	// Five failures spread over five addresses of one /64 lock the /64.
	for i := range DefaultMaxFailures {
		begin(t, l, fmt.Sprintf("2001:db8:aa:bb::%x", i+1), fmt.Sprintf("SEP%d", i)).Fail()
	}
	refused(t, l, "2001:db8:aa:bb:ffff::1", "SEPX", ScopeSource)
	// Another /64 of the same /48 is a different source.
	begin(t, l, "2001:db8:aa:bc::1", "SEPX").Abandon()

	// IPv4-mapped addresses are the IPv4 address.
	fail(t, l, "::ffff:198.51.100.9", "SEPY", 3)
	fail(t, l, "198.51.100.9", "SEPZ", 2)
	refused(t, l, "198.51.100.9", "SEPW", ScopeSource)
	refused(t, l, "::ffff:198.51.100.9", "SEPW", ScopeSource)
	begin(t, l, "198.51.100.10", "SEPW").Abandon()
}

func TestLRUBound(t *testing.T) {
	l, _ := newLimiter(t, Config{MaxEntries: 8})
	for i := range 50 {
		begin(t, l, fmt.Sprintf("198.51.100.%d", i), fmt.Sprintf("SEP%d", i)).Fail()
		if ns, nsub, _ := l.lens(); ns > 8 || nsub > 8 {
			t.Fatalf("after %d: %d sources, %d subjects tracked", i+1, ns, nsub)
		}
	}
	if ns, nsub, _ := l.lens(); ns != 8 || nsub != 8 {
		t.Fatalf("%d sources, %d subjects tracked, want 8", ns, nsub)
	}
	if r, _ := l.peek("198.51.100.0", ""); r.failures != 0 {
		t.Fatal("oldest source not evicted")
	}
	if r, sub := l.peek("198.51.100.49", "SEP49"); r.failures != 1 || sub.failures != 1 {
		t.Fatal("newest source missing")
	}
}

func TestErrorText(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		secs int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {time.Second + time.Nanosecond, 2}, {15 * time.Minute, 900}} {
		if got := (&Error{RetryAfter: c.d}).RetryAfterSeconds(); got != c.secs {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", c.d, got, c.secs)
		}
	}
	e := &Error{RetryAfter: 1500 * time.Millisecond, Scope: ScopeSubject}
	if !strings.Contains(e.Error(), "subject") || !strings.Contains(e.Error(), "1.5s") {
		t.Fatalf("Error() = %q", e.Error())
	}
	if !errors.Is(fmt.Errorf("wrapped: %w", e), ErrThrottled) {
		t.Fatal("does not unwrap to ErrThrottled")
	}
}

// TestConcurrent runs many attempts from few sources at once (for -race)
// and checks that MaxInFlight holds and every attempt is accounted for.
func TestConcurrent(t *testing.T) {
	const maxInFlight = 4
	l, err := New(Config{MaxInFlight: maxInFlight, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	sources := []string{"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"}
	var inFlight [3]atomic.Int32 // 2001:db8::1 and ::2 share a /64
	var over atomic.Bool
	var admitted, refusedN atomic.Int32
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 200 {
				si := (g + i) % len(sources)
				slot := min(si, 2)
				a, err := l.Begin(sources[si], fmt.Sprintf("sub%d", i%5))
				if err != nil {
					if !errors.Is(err, ErrThrottled) {
						t.Error(err)
					}
					refusedN.Add(1)
					continue
				}
				admitted.Add(1)
				if inFlight[slot].Add(1) > maxInFlight {
					over.Store(true)
				}
				inFlight[slot].Add(-1)
				switch i % 7 {
				case 0:
					a.Succeed()
				case 1, 2:
					a.Abandon()
				default:
					a.Fail()
				}
				a.Abandon() // no-op
			}
		})
	}
	wg.Wait()
	if over.Load() {
		t.Fatal("more than MaxInFlight attempts in flight for one source")
	}
	if admitted.Load()+refusedN.Load() != 32*200 || admitted.Load() == 0 {
		t.Fatalf("admitted %d, refused %d", admitted.Load(), refusedN.Load())
	}
	if _, _, nf := l.lens(); nf != 0 {
		t.Fatalf("%d in-flight entries left", nf)
	}
}

// ForgetSubject clears a subject's lock (its secret was replaced) and
// leaves the sources' histories alone.
func TestForgetSubject(t *testing.T) {
	l, err := New(Config{MaxFailures: 2, Now: func() time.Time { return time.Unix(1000, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	fail := func(src, sub string) {
		t.Helper()
		a, err := l.Begin(src, sub)
		if err != nil {
			t.Fatal(err)
		}
		a.Fail()
	}
	fail("192.0.2.1", "dev")
	fail("192.0.2.1", "dev")   // "dev" is locked (and so is 192.0.2.1)
	fail("192.0.2.2", "other") // 192.0.2.2 has failed once: the "dev" lock applies to it
	var te *Error
	if _, err := l.Begin("192.0.2.2", "dev"); !errors.As(err, &te) || te.Scope != ScopeSubject {
		t.Fatalf("before ForgetSubject: %v", err)
	}
	l.ForgetSubject("dev")
	a, err := l.Begin("192.0.2.2", "dev")
	if err != nil {
		t.Fatalf("after ForgetSubject: %v", err)
	}
	a.Abandon()
	if _, err := l.Begin("192.0.2.1", "dev"); !errors.As(err, &te) || te.Scope != ScopeSource {
		t.Fatalf("the source's own lock must stay: %v", err)
	}
}
