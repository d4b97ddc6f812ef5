package activation

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/throttle"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

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

func openStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newService(t *testing.T, cfg Config) (*Service, *clock) {
	t.Helper()
	return newServiceOn(t, openStore(t), cfg)
}

func newServiceOn(t *testing.T, st Store, cfg Config) (*Service, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	s, err := New(st, testSecret, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

// gateStore holds every redemption at the gate until open is called, and
// counts the redemptions that reached it.
type gateStore struct {
	Store
	arrived  atomic.Int32
	release  chan struct{}
	openOnce sync.Once
}

func newGateStore(st Store) *gateStore { return &gateStore{Store: st, release: make(chan struct{})} }

func (g *gateStore) open() { g.openOnce.Do(func() { close(g.release) }) }

func (g *gateStore) RedeemActivationCode(ctx context.Context, h []byte, d string, now time.Time, b store.GuessBudget, first ...store.RefreshToken) (store.ActivationCode, error) {
	g.arrived.Add(1)
	<-g.release
	return g.Store.RedeemActivationCode(ctx, h, d, now, b, first...)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func issue(t *testing.T, s *Service, device string) Issued {
	t.Helper()
	is, err := s.Issue(context.Background(), device)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestGenerate(t *testing.T) {
	const n = 20000
	var first [10]int
	seen := make(map[Code]bool, n)
	for range n {
		c, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		s := string(c)
		if len(s) != 16 {
			t.Fatalf("code %q is not 16 characters", s)
		}
		for i := 0; i < 16; i++ {
			if s[i] < '0' || s[i] > '9' {
				t.Fatalf("code %q has a non-digit", s)
			}
		}
		if seen[c] {
			t.Fatalf("duplicate code after %d draws", len(seen))
		}
		seen[c] = true
		first[s[0]-'0']++
	}
	// Expected 2000 each (σ ≈ 42): 7%..13% is more than 14σ either way.
	for d, k := range first {
		if k < n*7/100 || k > n*13/100 {
			t.Errorf("first digit %d drawn %d times out of %d", d, k, n)
		}
	}
}

// seqReader returns its chunks in order, then fails.
type seqReader struct{ chunks [][]byte }

func (r *seqReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, errors.New("exhausted")
	}
	n := copy(p, r.chunks[0])
	r.chunks = r.chunks[1:]
	return n, nil
}

func TestGenerateRejectsOutOfRange(t *testing.T) {
	high := bytes.Repeat([]byte{0xff}, 8) // ≥ acceptBelow: must be rejected
	low := []byte{0, 0, 0, 0, 0, 0, 0, 42}
	c, err := generate(&seqReader{chunks: [][]byte{high, high, low}})
	if err != nil || c != "0000000000000042" {
		t.Fatalf("generate = %q, %v", c, err)
	}
	if _, err := generate(&seqReader{}); err == nil {
		t.Fatal("reader error not reported")
	}
	if acceptBelow%codeSpace != 0 || acceptBelow < 1<<63 {
		t.Fatalf("acceptBelow = %d", uint64(acceptBelow))
	}
}

func TestParse(t *testing.T) {
	for _, in := range []string{"1234-5678-9012-3456", "1234 5678 9012 3456", "1234567890123456"} {
		c, err := Parse(in)
		if err != nil || c != "1234567890123456" {
			t.Errorf("Parse(%q) = %q, %v", in, c, err)
		}
		if c.String() != "1234-5678-9012-3456" {
			t.Errorf("String() = %q", c.String())
		}
	}
	bad := []string{
		"",
		"123456789012345",       // 15
		"12345678901234567",     // 17
		"123456789012345a",      // letter
		"abcd-efgh-ijkl-mnop",   // letters grouped
		"12345-678-9012-3456",   // misplaced group
		"1234-5678 9012-3456",   // mixed separators
		"1234_5678_9012_3456",   // other separator
		"1234--5678-9012-345",   // doubled separator
		" 1234567890123456",     // leading space
		"1234567890123456 ",     // trailing space
		"1234-5678-9012-3456\n", // newline
		"١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦",      // Arabic-Indic digits
		"１２３４５６７８９０１２３４５６", // fullwidth digits
		"12345678901234５6",         // one fullwidth digit
		"+234567890123456",         // sign
		"1234-5678-9012-345\x00",   // NUL
		"1234 5678 9012 3456 7890", // too many groups
		"12 34 56 78 90 12 34 56",  // pairs
		"1234-5678-9012-3456-",     // trailing separator
	}
	for _, in := range bad {
		if c, err := Parse(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %q, %v; want ErrMalformed", in, c, err)
		} else if strings.Contains(err.Error(), in) && in != "" {
			t.Errorf("Parse(%q) error echoes the input: %v", in, err)
		}
	}
}

func TestHash(t *testing.T) {
	c := Code("1234567890123456")
	h1 := Hash(testSecret, c)
	h2 := Hash([]byte("another-secret-another-secret-xx"), c)
	if len(h1) != 32 || bytes.Equal(h1, h2) {
		t.Fatalf("hash does not depend on the secret")
	}
	if !bytes.Equal(h1, Hash(testSecret, c)) {
		t.Fatal("hash not deterministic")
	}
	if !bytes.Equal(h1, Hash(testSecret, Code("1234-5678-9012-3456"))) {
		t.Fatal("grouped spelling hashes differently")
	}
	if bytes.Equal(h1, Hash(testSecret, Code("1234567890123457"))) {
		t.Fatal("different codes, same hash")
	}
}

func TestNewValidation(t *testing.T) {
	st := openStore(t)
	if _, err := New(st, testSecret[:31], Config{}); err == nil {
		t.Error("31-byte secret accepted")
	}
	if _, err := New(nil, testSecret, Config{}); err == nil {
		t.Error("nil store accepted")
	}
	if _, err := New(st, testSecret, Config{Throttle: ThrottleConfig{MaxDelay: 2 * time.Hour}}); err == nil {
		t.Error("Forget shorter than MaxDelay accepted")
	}
	if _, err := New(st, testSecret, Config{Throttle: ThrottleConfig{MaxFailures: -1}}); err == nil {
		t.Error("negative MaxFailures accepted")
	}
	if _, err := New(st, testSecret, Config{Throttle: ThrottleConfig{MaxInFlight: -1}}); err == nil {
		t.Error("negative MaxInFlight accepted")
	}
}

func TestIssueRedeem(t *testing.T) {
	ctx := context.Background()
	s, clk := newService(t, Config{})
	is := issue(t, s, "SEP0011223344AA")
	if is.Device != "SEP0011223344AA" || len(is.ID) != 32 || !is.ExpiresAt.Equal(clk.Now().Add(168*time.Hour)) {
		t.Fatalf("Issued = %+v", is)
	}
	if strings.Contains(is.ID, string(is.Code)) {
		t.Fatal("ID contains the code")
	}
	clk.Advance(time.Hour)
	ac, err := s.Redeem(ctx, "192.0.2.1", "SEP0011223344AA", is.Code.String())
	if err != nil {
		t.Fatal(err)
	}
	if ac.ID != is.ID || ac.Device != "SEP0011223344AA" || !ac.UsedAt.Equal(clk.Now()) {
		t.Fatalf("redeemed = %+v", ac)
	}
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP0011223344AA", string(is.Code)); !errors.Is(err, ErrUsed) {
		t.Fatalf("second redeem = %v", err)
	}
	// The stored record never holds the plaintext, and List drops the hash.
	list, err := s.List(ctx, "SEP0011223344AA")
	if err != nil || len(list) != 1 || list[0].Hash != nil || list[0].UsedAt.IsZero() {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestIssueRevokesOlder(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	old := issue(t, s, "SEP1")
	other := issue(t, s, "SEP2")
	cur := issue(t, s, "SEP1")
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP1", old.Code.String()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("old code = %v", err)
	}
	if _, err := s.Redeem(ctx, "192.0.2.2", "SEP1", cur.Code.String()); err != nil {
		t.Fatalf("current code = %v", err)
	}
	if _, err := s.Redeem(ctx, "192.0.2.3", "SEP2", other.Code.String()); err != nil {
		t.Fatalf("other device's code = %v", err)
	}
}

func TestExpired(t *testing.T) {
	ctx := context.Background()
	s, clk := newService(t, Config{})
	is := issue(t, s, "SEP1")
	clk.Advance(168*time.Hour + time.Second)
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP1", is.Code.String()); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired = %v", err)
	}
	// Custom validity.
	s2, clk2 := newService(t, Config{Validity: time.Hour})
	is2 := issue(t, s2, "SEP2")
	clk2.Advance(time.Hour)
	if _, err := s2.Redeem(ctx, "192.0.2.1", "SEP2", is2.Code.String()); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired (1h validity) = %v", err)
	}
}

