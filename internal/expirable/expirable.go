// Package expirable is a size-bounded LRU cache whose entries expire a
// fixed time after they were added. It has the subset of the API of
// github.com/hashicorp/golang-lru/v2/expirable that Edgeway uses, without
// that package's background goroutine: v2.0.7 starts a ticker goroutine in
// every NewLRU and offers no way to stop it (its Close is commented out),
// so every cache leaked one goroutine for the life of the process (issue
// 10). Here expiry is checked when an entry is read; expired entries that
// are never read again are pushed out by the size bound like any other.
// Nothing runs in the background, so there is nothing to close.
package expirable

import (
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// LRU is a thread-safe LRU cache with a per-entry time to live.
type LRU[K comparable, V any] struct {
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex // makes Get's check-then-remove atomic
	cache *lru.Cache[K, entry[V]]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// NewLRU returns a cache of at most size entries (size <= 0: no bound)
// that each live ttl after they were added (ttl <= 0: until evicted).
// onEvict, when not nil, is called for every entry evicted by the size
// bound, removed, purged or found expired.
func NewLRU[K comparable, V any](size int, onEvict func(K, V), ttl time.Duration) *LRU[K, V] {
	if size <= 0 {
		size = math.MaxInt
	}
	var evict func(K, entry[V])
	if onEvict != nil {
		evict = func(k K, e entry[V]) { onEvict(k, e.v) }
	}
	c, err := lru.NewWithEvict[K, entry[V]](size, evict)
	if err != nil { // only for size <= 0, excluded above
		panic(err)
	}
	return &LRU[K, V]{ttl: ttl, now: time.Now, cache: c}
}

// Add adds or replaces the value of key, restarting its time to live,
// and reports whether an entry was evicted to make room.
func (c *LRU[K, V]) Add(key K, value V) (evicted bool) {
	var exp time.Time
	if c.ttl > 0 {
		exp = c.now().Add(c.ttl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cache.Add(key, entry[V]{v: value, expires: exp})
}

// Get returns the value of key unless it is missing or expired (an
// expired entry is removed).
func (c *LRU[K, V]) Get(key K) (value V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache.Get(key)
	if !ok {
		return value, false
	}
	if !e.expires.IsZero() && !c.now().Before(e.expires) {
		c.cache.Remove(key)
		return value, false
	}
	return e.v, true
}

// Remove removes key, reporting whether it was present.
func (c *LRU[K, V]) Remove(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cache.Remove(key)
}

// Purge removes every entry.
func (c *LRU[K, V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cache.Purge()
}

// Len is the number of entries, expired ones not yet removed included.
func (c *LRU[K, V]) Len() int { return c.cache.Len() }
