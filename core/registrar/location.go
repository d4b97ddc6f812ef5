package registrar

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/edgeway/internal/store"
)

// locationStore is what the location service needs of the store: one
// transaction per batch of binding changes, and the bindings to load at
// start (and to find those another node of the cluster accepted).
type locationStore interface {
	ApplyRegistrations(ctx context.Context, puts []store.Registration, deletes []store.RegistrationKey) error
	Registrations(ctx context.Context, aor string, now time.Time) ([]store.Registration, error)
}

const (
	locShards = 64
	// locMaxBatch caps the changes written in one transaction.
	locMaxBatch = 512
	// locQueue is how many changes may wait for the writer.
	locQueue = 4096
	// locLinger is how long the writer waits for more changes before it
	// commits, when the previous commit ended less than locLinger ago
	// (changes are arriving back to back): a transaction costs SQLite about
	// as much as seven binding rows, so under load a few hundred
	// microseconds more per REGISTER buys batches several times larger.
	// When REGISTERs arrive further apart there is no wait.
	locLinger = 500 * time.Microsecond
	// locWriteTimeout bounds one transaction.
	locWriteTimeout = 5 * time.Second
	// locPurgeEvery is how often expired bindings leave memory (they are
	// never returned once expired: reads skip them).
	locPurgeEvery = 30 * time.Second
)

// ErrLocationClosed is the answer to a change after the location service
// stopped: nothing was written.
var ErrLocationClosed = errors.New("core: location service closed")

// location is the node's location service (RFC 3261 §10.3): the bindings
// in memory, sharded by AOR, which answer the REGISTER response and call
// routing, and are made durable by group commit: the changes of the
// REGISTERs that arrive together are written in one store transaction by
// one writer goroutine, and a change is applied to memory (and so may be
// acknowledged with a 200) only after its transaction committed. Changes
// to one AOR are serialised: each reads the bindings the previous one
// left, so the RFC 3261 §10.3 step 7 ordering check sees them.
type location struct {
	st     locationStore
	now    func() time.Time
	log    *slog.Logger
	seed   maphash.Seed
	shards [locShards]locShard

	queue chan *locChange
	// mu guards closed against sends to queue: Close takes it for writing
	// so every change sent before it is in queue when the writer drains.
	mu     sync.RWMutex
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup

	commits atomic.Uint64 // transactions attempted
	changes atomic.Uint64 // changes written in them
	// observe, when set, is told each transaction's duration and result
	// (edgeway_core_store_operation_seconds{op="location_commit"}).
	observe atomic.Pointer[func(time.Duration, error)]

	// shared: other nodes of a cluster write the same store, and this
	// node's memory is not told of their changes, so routing reads the
	// store (SetShared).
	shared atomic.Bool
}

type locShard struct {
	mu sync.Mutex
	m  map[string]*aorBindings
}

// aorBindings is one AOR's bindings by contact. mu is held across a change
// from reading the bindings to applying the committed result.
type aorBindings struct {
	mu   sync.Mutex
	dead bool // removed from its shard: look it up again
	b    map[string]store.Registration
}

// locChange is one REGISTER's changes, queued for the writer.
type locChange struct {
	puts []store.Registration
	dels []store.RegistrationKey
	done chan error // buffered: the writer never blocks on it
}

// bindingChange is what a REGISTER does to its AOR: the bindings it puts
// (replacing those with the same contact), the contacts it removes, or
// every binding (Contact: *).
type bindingChange struct {
	Put       []store.Registration
	Delete    []string
	DeleteAll bool
}

// newLocation loads the live bindings from st and starts the writer and
// the purge; Close stops them.
func newLocation(ctx context.Context, st locationStore, now func() time.Time, log *slog.Logger) (*location, error) {
	l := &location{st: st, now: now, log: log, seed: maphash.MakeSeed(),
		queue: make(chan *locChange, locQueue), stop: make(chan struct{})}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*aorBindings)
	}
	regs, err := st.Registrations(ctx, "", now())
	if err != nil {
		return nil, fmt.Errorf("core: loading bindings: %w", err)
	}
	for _, r := range regs {
		sh := l.shard(r.AOR)
		e := sh.m[r.AOR]
		if e == nil {
			e = &aorBindings{b: make(map[string]store.Registration)}
			sh.m[r.AOR] = e
		}
		e.b[r.Contact] = r
	}
	l.wg.Add(2)
	go l.writer()
	go l.purgeLoop()
	return l, nil
}

// Close fails the changes still queued (nothing of them was written, none
// was acknowledged) and stops the goroutines.
func (l *location) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	l.log.Info("location service stopped", "changes_written", l.changes.Load(), "transactions", l.commits.Load())
}