func TestWrongDeviceThenRightDevice(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	is := issue(t, s, "SEP1")
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP2", is.Code.String()); !errors.Is(err, ErrWrongDevice) {
		t.Fatalf("wrong device = %v", err)
	}
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP1", is.Code.String()); err != nil {
		t.Fatalf("right device afterwards = %v", err)
	}
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	is := issue(t, s, "SEP1")
	if err := s.Revoke(ctx, is.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP1", is.Code.String()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked = %v", err)
	}
	if err := s.Revoke(ctx, "nope"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Revoke(unknown) = %v", err)
	}
	is2 := issue(t, s, "SEP1")
	if err := s.RevokeDevice(ctx, "SEP1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Redeem(ctx, "192.0.2.2", "SEP1", is2.Code.String()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("RevokeDevice = %v", err)
	}
}

func TestUnknownAndMalformed(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP1", "0000-0000-0000-0000"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown = %v", err)
	}
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP1", "0000-0000"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed = %v", err)
	}
}

func TestConcurrentRedeem(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	is := issue(t, s, "SEP1")
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Go(func() {
			<-start
			_, err := s.Redeem(ctx, fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "SEP1", is.Code.String())
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrUsed):
				used.Add(1)
			default:
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected: %v", err)
	}
	if ok.Load() != 1 || used.Load() != 99 {
		t.Fatalf("successes=%d used=%d, want 1 and 99", ok.Load(), used.Load())
	}
}

