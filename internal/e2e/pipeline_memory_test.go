package e2e

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// TestPipelineMemory is the measurement behind issue 9 item 10, not a
// regular test: N REGISTERs (valid bearer token) pipelined on one TLS
// connection to the edge or to the core's Phone OAuth port, reporting the
// peak Go heap in use (both tiers run in this process), the process's peak
// RSS and the most goroutines seen. Run one configuration per process so
// the RSS figure is its own:
//
//	EDGEWAY_PIPELINE_MEASURE=edge:32 go test -run TestPipelineMemory -v ./internal/e2e/
//
// with target edge or core, and sip_max_inflight after the colon (-1: no
// bound, the behaviour before the fix). EDGEWAY_PIPELINE_N sets N (default
// 10000).
func TestPipelineMemory(t *testing.T) {
	spec := os.Getenv("EDGEWAY_PIPELINE_MEASURE")
	if spec == "" {
		t.Skip("a measurement; set EDGEWAY_PIPELINE_MEASURE=edge:32 (or core:-1, ...) to run it")
	}
	target, limitStr, _ := strings.Cut(spec, ":")
	limit, err := strconv.Atoi(limitStr)
	if err != nil || (target != "edge" && target != "core") {
		t.Fatalf("EDGEWAY_PIPELINE_MEASURE=%q: want edge:N or core:N", spec)
	}
	n := 10000
	if v := os.Getenv("EDGEWAY_PIPELINE_N"); v != "" {
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		l.Core.SIPMaxInFlight, l.Edge.SIPMaxInFlight = limit, limit
	}})
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(context.Background(), env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	addr := env.Info.EdgeSIP
	if target == "core" {
		addr = env.Info.CorePhoneOAuth
	}
	conn := tlsFrom(t, env, "127.0.0.1", addr)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var (
		mu                sync.Mutex
		peakHeap          uint64
		peakG             int
		stop, samplerDone = make(chan struct{}), make(chan struct{})
	)
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			mu.Lock()
			peakHeap = max(peakHeap, m.HeapInuse)
			peakG = max(peakG, runtime.NumGoroutine())
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	start := time.Now()
	codes := pipeline(t, conn, tok.AccessToken, n)
	elapsed := time.Since(start)
	close(stop)
	<-samplerDone
	t.Logf("%s sip_max_inflight=%d: %d REGISTERs pipelined on one connection in %s; answers %v", target, limit, n, elapsed.Round(time.Millisecond), codes)
	t.Logf("peak heap in use %.1f MB (%.1f MB over the %.1f MB before), peak goroutines %d, peak RSS (VmHWM) %s",
		float64(peakHeap)/1e6, float64(peakHeap-base)/1e6, float64(base)/1e6, peakG, vmHWM())
	f := env.Edge.SIP().InFlight()
	if target == "core" {
		f = env.Core.PhoneInFlight()
	}
	t.Logf("in-flight gauge: peak %d per connection, %d refused with 503 after a stall", f.Peak(), f.Refused())
}

// vmHWM is the process's peak resident set size from /proc, or "n/a".
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "n/a"
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			return strings.TrimSpace(string(v))
		}
	}
	return "n/a"
}