func (l *location) shard(aor string) *locShard {
	return &l.shards[maphash.String(l.seed, aor)%locShards]
}

// lockAOR returns aor's bindings locked, creating them if need be.
func (l *location) lockAOR(aor string) *aorBindings {
	sh := l.shard(aor)
	for {
		sh.mu.Lock()
		e := sh.m[aor]
		if e == nil {
			e = &aorBindings{b: make(map[string]store.Registration)}
			sh.m[aor] = e
		}
		sh.mu.Unlock()
		e.mu.Lock()
		if !e.dead {
			return e
		}
		e.mu.Unlock()
	}
}

// live returns e's unexpired bindings at now, by contact.
func (e *aorBindings) live(now time.Time) []store.Registration {
	out := make([]store.Registration, 0, len(e.b))
	for _, b := range e.b {
		if b.ExpiresAt.After(now) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b store.Registration) int { return strings.Compare(a.Contact, b.Contact) })
	return out
}

// Bindings returns the live bindings of aor held in memory, by contact.
func (l *location) Bindings(aor string) []store.Registration {
	sh := l.shard(aor)
	sh.mu.Lock()
	e := sh.m[aor]
	sh.mu.Unlock()
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.live(l.now())
}

// Count is the number of live bindings held in memory (the
// edgeway_core_bindings gauge; read at scrape time, not per REGISTER).
func (l *location) Count() int {
	now := l.now()
	n := 0
	var es []*aorBindings
	for i := range l.shards {
		sh := &l.shards[i]
		es = es[:0]
		sh.mu.Lock()
		for _, e := range sh.m {
			es = append(es, e)
		}
		sh.mu.Unlock()
		for _, e := range es {
			e.mu.Lock()
			for _, b := range e.b {
				if b.ExpiresAt.After(now) {
					n++
				}
			}
			e.mu.Unlock()
		}
	}
	return n
}

// ObserveCommits has f told the duration and result of every group-commit
// transaction from now on.
func (l *location) ObserveCommits(f func(time.Duration, error)) { l.observe.Store(&f) }

// Lookup returns the live bindings of aor for routing: from memory, or,
// when this node holds none, from the store, where another node of the
// cluster may have written them. On a shared store (SetShared) it reads
// the store first: another node may have rewritten a binding this node
// holds in memory (the phone moved to another edge, a newer flow), and
// only the store has that; memory answers only when the store cannot.
func (l *location) Lookup(ctx context.Context, aor string) ([]store.Registration, error) {
	if l.shared.Load() {
		regs, err := l.st.Registrations(ctx, aor, l.now())
		if err == nil {
			return regs, nil
		}
		if mem := l.Bindings(aor); len(mem) > 0 {
			l.log.Warn("reading bindings from the store failed; routing on this node's copy", "aor", aor, "err", err)
			return mem, nil
		}
		return nil, err
	}
	if regs := l.Bindings(aor); len(regs) > 0 {
		return regs, nil
	}
	return l.st.Registrations(ctx, aor, l.now())
}

// SetShared says whether other nodes of a cluster write the same store
// (PostgreSQL), so Lookup must read it (issue 11).
func (l *location) SetShared(shared bool) { l.shared.Store(shared) }

// Update runs decide on aor's live bindings and makes its change durable:
// it returns the bindings aor has after the change only once the change's
// transaction committed, and applies it to memory only then. An error
// from decide is returned as is, with nothing written; a store error
// means nothing was applied and nothing may be acknowledged. Updates of
// one AOR run one at a time, in the order they take the AOR.
func (l *location) Update(ctx context.Context, aor string, decide func(live []store.Registration) (bindingChange, error)) ([]store.Registration, error) {
	e := l.lockAOR(aor)
	defer e.mu.Unlock()
	now := l.now()
	ch, err := decide(e.live(now))
	if err != nil {
		return nil, err
	}
	c := &locChange{done: make(chan error, 1)}
	if ch.DeleteAll {
		c.dels = append(c.dels, store.RegistrationKey{AOR: aor})
	}
	for _, contact := range ch.Delete {
		c.dels = append(c.dels, store.RegistrationKey{AOR: aor, Contact: contact})
	}
	for _, p := range ch.Put {
		if p.AOR != aor || p.Contact == "" || p.ExpiresAt.IsZero() {
			return nil, fmt.Errorf("core: binding %q/%q does not belong to %s or has no expiry", p.AOR, p.Contact, aor)
		}
	}
	c.puts = ch.Put
	if len(c.puts)+len(c.dels) > 0 {
		if err := l.commit(ctx, c); err != nil {
			return nil, err
		}
	}
	if ch.DeleteAll {
		clear(e.b)
	}
	for _, contact := range ch.Delete {
		delete(e.b, contact)
	}
	for _, p := range ch.Put {
		e.b[p.Contact] = p
	}
	return e.live(now), nil
}