func TestThrottleBurst(t *testing.T) {
	ctx := context.Background()
	s, clk := newService(t, Config{})
	const src, dev, guess = "198.51.100.7", "SEP1", "0000-0000-0000-0001"
	for i := 1; i <= 5; i++ {
		if _, err := s.Redeem(ctx, src, dev, guess); !errors.Is(err, ErrUnknown) {
			t.Fatalf("guess %d = %v, want ErrUnknown", i, err)
		}
	}
	throttled := func() *ThrottledError {
		t.Helper()
		_, err := s.Redeem(ctx, src, dev, guess)
		var te *ThrottledError
		if !errors.As(err, &te) {
			t.Fatalf("want *ThrottledError, got %v", err)
		}
		if te.Scope != ScopeSource || !errors.Is(err, ErrThrottled) {
			t.Fatalf("throttled = %+v", te)
		}
		return te
	}
	te := throttled()
	if te.RetryAfter != time.Second {
		t.Fatalf("first lock %v, want 1s", te.RetryAfter)
	}
	// Refused attempts do not extend the lock.
	clk.Advance(400 * time.Millisecond)
	if te := throttled(); te.RetryAfter != 600*time.Millisecond {
		t.Fatalf("lock extended: %v", te.RetryAfter)
	}
	clk.Advance(600 * time.Millisecond)

	// 15 more guesses, each allowed once its lock has passed: 20 in all.
	prev := time.Second
	for k := 1; k <= 15; k++ {
		if _, err := s.Redeem(ctx, src, dev, guess); !errors.Is(err, ErrUnknown) {
			t.Fatalf("guess after lock %d = %v, want ErrUnknown", k, err)
		}
		te := throttled()
		want := min(time.Second<<k, DefaultMaxDelay)
		if te.RetryAfter != want {
			t.Fatalf("lock after %d failures = %v, want %v", 5+k, te.RetryAfter, want)
		}
		if te.RetryAfter < prev || te.RetryAfter > DefaultMaxDelay {
			t.Fatalf("lock %v after %v", te.RetryAfter, prev)
		}
		prev = te.RetryAfter
		if !strings.Contains(te.Error(), "source") {
			t.Fatalf("Error() = %q", te.Error())
		}
		clk.Advance(te.RetryAfter)
	}
	if prev != DefaultMaxDelay {
		t.Fatalf("never reached the cap: %v", prev)
	}
	// After the lock expired, one more attempt is allowed (and fails).
	if _, err := s.Redeem(ctx, src, dev, guess); !errors.Is(err, ErrUnknown) {
		t.Fatalf("attempt after lock = %v", err)
	}
	throttled()
}

