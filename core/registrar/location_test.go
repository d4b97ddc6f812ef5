package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/pgtest"
	"github.com/edgeway/edgeway/internal/store"
)

// locStore is a real SQLite store whose ApplyRegistrations can be made to
// fail, or to hold its next transaction until released.
type locStore struct {
	*store.SQLite
	fail atomic.Bool

	mu      sync.Mutex
	hold    chan struct{} // the next transaction waits for it to close
	entered chan struct{} // closed when that transaction started
}

func (s *locStore) ApplyRegistrations(ctx context.Context, puts []store.Registration, dels []store.RegistrationKey) error {
	s.mu.Lock()
	hold, entered := s.hold, s.entered
	s.hold, s.entered = nil, nil
	s.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	if s.fail.Load() {
		return errors.New("disk I/O error (injected)")
	}
	return s.SQLite.ApplyRegistrations(ctx, puts, dels)
}

// holdNext makes the next transaction wait for release; entered closes
// when it started.
func (s *locStore) holdNext() (entered, release chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.entered = make(chan struct{}), make(chan struct{})
	return s.entered, s.hold
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var locT0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func openLocStore(t *testing.T) *locStore {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "loc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &locStore{SQLite: st}
}

func startLocation(t *testing.T, st locationStore, clk *testClock) *location {
	t.Helper()
	l, err := newLocation(context.Background(), st, clk.now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func binding(aor, contact string, cseq uint32, exp time.Time) store.Registration {
	return store.Registration{AOR: aor, Contact: contact, Device: "SEP1", CallID: "call-" + contact, CSeq: cseq,
		ExpiresAt: exp, Node: "n1", UpdatedAt: locT0}
}

// put is a REGISTER of one contact, with the RFC 3261 §10.3 step 7
// ordering check the registrar makes.
func put(l *location, b store.Registration) ([]store.Registration, error) {
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "x", Host: "h"}}
	return l.Update(context.Background(), b.AOR, func(live []store.Registration) (bindingChange, error) {
		// checkOrdering matches contacts by URI: give it b's.
		for i := range live {
			if live[i].Contact == b.Contact {
				live[i].Contact = contact.Address.String()
			}
		}
		if err := checkOrdering(live, []string{contact.Address.String()}, b.CallID, b.CSeq); err != nil {
			return bindingChange{}, err
		}
		return bindingChange{Put: []store.Registration{b}}, nil
	})
}

func storeBindings(t *testing.T, st *locStore, aor string, now time.Time) []store.Registration {
	t.Helper()
	regs, err := st.SQLite.Registrations(context.Background(), aor, now)
	if err != nil {
		t.Fatal(err)
	}
	return regs
}

// TestLocationLoadsAtStart: bindings in the store before start are in
// memory after it (expired ones are not).
func TestLocationLoadsAtStart(t *testing.T) {
	st := openLocStore(t)
	live := binding("sip:1001@example.com", "<sip:a>", 1, locT0.Add(time.Hour))
	gone := binding("sip:1002@example.com", "<sip:b>", 1, locT0.Add(-time.Second))
	for _, b := range []store.Registration{live, gone} {
		if err := st.PutRegistration(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	l := startLocation(t, st, &testClock{t: locT0})
	if got := l.Bindings(live.AOR); len(got) != 1 || got[0].Contact != live.Contact || !got[0].ExpiresAt.Equal(live.ExpiresAt) {
		t.Fatalf("loaded %s = %+v", live.AOR, got)
	}
	if got := l.Bindings(gone.AOR); len(got) != 0 {
		t.Fatalf("an expired binding was loaded: %+v", got)
	}
}

// TestLocationGroupCommit: changes queued while a transaction runs are
// written together in the next one, and each is answered only after it.
func TestLocationGroupCommit(t *testing.T) {
	st := openLocStore(t)
	l := startLocation(t, st, &testClock{t: locT0})
	entered, release := st.holdNext()
	errs := make(chan error, 100)
	go func() {
		_, err := put(l, binding("sip:1000@example.com", "<sip:first>", 1, locT0.Add(time.Hour)))
		errs <- err
	}()
	<-entered // the first transaction is running and held
	const n = 50
	for i := range n {
		go func() {
			_, err := put(l, binding(fmt.Sprintf("sip:%d@example.com", 2000+i), "<sip:c>", 1, locT0.Add(time.Hour)))
			errs <- err
		}()
	}
	for len(l.queue) < n { // every change queued behind the held transaction
		runtime.Gosched()
	}
	select {
	case err := <-errs:
		t.Fatalf("a change was answered (%v) before its transaction ran", err)
	default:
	}
	close(release)
	for range n + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if c := l.commits.Load(); c != 2 {
		t.Fatalf("%d transactions for %d changes, want 2 (one held, one for the %d queued behind it)", c, n+1, n)
	}
	if got := storeBindings(t, st, "", locT0); len(got) != n+1 {
		t.Fatalf("store holds %d bindings, want %d", len(got), n+1)
	}
}

// TestLocationConcurrent: many REGISTERs at once, to many AORs and to one,
// all end up in memory and in the store, in fewer transactions than
// changes, and the one AOR's changes apply in CSeq order.
func TestLocationConcurrent(t *testing.T) {
	st := openLocStore(t)
	l := startLocation(t, st, &testClock{t: locT0})
	const workers, each = 32, 20
	const hot = "sip:1000@example.com"
	var wg sync.WaitGroup
	var refused atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := put(l, binding(fmt.Sprintf("sip:%d@example.com", 2000+w*each+i), "<sip:c>", 1, locT0.Add(time.Hour))); err != nil {
					t.Error(err)
				}
				// Every worker re-registers one contact of the hot AOR,
				// on one Call-ID, with CSeqs that interleave across
				// workers: an older CSeq arriving late must change nothing.
				b := binding(hot, "<sip:hot>", uint32(i*workers+w+1), locT0.Add(time.Hour))
				b.CallID = "hot-call"
				if _, err := put(l, b); err != nil {
					var re *Refusal
					if !errors.As(err, &re) || re.Status != 500 {
						t.Error(err)
					}
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	changes := uint64(workers*each*2) - uint64(refused.Load())
	if c := l.changes.Load(); c != changes {
		t.Fatalf("%d changes written, want %d", c, changes)
	}
	if c := l.commits.Load(); c >= changes {
		t.Fatalf("%d transactions for %d concurrent changes: no group commit", c, changes)
	}
	t.Logf("%d changes in %d transactions (%d stale CSeqs refused)", changes, l.commits.Load(), refused.Load())
	if got := storeBindings(t, st, "", locT0); len(got) != workers*each+1 {
		t.Fatalf("store holds %d bindings, want %d", len(got), workers*each+1)
	}
	mem, durable := l.Bindings(hot), storeBindings(t, st, hot, locT0)
	if len(mem) != 1 || len(durable) != 1 || mem[0].CSeq != workers*each || durable[0].CSeq != workers*each {
		t.Fatalf("hot AOR: memory %+v, store %+v; want the highest CSeq %d in both", mem, durable, workers*each)
	}
}

// TestLocationCommitFailureNotApplied: a change whose transaction failed
// is not in memory and is reported, so the REGISTER is not acknowledged;
// the bindings from before stay as they were.
func TestLocationCommitFailureNotApplied(t *testing.T) {
	st := openLocStore(t)
	l := startLocation(t, st, &testClock{t: locT0})
	old := binding("sip:1001@example.com", "<sip:a>", 1, locT0.Add(time.Hour))
	if _, err := put(l, old); err != nil {
		t.Fatal(err)
	}
	st.fail.Store(true)
	newer := old
	newer.CSeq, newer.ExpiresAt = 2, locT0.Add(2*time.Hour)
	if got, err := put(l, newer); err == nil {
		t.Fatalf("a change whose commit failed was acknowledged: %+v", got)
	}
	if _, err := put(l, binding("sip:1002@example.com", "<sip:b>", 1, locT0.Add(time.Hour))); err == nil {
		t.Fatal("a new binding whose commit failed was acknowledged")
	}
	if got := l.Bindings(old.AOR); len(got) != 1 || got[0].CSeq != 1 || !got[0].ExpiresAt.Equal(old.ExpiresAt) {
		t.Fatalf("memory after a failed commit = %+v, want the binding from before", got)
	}
	if got := l.Bindings("sip:1002@example.com"); len(got) != 0 {
		t.Fatalf("memory holds a binding whose commit failed: %+v", got)
	}
	st.fail.Store(false)
	// The failed CSeq 2 was never seen: it may come again.
	if _, err := put(l, newer); err != nil {
		t.Fatal(err)
	}
	if got := storeBindings(t, st, old.AOR, locT0); len(got) != 1 || got[0].CSeq != 2 {
		t.Fatalf("store = %+v", got)
	}
}

// TestLocationCSeqOrder: RFC 3261 §10.3 step 7 against memory: a REGISTER
// on the Call-ID of a binding with a CSeq not higher changes nothing.
func TestLocationCSeqOrder(t *testing.T) {
	st := openLocStore(t)
	l := startLocation(t, st, &testClock{t: locT0})
	b := binding("sip:1001@example.com", "<sip:a>", 5, locT0.Add(time.Hour))
	if _, err := put(l, b); err != nil {
		t.Fatal(err)
	}
	for _, cseq := range []uint32{5, 4} {
		late := b
		late.CSeq, late.ExpiresAt = cseq, locT0.Add(2*time.Hour)
		var re *Refusal
		if _, err := put(l, late); !errors.As(err, &re) || re.Status != 500 {
			t.Fatalf("CSeq %d after 5: err %v, want a 500 refusal", cseq, err)
		}
	}
	if got := storeBindings(t, st, b.AOR, locT0); len(got) != 1 || got[0].CSeq != 5 || !got[0].ExpiresAt.Equal(b.ExpiresAt) {
		t.Fatalf("store after stale CSeqs = %+v", got)
	}
	if c := l.commits.Load(); c != 1 {
		t.Fatalf("%d transactions, want 1: a refused change writes nothing", c)
	}
}

// TestLocationExpiry: an expired binding is not returned (lazily, on
// read), Lookup does not find it in the store either, and the purge drops
// it from memory.
func TestLocationExpiry(t *testing.T) {
	st := openLocStore(t)
	clk := &testClock{t: locT0}
	l := startLocation(t, st, clk)
	short := binding("sip:1001@example.com", "<sip:a>", 1, locT0.Add(time.Minute))
	long := binding("sip:1001@example.com", "<sip:b>", 1, locT0.Add(time.Hour))
	for _, b := range []store.Registration{short, long} {
		if _, err := put(l, b); err != nil {
			t.Fatal(err)
		}
	}
	clk.add(time.Minute)
	if got := l.Bindings(short.AOR); len(got) != 1 || got[0].Contact != long.Contact {
		t.Fatalf("after %s expired: %+v", short.Contact, got)
	}
	clk.add(time.Hour)
	if got, err := l.Lookup(context.Background(), short.AOR); err != nil || len(got) != 0 {
		t.Fatalf("Lookup after every binding expired = %+v, %v", got, err)
	}
	l.purge(clk.now())
	sh := l.shard(short.AOR)
	sh.mu.Lock()
	_, held := sh.m[short.AOR]
	sh.mu.Unlock()
	if held {
		t.Fatal("purge kept an AOR whose bindings all expired")
	}
	// The AOR can register again after its entry was purged.
	again := binding(short.AOR, "<sip:c>", 1, clk.now().Add(time.Hour))
	if _, err := put(l, again); err != nil {
		t.Fatal(err)
	}
	if got := l.Bindings(short.AOR); len(got) != 1 || got[0].Contact != again.Contact {
		t.Fatalf("after registering again: %+v", got)
	}
}

// TestLocationLookupOtherNode: a binding another node wrote to the shared
// store is found for routing although this node does not hold it.
func TestLocationLookupOtherNode(t *testing.T) {
	st := openLocStore(t)
	l := startLocation(t, st, &testClock{t: locT0})
	other := binding("sip:1001@example.com", "<sip:a>", 1, locT0.Add(time.Hour))
	other.Node = "n2"
	if err := st.PutRegistration(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Lookup(context.Background(), other.AOR); err != nil || len(got) != 1 || got[0].Node != "n2" {
		t.Fatalf("Lookup = %+v, %v", got, err)
	}
}

// TestLocationClosed: after Close a change is refused, not lost silently.
func TestLocationClosed(t *testing.T) {
	st := openLocStore(t)
	l := startLocation(t, st, &testClock{t: locT0})
	l.Close()
	if _, err := put(l, binding("sip:1001@example.com", "<sip:a>", 1, locT0.Add(time.Hour))); !errors.Is(err, ErrLocationClosed) {
		t.Fatalf("Update after Close: %v, want ErrLocationClosed", err)
	}
	if got := storeBindings(t, st, "", locT0); len(got) != 0 {
		t.Fatalf("store = %+v", got)
	}
}

// BenchmarkBindingWrites compares concurrent REGISTER writes through the
// location service (group commit) with one store transaction per write,
// as the registrar did before it, on a real SQLite file.
func BenchmarkBindingWrites(b *testing.B) {
	var seq atomic.Int64
	next := func() store.Registration {
		n := seq.Add(1)
		return binding(fmt.Sprintf("sip:%d@example.com", n%10_000), fmt.Sprintf("<sip:%d@h>", n%10_000), uint32(n), time.Now().Add(time.Hour))
	}
	open := func(b *testing.B) *store.SQLite {
		st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}
	b.Run("group-commit", func(b *testing.B) {
		l, err := newLocation(context.Background(), open(b), time.Now, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		b.SetParallelism(32) // many phones' REGISTERs at once, as on the edge link
		cpu0 := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := next()
				if _, err := l.Update(context.Background(), r.AOR, func([]store.Registration) (bindingChange, error) {
					return bindingChange{Put: []store.Registration{r}}, nil
				}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(l.changes.Load())/float64(max(l.commits.Load(), 1)), "writes/txn")
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/write")
	})
	b.Run("txn-per-write", func(b *testing.B) {
		st := open(b)
		b.SetParallelism(32)
		cpu0 := processCPU()
		defer func() { b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e3, "cpu-µs/write") }()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := st.PutRegistration(context.Background(), next()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// processCPU is the CPU time (user + system) this process used so far, in
// nanoseconds: what a write costs the machine, whatever the wall clock.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestLocationAcrossNodesOnPostgres: two nodes' location services on one
// PostgreSQL store (a real throwaway server): a binding node A's group
// commit wrote is what node B finds for a call, and a node started
// afterwards (A restarted) loads it (issue 11: bindings in the cluster
// store).
func TestLocationAcrossNodesOnPostgres(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Start(t)
	open := func() *store.Postgres {
		p, err := store.OpenPostgres(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	clk := &testClock{t: locT0}
	a, b := startLocation(t, open(), clk), startLocation(t, open(), clk)
	reg := binding("sip:1001@example.com", "<sip:a>", 1, locT0.Add(time.Hour))
	if _, err := put(a, reg); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Lookup(ctx, reg.AOR); err != nil || len(got) != 1 || got[0].Contact != reg.Contact || got[0].Node != "n1" {
		t.Fatalf("node B's lookup of a binding made via node A = %+v, %v", got, err)
	}
	restarted := startLocation(t, open(), clk)
	if got := restarted.Bindings(reg.AOR); len(got) != 1 || got[0].Contact != reg.Contact || !got[0].ExpiresAt.Equal(reg.ExpiresAt) {
		t.Fatalf("a node started afterwards loaded %+v", got)
	}
}

// Issue 11: a node's memory is not told when another node rewrites a
// binding it holds. On a shared store routing reads the store, so node B
// sees the binding node A wrote over B's copy (the phone's new flow); an
// unshared store (one node) answers from memory.
func TestLocationLookupOnSharedStoreSeesOtherNodesChanges(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Start(t)
	open := func() *store.Postgres {
		p, err := store.OpenPostgres(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	clk := &testClock{t: locT0}
	a, b := startLocation(t, open(), clk), startLocation(t, open(), clk)
	old := binding("sip:1001@example.com", "<sip:a>", 1, locT0.Add(time.Hour))
	old.Path = []string{"<sip:old-flow@edge-1:5061;lr>"}
	if _, err := put(b, old); err != nil {
		t.Fatal(err)
	}
	newer := old
	newer.CSeq, newer.Path, newer.Node, newer.UpdatedAt = 2, []string{"<sip:new-flow@edge-2:5061;lr>"}, "n2", locT0.Add(time.Minute)
	if _, err := put(a, newer); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Lookup(ctx, old.AOR); err != nil || len(got) != 1 || got[0].Path[0] != old.Path[0] {
		t.Fatalf("unshared: node B's lookup = %+v, %v; want its own copy", got, err)
	}
	b.SetShared(true)
	if got, err := b.Lookup(ctx, old.AOR); err != nil || len(got) != 1 || got[0].Path[0] != newer.Path[0] || got[0].Node != "n2" {
		t.Fatalf("shared: node B's lookup = %+v, %v; want node A's newer binding", got, err)
	}
}