// commit queues c for the writer and waits for its transaction. Once
// queued, c is always answered (Close fails what is left), so the wait
// does not watch ctx: giving up early could leave a committed change out
// of memory while the AOR is unlocked.
func (l *location) commit(ctx context.Context, c *locChange) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrLocationClosed
	}
	select {
	case l.queue <- c:
	case <-ctx.Done():
		l.mu.RUnlock()
		return fmt.Errorf("core: location service busy: %w", ctx.Err())
	}
	l.mu.RUnlock()
	return <-c.done
}

// writer is the group commit: it takes whatever changes are queued when it
// wakes (at most locMaxBatch), writes them in one transaction and answers
// each with the result. No delay is added: while one transaction runs,
// the next batch gathers in the queue.
func (l *location) writer() {
	defer l.wg.Done()
	batch := make([]*locChange, 0, locMaxBatch)
	linger := time.NewTimer(locLinger)
	linger.Stop()
	var lastEnd time.Time // when the previous transaction ended (monotonic)
	for {
		batch = batch[:0]
		select {
		case <-l.stop:
			l.failQueued()
			return
		case c := <-l.queue:
			batch = append(batch, c)
		}
	gather:
		for len(batch) < locMaxBatch {
			select {
			case c := <-l.queue:
				batch = append(batch, c)
			default:
				break gather
			}
		}
		if len(batch) < locMaxBatch && time.Since(lastEnd) < locLinger {
			linger.Reset(locLinger)
		wait:
			for len(batch) < locMaxBatch {
				select {
				case c := <-l.queue:
					batch = append(batch, c)
				case <-linger.C:
					break wait
				case <-l.stop:
					break wait // commit what was gathered; the loop then stops
				}
			}
			linger.Stop()
		}
		var puts []store.Registration
		var dels []store.RegistrationKey
		for _, c := range batch {
			puts = append(puts, c.puts...)
			dels = append(dels, c.dels...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), locWriteTimeout)
		began := time.Now()
		err := l.st.ApplyRegistrations(ctx, puts, dels)
		cancel()
		if f := l.observe.Load(); f != nil {
			(*f)(time.Since(began), err)
		}
		l.commits.Add(1)
		if err != nil {
			l.log.Error("writing bindings", "changes", len(batch), "err", err)
		} else {
			l.changes.Add(uint64(len(batch)))
		}
		for _, c := range batch {
			c.done <- err
		}
		lastEnd = time.Now()
	}
}

// failQueued answers every change still queued with ErrLocationClosed.
func (l *location) failQueued() {
	for {
		select {
		case c := <-l.queue:
			c.done <- ErrLocationClosed
		default:
			return
		}
	}
}

func (l *location) purgeLoop() {
	defer l.wg.Done()
	t := time.NewTicker(locPurgeEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.purge(l.now())
		}
	}
}

// purge drops the bindings expired at now from memory (the store's own
// Purge deletes their rows), and AORs left with none. An AOR in the
// middle of a change is skipped until next time.
func (l *location) purge(now time.Time) {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for aor, e := range sh.m {
			if !e.mu.TryLock() {
				continue
			}
			for c, b := range e.b {
				if !b.ExpiresAt.After(now) {
					delete(e.b, c)
				}
			}
			if len(e.b) == 0 {
				e.dead = true
				delete(sh.m, aor)
			}
			e.mu.Unlock()
		}
		sh.mu.Unlock()
	}
}

// dropDevice removes every binding of device held in memory, durably.
func (l *location) dropDevice(ctx context.Context, device string) ([]store.Registration, error) {
	var aors []string
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for aor, e := range sh.m {
			// Device is set once per binding; read under the AOR's lock.
			e.mu.Lock()
			for _, b := range e.b {
				if b.Device == device {
					aors = append(aors, aor)
					break
				}
			}
			e.mu.Unlock()
		}
		sh.mu.Unlock()
	}
	var out []store.Registration
	for _, aor := range aors {
		var dropped []store.Registration
		_, err := l.Update(ctx, aor, func(live []store.Registration) (bindingChange, error) {
			var ch bindingChange
			for _, b := range live {
				if b.Device == device {
					ch.Delete = append(ch.Delete, b.Contact)
					dropped = append(dropped, b)
				}
			}
			return ch, nil
		})
		if err != nil {
			return out, err
		}
		out = append(out, dropped...)
	}
	return out, nil
}