// A concurrent burst of wrong guesses from one source: MaxInFlight of them
// reach the store, the rest are refused as in flight, and the failures all
// count, so the source goes straight to the longest lock.
func TestThrottleConcurrentBurst(t *testing.T) {
	ctx := context.Background()
	g := newGateStore(openStore(t))
	s, _ := newServiceOn(t, g, Config{})
	var reached, inFlight atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := s.Redeem(ctx, "203.0.113.5", "SEP1", "0000-0000-0000-0002")
			var te *ThrottledError
			switch {
			case errors.As(err, &te) && te.Scope == ScopeInFlight && te.RetryAfter == time.Second:
				inFlight.Add(1)
			case errors.Is(err, ErrUnknown):
				reached.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	defer wg.Wait()
	defer g.open() // also when waitFor fails
	// The admitted guesses are held at the store until the rest are refused.
	waitFor(t, func() bool { return g.arrived.Load() == DefaultMaxInFlight && inFlight.Load() == 50-DefaultMaxInFlight })
	g.open()
	wg.Wait()
	if reached.Load() != DefaultMaxInFlight || inFlight.Load() != 50-DefaultMaxInFlight {
		t.Fatalf("reached the store %d times, refused %d", reached.Load(), inFlight.Load())
	}
	_, err := s.Redeem(ctx, "203.0.113.5", "SEP1", "0000-0000-0000-0002")
	var te *ThrottledError
	if !errors.As(err, &te) || te.Scope != ScopeSource || te.RetryAfter != DefaultMaxDelay {
		t.Fatalf("after the burst = %v", err)
	}
}

func TestCleanSourceNotBlockedByDeviceLock(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	is := issue(t, s, "SEP1")
	const attacker, other, phone = "203.0.113.66", "203.0.113.77", "192.0.2.10"
	for range 10 {
		s.Redeem(ctx, attacker, "SEP1", "9999-9999-9999-9999")
	}
	var te *ThrottledError
	if _, err := s.Redeem(ctx, attacker, "SEP1", is.Code.String()); !errors.As(err, &te) || te.Scope != ScopeSource {
		t.Fatalf("attacker = %v", err)
	}
	// A source that has failed before (elsewhere) meets the device lock.
	if _, err := s.Redeem(ctx, other, "SEP2", "9999-9999-9999-9999"); !errors.Is(err, ErrUnknown) {
		t.Fatal(err)
	}
	if _, err := s.Redeem(ctx, other, "SEP1", is.Code.String()); !errors.As(err, &te) || te.Scope != ScopeDevice {
		t.Fatalf("dirty source on locked device = %v", err)
	}
	if !strings.Contains(te.Error(), "subject") {
		t.Fatalf("Error() = %q", te.Error())
	}
	// The legitimate phone, from a clean address, is not blocked.
	if _, err := s.Redeem(ctx, phone, "SEP1", is.Code.String()); err != nil {
		t.Fatalf("clean source = %v", err)
	}
	// Success cleared the device's history: the other source may try again.
	is2 := issue(t, s, "SEP1")
	if _, err := s.Redeem(ctx, other, "SEP1", is2.Code.String()); err != nil {
		t.Fatalf("after device history cleared = %v", err)
	}
	// ... and its own history is cleared too: it is a clean source again,
	// which a device lock does not stop.
	var held []*throttle.Attempt
	for range 10 {
		a, err := s.Attempt("203.0.113.88", "SEP3")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, a)
	}
	for _, a := range held {
		a.Fail()
	}
	if _, err := s.Redeem(ctx, "203.0.113.99", "SEP2", "9999-9999-9999-9999"); !errors.Is(err, ErrUnknown) {
		t.Fatal(err)
	}
	if _, err := s.Redeem(ctx, "203.0.113.99", "SEP3", "9999-9999-9999-9999"); !errors.As(err, &te) || te.Scope != ScopeDevice {
		t.Fatalf("dirty source on SEP3 = %v", err)
	}
	if _, err := s.Redeem(ctx, other, "SEP3", "9999-9999-9999-9999"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("source after its success, on a locked device = %v", err)
	}
	// The attacker stays locked.
	if _, err := s.Redeem(ctx, attacker, "SEP1", "9999-9999-9999-9999"); !errors.As(err, &te) {
		t.Fatalf("attacker after success = %v", err)
	}
}

