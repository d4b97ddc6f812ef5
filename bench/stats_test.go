package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/logx"
)

func msec(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentileNearestRank(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 100; i++ {
		v = append(v, msec(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, msec(50)}, {90, msec(90)}, {99, msec(99)}, {99.9, msec(100)}, {100, msec(100)}, {1, msec(1)}, {0.5, msec(1)}} {
		if got := Percentile(v, tc.p); got != tc.want {
			t.Errorf("p%v of 1..100 ms = %v, want %v", tc.p, got, tc.want)
		}
	}
	ten := []time.Duration{msec(1), msec(2), msec(3), msec(4), msec(5), msec(6), msec(7), msec(8), msec(9), msec(10)}
	if got := Percentile(ten, 50); got != msec(5) {
		t.Errorf("p50 of 1..10 = %v, want 5ms (nearest rank: the 5th)", got)
	}
	if got := Percentile(ten, 99); got != msec(10) {
		t.Errorf("p99 of 1..10 = %v, want 10ms", got)
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
	if got := Percentile([]time.Duration{msec(7)}, 99); got != msec(7) {
		t.Errorf("p99 of one value = %v", got)
	}
}

func TestRecorderSummaryAndSeries(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r := NewRecorder(t0)
	// Second 0: 1..4 ms ok; second 1: 10 ms ok, two 401s; second 3: a timeout.
	for i := 1; i <= 4; i++ {
		r.Record(t0.Add(msec(100*i)), msec(i), "")
	}
	r.Record(t0.Add(1500*time.Millisecond), msec(10), "")
	r.Record(t0.Add(1600*time.Millisecond), msec(50), "SIP 401")
	r.Record(t0.Add(1700*time.Millisecond), msec(60), "SIP 401")
	r.Record(t0.Add(3100*time.Millisecond), msec(5000), "timeout")
	s := r.Summary(t0.Add(5 * time.Second))
	if s.Attempts != 8 || s.Successes != 5 {
		t.Fatalf("attempts %d successes %d, want 8 and 5", s.Attempts, s.Successes)
	}
	if s.Errors["SIP 401"] != 2 || s.Errors["timeout"] != 1 || len(s.Errors) != 2 {
		t.Errorf("errors %v", s.Errors)
	}
	if s.Throughput != 1.0 { // 5 successes in 5 s
		t.Errorf("throughput %v, want 1/s", s.Throughput)
	}
	// Failures' latencies do not count: successes are 1,2,3,4,10 ms.
	if s.P50 != Millis(msec(3)) || s.P90 != Millis(msec(10)) || s.P99 != Millis(msec(10)) || s.Max != Millis(msec(10)) {
		t.Errorf("p50 %v p90 %v p99 %v max %v", time.Duration(s.P50), time.Duration(s.P90), time.Duration(s.P99), time.Duration(s.Max))
	}
	series := r.Series()
	if len(series) != 4 {
		t.Fatalf("series of %d seconds, want 4: %+v", len(series), series)
	}
	want := []Point{{0, 4, 0, Millis(msec(2)), Millis(msec(4))}, {1, 1, 2, Millis(msec(10)), Millis(msec(10))}, {2, 0, 0, 0, 0}, {3, 0, 1, 0, 0}}
	for i := range want {
		if series[i] != want[i] {
			t.Errorf("second %d: %+v, want %+v", i, series[i], want[i])
		}
	}
	if got := SortedErrors(s.Errors); fmt.Sprint(got) != "[SIP 401 timeout]" {
		t.Errorf("SortedErrors = %v", got)
	}
	b, err := json.Marshal(s)
	if err != nil || !bytes.Contains(b, []byte(`"p50_ms":3.000`)) || !bytes.Contains(b, []byte(`"elapsed_s":5.000`)) {
		t.Errorf("JSON %s %v", b, err)
	}
}

func TestErrorClass(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("phone: REGISTER: %w", context.DeadlineExceeded), "timeout"},
		{refused, "connection refused"},
		{fmt.Errorf("wrapped: %w", syscall.ECONNRESET), "connection reset"},
		{&net.OpError{Op: "read", Err: os.ErrClosed}, "connection"},
		{fmt.Errorf("something else"), "error"},
	} {
		if got := ErrorClass(tc.err); got != tc.want {
			t.Errorf("ErrorClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestLoadStopsByCountAndPaces(t *testing.T) {
	ch := make(chan struct{}, 1000)
	rec, err := Load{Workers: 4, Count: 37, Duration: time.Minute}.Run(context.Background(), func(ctx context.Context, w int) string {
		ch <- struct{}{}
		if w == 0 {
			return "SIP 503"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := len(ch)
	s := rec.Summary(time.Now())
	if calls != 37 || s.Attempts != 37 {
		t.Errorf("%d calls, %d recorded; want exactly the 37 asked for", calls, s.Attempts)
	}
	if s.Errors["SIP 503"]+s.Successes != 37 {
		t.Errorf("errors %v + successes %d ≠ 37", s.Errors, s.Successes)
	}
	// Paced at 100/s: attempt k is due k×10 ms after the start, and
	// timers never fire early, so the k-th attempt to start cannot start
	// before then (a closed loop would start them all at once).
	var mu sync.Mutex
	var starts []time.Duration
	begin := time.Now()
	if _, err := (Load{Workers: 8, Rate: 100, Count: 20, Duration: time.Minute}).Run(context.Background(), func(ctx context.Context, w int) string {
		mu.Lock()
		starts = append(starts, time.Since(begin))
		mu.Unlock()
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(starts)
	if len(starts) != 20 {
		t.Fatalf("%d attempts, want 20", len(starts))
	}
	for k, at := range starts {
		if due := time.Duration(k) * 10 * time.Millisecond; at < due {
			t.Errorf("attempt %d started at %v, before it was due at %v", k, at, due)
		}
	}
	if _, err := (Load{Workers: 1}).Run(context.Background(), func(context.Context, int) string { return "" }); err == nil {
		t.Error("a run with neither a duration nor a count was accepted")
	}
}

func TestReportOutputs(t *testing.T) {
	t0 := time.Now()
	r := NewRecorder(t0)
	for i := range 30 {
		r.Record(t0.Add(time.Duration(i)*100*time.Millisecond), msec(i%7+1), "")
	}
	r.Record(t0.Add(time.Second), msec(1), "HTTP 429")
	res := Result{Name: "register", Target: "127.0.0.1:5061 <edge> & core", Started: t0, Summary: r.Summary(t0.Add(3 * time.Second)), Series: r.Series(),
		Procs: []ProcUsage{{Name: "edge+core", PID: 42, CPUSeconds: 1.5, PeakRSS: 64 << 20}}, Extra: map[string]string{"memory per idle phone": "9.1 KiB"}}
	var table bytes.Buffer
	if err := WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"attempts", "31", "successes", "30", "errors: HTTP 429", "throughput", "10 /s", "p50 / p90 / p99 / max", "edge+core (pid 42)", "CPU 1.50 s, peak RSS 64.0 MiB", "memory per idle phone", "9.1 KiB"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var svg bytes.Buffer
	if err := WritePlot(&svg, res); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&svg)
	polylines := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("plot is not well-formed XML: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			polylines++
			for _, a := range se.Attr {
				if a.Name.Local == "points" && strings.Count(a.Value, ",") != len(res.Series) {
					t.Errorf("polyline with %d points, want %d", strings.Count(a.Value, ","), len(res.Series))
				}
			}
		}
	}
	if polylines != 3 {
		t.Errorf("%d lines in the plot, want throughput, p50 and p99", polylines)
	}
	if niceCeil(7) != 10 || niceCeil(0.13) != 0.2 || niceCeil(1500) != 2000 || niceCeil(50) != 50 {
		t.Errorf("niceCeil: %v %v %v %v", niceCeil(7), niceCeil(0.13), niceCeil(1500), niceCeil(50))
	}
}

func TestReadProcSelf(t *testing.T) {
	buf := make([]byte, 32<<20) // touch memory so the high-water mark is above it
	for i := range buf {
		buf[i] = byte(i)
	}
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PeakRSS < 32<<20 || s.RSS <= 0 || s.PeakRSS < s.RSS {
		t.Errorf("RSS %d, peak %d; want peak ≥ 32 MiB and ≥ RSS", s.RSS, s.PeakRSS)
	}
	// Nothing of this process's 32 MiB is shared: its PSS holds them.
	if s.PSS < 32<<20 || s.PSS > s.RSS {
		t.Errorf("PSS %d, RSS %d; want 32 MiB ≤ PSS ≤ RSS", s.PSS, s.RSS)
	}
	if _, err := ReadProc(1 << 30); err == nil {
		t.Error("a process that does not exist was read")
	}
	// Three more open files are three more descriptors; the limit is
	// the one getrlimit gives.
	var files []*os.File
	for range 3 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	s2, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.FDs <= 0 || s2.FDs != s.FDs+len(files) {
		t.Errorf("descriptors %d, then %d after opening %d files", s.FDs, s2.FDs, len(files))
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 1<<31 && s2.FDLimit != int(lim.Cur) {
		t.Errorf("open-files limit %d, getrlimit says %d", s2.FDLimit, lim.Cur)
	}
	_ = buf[len(buf)-1]
}

// Drain: attempts under way when Duration ends run to their end and count;
// none starts after Duration. Without it they are cut short and not
// counted as failures.
func TestLoadDrain(t *testing.T) {
	op := func(ctx context.Context, _ int) string {
		select {
		case <-time.After(300 * time.Millisecond): // longer than the run
			return ""
		case <-ctx.Done():
			return "cut"
		}
	}
	rec, err := Load{Workers: 3, Duration: 100 * time.Millisecond, Drain: 5 * time.Second}.Run(context.Background(), op)
	if err != nil {
		t.Fatal(err)
	}
	if s := rec.Summary(time.Now()); s.Attempts != 3 || s.Successes != 3 {
		t.Errorf("with Drain: %d attempts, %d successes; want the 3 under way, finished, and no more", s.Attempts, s.Successes)
	}
	rec, err = Load{Workers: 3, Duration: 100 * time.Millisecond}.Run(context.Background(), op)
	if err != nil {
		t.Fatal(err)
	}
	if s := rec.Summary(time.Now()); s.Attempts != 0 {
		t.Errorf("without Drain: %d attempts recorded (%v); want the cut ones left out", s.Attempts, s.Errors)
	}
}

// The progress line: rewritten in place each second, then left on screen
// with the final figures.
func TestLoadProgressLine(t *testing.T) {
	var buf logx.Buffer
	_, err := Load{Workers: 2, Count: 40, Duration: time.Minute, Rate: 20, Progress: &buf, What: "REGISTER"}.Run(context.Background(),
		func(context.Context, int) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Split(out, "\r")
	if len(lines) < 2 { // at least one live update (the run lasts over a second) and the final line
		t.Fatalf("progress output %q: no live updates", out)
	}
	final := lines[len(lines)-1]
	for _, want := range []string{"REGISTER", "40/40 done", "/s", "errors 0", "p50", "p99"} {
		if !strings.Contains(final, want) {
			t.Errorf("final progress line %q lacks %q", final, want)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("the final progress line does not end the line: %q", out)
	}
}
