package expirable

import (
	"runtime"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestEntriesExpireAfterTTL(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := NewLRU[string, int](10, nil, 2*time.Second)
	c.now = clk.now
	c.Add("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("fresh entry: got %v %v, want 1 true", v, ok)
	}
	clk.t = clk.t.Add(1999 * time.Millisecond)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("entry gone before its ttl")
	}
	clk.t = clk.t.Add(time.Millisecond)
	if v, ok := c.Get("a"); ok {
		t.Fatalf("entry %v still returned at its ttl", v)
	}
	if c.Len() != 0 {
		t.Fatalf("expired entry kept after Get: len %d", c.Len())
	}
	c.Add("a", 2) // re-adding restarts the ttl
	clk.t = clk.t.Add(time.Second)
	if v, ok := c.Get("a"); !ok || v != 2 {
		t.Fatalf("re-added entry: got %v %v, want 2 true", v, ok)
	}
}

func TestSizeBoundEvictsLeastRecentlyUsed(t *testing.T) {
	var evicted []string
	c := NewLRU[string, int](2, func(k string, _ int) { evicted = append(evicted, k) }, time.Hour)
	c.Add("a", 1)
	c.Add("b", 2)
	c.Get("a")
	if !c.Add("c", 3) {
		t.Fatal("Add beyond the size did not report an eviction")
	}
	if _, ok := c.Get("b"); ok {
		t.Fatal("least recently used entry b kept beyond the size bound")
	}
	if len(evicted) != 1 || evicted[0] != "b" {
		t.Fatalf("evicted %v, want [b]", evicted)
	}
	c.Purge()
	if c.Len() != 0 {
		t.Fatalf("len after Purge %d", c.Len())
	}
}

// TestNoGoroutine is why the package exists: building caches starts
// nothing that would outlive them.
func TestNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	cs := make([]*LRU[int, int], 0, 8)
	for range 8 {
		cs = append(cs, NewLRU[int, int](10, nil, 20*time.Millisecond))
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("8 caches started %d goroutines", n-before)
	}
	runtime.KeepAlive(cs)
}