func TestThrottleForget(t *testing.T) {
	ctx := context.Background()
	s, clk := newService(t, Config{})
	for range 4 {
		s.Redeem(ctx, "203.0.113.1", "SEP1", "1")
	}
	clk.Advance(time.Hour)
	// History forgotten: five more failures are allowed before a lock.
	for i := range 5 {
		if _, err := s.Redeem(ctx, "203.0.113.1", "SEP1", "1"); !errors.Is(err, ErrMalformed) {
			t.Fatalf("attempt %d after forget = %v", i, err)
		}
	}
	var te *ThrottledError
	if _, err := s.Redeem(ctx, "203.0.113.1", "SEP1", "1"); !errors.As(err, &te) {
		t.Fatalf("want lock, got %v", err)
	}
}

func TestThrottleLRUBound(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{Throttle: ThrottleConfig{MaxEntries: 8}})
	for range 4 {
		if _, err := s.Redeem(ctx, "198.51.100.200", "SEPA", "0000-0000-0000-0000"); !errors.Is(err, ErrUnknown) {
			t.Fatal(err)
		}
	}
	// Eight more sources and devices push the first out of both LRUs ...
	for i := range 8 {
		s.Redeem(ctx, fmt.Sprintf("198.51.100.%d", i), fmt.Sprintf("SEP%d", i), "0000-0000-0000-0000")
	}
	// ... so its history is forgotten: five failures before a lock again.
	for i := range 5 {
		if _, err := s.Redeem(ctx, "198.51.100.200", "SEPA", "0000-0000-0000-0000"); !errors.Is(err, ErrUnknown) {
			t.Fatalf("attempt %d after eviction = %v", i+1, err)
		}
	}
	var te *ThrottledError
	if _, err := s.Redeem(ctx, "198.51.100.200", "SEPA", "0000-0000-0000-0000"); !errors.As(err, &te) {
		t.Fatalf("want lock, got %v", err)
	}
}

// failingStore answers every redemption with an infrastructure error while
// failing is set.
type failingStore struct {
	Store
	failing atomic.Bool
}

func (f *failingStore) RedeemActivationCode(ctx context.Context, h []byte, d string, now time.Time, b store.GuessBudget, first ...store.RefreshToken) (store.ActivationCode, error) {
	if f.failing.Load() {
		return store.ActivationCode{}, errors.New("database is unreachable")
	}
	return f.Store.RedeemActivationCode(ctx, h, d, now, b, first...)
}

func TestInfrastructureErrorsNotCounted(t *testing.T) {
	ctx := context.Background()
	fs := &failingStore{Store: openStore(t)}
	fs.failing.Store(true)
	s, _ := newServiceOn(t, fs, Config{})
	for range 20 {
		_, err := s.Redeem(ctx, "192.0.2.1", "SEP1", "0000-0000-0000-0000")
		var te *ThrottledError
		if err == nil || errors.As(err, &te) || mapStoreErr(err) != nil || errors.Is(err, ErrUnknown) {
			t.Fatalf("Redeem = %v", err)
		}
	}
	// A cancelled context is an infrastructure error too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	fs.failing.Store(false)
	for range 20 {
		if _, err := s.Redeem(cctx, "192.0.2.1", "SEP1", "0000-0000-0000-0000"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Redeem(cancelled) = %v", err)
		}
	}
	// Nothing was counted: the full allowance of five failures remains.
	for i := range 5 {
		if _, err := s.Redeem(ctx, "192.0.2.1", "SEP1", "0000-0000-0000-0000"); !errors.Is(err, ErrUnknown) {
			t.Fatalf("guess %d = %v", i+1, err)
		}
	}
	var te *ThrottledError
	if _, err := s.Redeem(ctx, "192.0.2.1", "SEP1", "0000-0000-0000-0000"); !errors.As(err, &te) {
		t.Fatalf("sixth guess = %v", err)
	}
}

