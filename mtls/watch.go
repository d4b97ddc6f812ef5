package mtls

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// recheckInterval is the minimum time between two stat rounds of a watched
// set of files.
const recheckInterval = time.Second

// reloader holds a value loaded from a set of files and reloads it when any
// of the files changes (different inode, size or modification time). Files
// are stat'ed at most once per recheckInterval, by one goroutine at a time;
// concurrent readers never wait for a reload and keep getting the current
// value. A failed reload keeps the current value and records the error.
type reloader[T any] struct {
	files []string
	load  func() (*T, error)
	now   func() time.Time // replaceable in tests

	cur     atomic.Pointer[T]
	lastErr atomic.Pointer[error]
	next    atomic.Int64 // UnixNano before which no stat round happens

	mu     sync.Mutex // held during a stat/reload round
	stamps []os.FileInfo
}

func newReloader[T any](files []string, load func() (*T, error)) (*reloader[T], error) {
	r := &reloader[T]{files: files, load: load, now: time.Now}
	stamps, err := statAll(files)
	if err != nil {
		return nil, err
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(v)
	r.stamps = stamps
	r.next.Store(r.now().Add(recheckInterval).UnixNano())
	return r, nil
}

// get returns the current value, first reloading it if a stat round is due
// and the files changed.
func (r *reloader[T]) get() *T {
	if r.now().UnixNano() >= r.next.Load() && r.mu.TryLock() {
		r.check()
		r.mu.Unlock()
	}
	return r.cur.Load()
}

// check runs one stat round; r.mu must be held.
func (r *reloader[T]) check() {
	now := r.now()
	if now.UnixNano() < r.next.Load() {
		return // another goroutine just did it
	}
	r.next.Store(now.Add(recheckInterval).UnixNano())
	stamps, err := statAll(r.files)
	if err != nil {
		r.setErr(err)
		return
	}
	if sameStamps(r.stamps, stamps) {
		r.setErr(nil)
		return
	}
	v, err := r.load()
	if err != nil {
		// Keep serving the previous value; stamps are left unchanged so
		// the load is retried on the next round.
		r.setErr(err)
		return
	}
	r.cur.Store(v)
	r.stamps = stamps
	r.setErr(nil)
}

// reload loads now, whatever the files' stamps (the inputs changed in
// memory). On failure the previous value stays.
func (r *reloader[T]) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, err := r.load()
	if err != nil {
		r.setErr(err)
		return err
	}
	r.cur.Store(v)
	r.setErr(nil)
	return nil
}

// reloadFiles reads the files now, whatever their stamps (SIGHUP), and
// puts the value in service. On failure the previous value stays and the
// error is both recorded and returned.
func (r *reloader[T]) reloadFiles() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stamps, err := statAll(r.files)
	if err != nil {
		r.setErr(err)
		return err
	}
	v, err := r.load()
	if err != nil {
		r.setErr(err)
		return err
	}
	r.cur.Store(v)
	r.stamps = stamps
	r.next.Store(r.now().Add(recheckInterval).UnixNano())
	r.setErr(nil)
	return nil
}

// expire makes the next get run a stat round regardless of the interval.
func (r *reloader[T]) expire() { r.next.Store(0) }

func (r *reloader[T]) setErr(err error) {
	if err == nil {
		r.lastErr.Store(nil)
		return
	}
	r.lastErr.Store(&err)
}

func (r *reloader[T]) err() error {
	if p := r.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

func statAll(files []string) ([]os.FileInfo, error) {
	out := make([]os.FileInfo, len(files))
	for i, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("mtls: checking %s: %w", f, err)
		}
		out[i] = fi
	}
	return out, nil
}

func sameStamps(a, b []os.FileInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !os.SameFile(a[i], b[i]) || a[i].Size() != b[i].Size() || !a[i].ModTime().Equal(b[i].ModTime()) {
			return false
		}
	}
	return true
}
