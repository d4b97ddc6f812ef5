package bench

// Load-run statistics: every attempt's outcome and latency, summarised as
// an operator reads a load test (attempts, successes, each error class,
// throughput, latency percentiles) and as a per-second series for plots.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Recorder collects the outcomes of a load run. It is safe for concurrent
// use. Latencies are those of successful attempts; failures are counted
// by class.
type Recorder struct {
	mu       sync.Mutex
	start    time.Time
	attempts int
	lat      []time.Duration
	errs     map[string]int
	secs     []second // per second since start
}

type second struct {
	ok, failed int
	lat        []time.Duration
}

// NewRecorder starts a recorder whose series counts seconds from start.
func NewRecorder(start time.Time) *Recorder {
	return &Recorder{start: start, errs: map[string]int{}}
}

// Record notes one attempt finished at `at` after latency; class is "" for
// a success, else its error class (ErrorClass, "SIP 401", "HTTP 429", …).
func (r *Recorder) Record(at time.Time, latency time.Duration, class string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	sec := int(at.Sub(r.start) / time.Second)
	if sec < 0 {
		sec = 0
	}
	for len(r.secs) <= sec {
		r.secs = append(r.secs, second{})
	}
	if class == "" {
		r.lat = append(r.lat, latency)
		r.secs[sec].ok++
		r.secs[sec].lat = append(r.secs[sec].lat, latency)
		return
	}
	r.errs[class]++
	r.secs[sec].failed++
}

// Start is when the run began.
func (r *Recorder) Start() time.Time { return r.start }

// Summary is a load run's outcome up to a moment.
type Summary struct {
	Attempts   int            `json:"attempts"`
	Successes  int            `json:"successes"`
	Errors     map[string]int `json:"errors"`
	Elapsed    Seconds        `json:"elapsed_s"`
	Throughput float64        `json:"throughput_per_s"` // successes per second
	P50        Millis         `json:"p50_ms"`
	P90        Millis         `json:"p90_ms"`
	P99        Millis         `json:"p99_ms"`
	Max        Millis         `json:"max_ms"`
}

// Seconds and Millis are durations that marshal as numbers.
type (
	Seconds time.Duration
	Millis  time.Duration
)

func (s Seconds) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%.3f", time.Duration(s).Seconds()), nil
}

func (m Millis) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%.3f", float64(m)/float64(time.Millisecond)), nil
}

// Summary summarises what was recorded up to now.
func (r *Recorder) Summary(now time.Time) Summary {
	r.mu.Lock()
	lat := slices.Clone(r.lat)
	s := Summary{Attempts: r.attempts, Successes: len(r.lat), Errors: make(map[string]int, len(r.errs))}
	for k, v := range r.errs {
		s.Errors[k] = v
	}
	r.mu.Unlock()
	s.Elapsed = Seconds(now.Sub(r.start))
	if el := now.Sub(r.start).Seconds(); el > 0 {
		s.Throughput = float64(s.Successes) / el
	}
	slices.Sort(lat)
	s.P50, s.P90, s.P99 = Millis(Percentile(lat, 50)), Millis(Percentile(lat, 90)), Millis(Percentile(lat, 99))
	if len(lat) > 0 {
		s.Max = Millis(lat[len(lat)-1])
	}
	return s
}

// Point is one second of a run.
type Point struct {
	Second int    `json:"t_s"`
	OK     int    `json:"ok"`
	Failed int    `json:"failed"`
	P50    Millis `json:"p50_ms"`
	P99    Millis `json:"p99_ms"`
}

// Series is the run second by second.
func (r *Recorder) Series() []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Point, len(r.secs))
	for i, s := range r.secs {
		lat := slices.Clone(s.lat)
		slices.Sort(lat)
		out[i] = Point{Second: i, OK: s.ok, Failed: s.failed, P50: Millis(Percentile(lat, 50)), P99: Millis(Percentile(lat, 99))}
	}
	return out
}

// Percentile is the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value with at least p % of the values
// at or below it. Zero for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// rank = ceil(p/100 * n), computed in integers to avoid float error
	// at exact boundaries (p=50 of 10 values is the 5th).
	rank := int((int64(p*1000)*int64(n) + 100_000 - 1) / 100_000)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

// ErrorClass names the class of a failed attempt for the results table:
// "timeout", "connection refused", "connection reset", "TLS", "connection"
// or "error".
func ErrorClass(err error) string {
	var ne net.Error
	var oe *net.OpError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case isTLS(err):
		return "TLS"
	case errors.As(err, &oe):
		return "connection"
	}
	return "error"
}

func isTLS(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if t := fmt.Sprintf("%T", e); t == "*tls.CertificateVerificationError" || t == "tls.RecordHeaderError" || t == "tls.AlertError" {
			return true
		}
	}
	return false
}

// SortedErrors lists error classes by count, largest first (ties by name).
func SortedErrors(errs map[string]int) []string {
	out := make([]string, 0, len(errs))
	for k := range errs {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if errs[out[i]] != errs[out[j]] {
			return errs[out[i]] > errs[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}