func TestIssueBulkAndCSV(t *testing.T) {
	ctx := context.Background()
	s, clk := newService(t, Config{})
	if _, err := s.IssueBulk(ctx, []string{"SEP1", "SEP2", "SEP1"}); err == nil {
		t.Fatal("duplicate device accepted")
	}
	if _, err := s.IssueBulk(ctx, []string{"SEP1", ""}); err == nil {
		t.Fatal("empty device accepted")
	}
	if list, _ := s.List(ctx, ""); len(list) != 0 {
		t.Fatalf("rejected bulk issued codes: %+v", list)
	}
	devices := []string{"SEP0011223344AA", "CSFJSMITH", "BOT\"quoted,name"}
	issued, err := s.IssueBulk(ctx, devices)
	if err != nil || len(issued) != 3 {
		t.Fatalf("IssueBulk = %+v, %v", issued, err)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, issued); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || strings.Join(recs[0], ",") != "device,activation_code,id,expires_at" {
		t.Fatalf("CSV = %q", recs)
	}
	for i, r := range recs[1:] {
		if r[0] != devices[i] || r[2] != issued[i].ID {
			t.Fatalf("row %d = %q", i, r)
		}
		c, err := Parse(r[1])
		if err != nil || c != issued[i].Code {
			t.Fatalf("row %d code %q: %v", i, r[1], err)
		}
		exp, err := time.Parse(time.RFC3339, r[3])
		if err != nil || !exp.Equal(clk.Now().Add(DefaultValidity)) {
			t.Fatalf("row %d expiry %q: %v", i, r[3], err)
		}
		// Every CSV code redeems for its device.
		if _, err := s.Redeem(ctx, "192.0.2.50", r[0], r[1]); err != nil {
			t.Fatalf("row %d redeem: %v", i, err)
		}
	}
}

// Many phones behind one NAT address redeeming at once are not throttled
// for one another: failures count only once the store has answered. Here
// all 100 race for the same code, held at the store until every one of
// them is in flight: one wins, the rest are told it is used.
func TestConcurrentRedeemOneSource(t *testing.T) {
	ctx := context.Background()
	g := newGateStore(openStore(t))
	s, _ := newServiceOn(t, g, Config{Throttle: ThrottleConfig{MaxInFlight: 100}})
	is := issue(t, s, "SEP1")
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			_, err := s.Redeem(ctx, "192.0.2.77", "SEP1", is.Code.String())
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrUsed):
				used.Add(1)
			default:
				errs <- err
			}
		})
	}
	defer wg.Wait()
	defer g.open()
	waitFor(t, func() bool { return g.arrived.Load() == 100 || len(errs) > 0 })
	g.open()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected: %v", err)
	}
	if ok.Load() != 1 || used.Load() != 99 {
		t.Fatalf("successes=%d used=%d, want 1 and 99", ok.Load(), used.Load())
	}
}

// The same race with the default MaxInFlight (32) and no gate: exactly one
// success; everyone else is told the code is used or to slow down.
func TestConcurrentRedeemOneSourceDefault(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	is := issue(t, s, "SEP1")
	var ok, used, throttled atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			_, err := s.Redeem(ctx, "192.0.2.77", "SEP1", is.Code.String())
			var te *ThrottledError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrUsed):
				used.Add(1)
			case errors.As(err, &te) && errors.Is(err, ErrThrottled):
				throttled.Add(1)
			default:
				t.Errorf("unexpected: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || used.Load()+throttled.Load() != 99 {
		t.Fatalf("successes=%d used=%d throttled=%d", ok.Load(), used.Load(), throttled.Load())
	}
	t.Logf("successes=%d used=%d throttled=%d", ok.Load(), used.Load(), throttled.Load())
}

// The problem the review found: phones behind one NAT address onboarding
// at once, each with its own valid code, must all succeed.
func TestConcurrentDistinctCodesOneSource(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{Throttle: ThrottleConfig{MaxInFlight: 100}})
	issued := make([]Issued, 100)
	for i := range issued {
		issued[i] = issue(t, s, fmt.Sprintf("SEP%012d", i))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, is := range issued {
		wg.Go(func() {
			<-start
			if _, err := s.Redeem(ctx, "192.0.2.99", is.Device, is.Code.String()); err != nil {
				t.Errorf("%s: %v", is.Device, err)
			}
		})
	}
	close(start)
	wg.Wait()
}

// countingStore counts the redemptions that reach the store.
type countingStore struct {
	Store
	n atomic.Int32
}

func (c *countingStore) RedeemActivationCode(ctx context.Context, h []byte, d string, now time.Time, b store.GuessBudget, first ...store.RefreshToken) (store.ActivationCode, error) {
	c.n.Add(1)
	return c.Store.RedeemActivationCode(ctx, h, d, now, b, first...)
}

