package testenv_test

import (
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/pgtest"
	"github.com/edgeway/edgeway/internal/testenv"
)

// TestNoGoroutineOutlivesTheTiers builds a core and an edge on a real
// store, serves them, stops them and checks that every goroutine they
// started has ended (issue 10: the core's four expirable lookup caches
// each left a ticker goroutine running for ever).
func TestNoGoroutineOutlivesTheTiers(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("env", func(t *testing.T) {
		env := testenv.Start(t, testenv.Options{})
		// Serving: the admin API answers (so the tiers have started
		// everything they start) before they are stopped.
		if regs := env.Registrations(t); len(regs) != 0 {
			t.Fatalf("fresh env has registrations %v", regs)
		}
	}) // the subtest's cleanups stop both tiers and close the store
	// Goroutines end shortly after their owners close; poll, bounded.
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("%d goroutines before the tiers, %d after closing them:\n%s", before, n, b.String())
	}
}

// TestClusterStopsEverything: a cluster's nodes, stopped and started
// again and then stopped for good with the test, leave no goroutine
// behind (the edges' health checks, the cores' feeds, the pools of their
// PostgreSQL stores).
func TestClusterStopsEverything(t *testing.T) {
	srv := pgtest.Start(t)
	before := runtime.NumGoroutine()
	t.Run("cluster", func(t *testing.T) {
		c := testenv.StartCluster(t, testenv.ClusterOptions{StoreURL: srv.URL, Cores: 2, Edges: 1})
		c.StopCore(0)
		c.WaitEdgeCoreUp(0, 0, false)
		if c.Cores[0].Running() || c.Cores[0].Core() != nil {
			t.Fatal("core-1 still running after StopCore")
		}
		c.StartCore(0)
		c.WaitEdgeCoreUp(0, 0, true)
		c.StopEdge(0)
		c.StartEdge(0)
		c.WaitEdgeSeesCores(0)
	})
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("%d goroutines before the cluster, %d after stopping it:\n%s", before, n, b.String())
	}
}