// Twenty wrong guesses in a row from one address: five reach the store,
// the other fifteen are refused for the source without touching it.
func TestSequentialBurst(t *testing.T) {
	ctx := context.Background()
	cs := &countingStore{Store: openStore(t)}
	s, _ := newServiceOn(t, cs, Config{})
	for i := 1; i <= 20; i++ {
		_, err := s.Redeem(ctx, "198.51.100.20", "SEP1", fmt.Sprintf("0000-0000-0000-%04d", i))
		var te *ThrottledError
		switch {
		case i <= DefaultMaxFailures:
			if !errors.Is(err, ErrUnknown) {
				t.Fatalf("guess %d = %v, want ErrUnknown", i, err)
			}
		case !errors.As(err, &te) || te.Scope != ScopeSource || te.RetryAfter != time.Second || te.RetryAfterSeconds() != 1:
			t.Fatalf("guess %d = %v, want a 1s source lock", i, err)
		}
	}
	if cs.n.Load() != DefaultMaxFailures {
		t.Fatalf("%d guesses reached the store", cs.n.Load())
	}
}

// Wrong guesses from addresses of one IPv6 /64 share one history.
func TestThrottleIPv6Prefix(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t, Config{})
	for i := range DefaultMaxFailures {
		src := fmt.Sprintf("2001:db8:5:6::%x", 0x100+i)
		if _, err := s.Redeem(ctx, src, fmt.Sprintf("SEP%d", i), "0000-0000-0000-0000"); !errors.Is(err, ErrUnknown) {
			t.Fatal(err)
		}
	}
	var te *ThrottledError
	if _, err := s.Redeem(ctx, "2001:db8:5:6:a:b:c:d", "SEPX", "0000-0000-0000-0000"); !errors.As(err, &te) || te.Scope != ScopeSource {
		t.Fatalf("same /64 = %v", err)
	}
	if _, err := s.Redeem(ctx, "2001:db8:5:7::1", "SEPX", "0000-0000-0000-0000"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("next /64 = %v", err)
	}
}

// The core's own pre-check (S-17) runs inside an attempt: its refusals are
// counted like wrong codes and are themselves throttled.
func TestAttemptPreCheck(t *testing.T) {
	ctx := context.Background()
	cs := &countingStore{Store: openStore(t)}
	s, _ := newServiceOn(t, cs, Config{})
	is := issue(t, s, "SEP1")
	for range DefaultMaxFailures {
		a, err := s.Attempt("203.0.113.40", "SEP1")
		if err != nil {
			t.Fatal(err)
		}
		a.Fail() // refused before redemption
	}
	_, err := s.Attempt("203.0.113.40", "SEP1")
	var te *ThrottledError
	if !errors.As(err, &te) || te.Scope != ScopeSource {
		t.Fatalf("sixth pre-check refusal = %v", err)
	}
	if _, err := s.Redeem(ctx, "203.0.113.40", "SEP1", is.Code.String()); !errors.As(err, &te) {
		t.Fatalf("redeem while locked = %v", err)
	}
	if cs.n.Load() != 0 {
		t.Fatalf("store reached %d times", cs.n.Load())
	}

	// An attempt that passes the pre-check redeems within it.
	a, err := s.Attempt("192.0.2.41", "SEP1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemAttempt(ctx, a, "SEP1", is.Code.String()); err != nil || !a.Ended() {
		t.Fatalf("RedeemAttempt = %v (ended %v)", err, a.Ended())
	}
	// Reusing an ended attempt, or one for another device, is refused
	// without touching the store or counting anything.
	if _, err := s.RedeemAttempt(ctx, a, "SEP1", is.Code.String()); err == nil {
		t.Fatal("ended attempt accepted")
	}
	if _, err := s.RedeemAttempt(ctx, nil, "SEP1", is.Code.String()); err == nil {
		t.Fatal("nil attempt accepted")
	}
	for range 10 {
		b, err := s.Attempt("192.0.2.42", "SEP2")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemAttempt(ctx, b, "SEP1", is.Code.String()); err == nil || !b.Ended() || errors.Is(err, ErrUsed) {
			t.Fatalf("attempt for another device = %v (ended %v)", err, b.Ended())
		}
	}
	if cs.n.Load() != 1 {
		t.Fatalf("store reached %d times, want 1", cs.n.Load())
	}
	// The redemption outcome ends the attempt: a failure counts.
	for range DefaultMaxFailures {
		b, err := s.Attempt("192.0.2.42", "SEP2")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RedeemAttempt(ctx, b, "SEP2", "0000"); !errors.Is(err, ErrMalformed) || !b.Ended() {
			t.Fatalf("malformed = %v", err)
		}
	}
	if _, err := s.Attempt("192.0.2.42", "SEP2"); !errors.As(err, &te) {
		t.Fatalf("after five malformed = %v", err)
	}
}
