package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Load is how a load run drives its operation: Workers goroutines, each
// doing one attempt at a time, paced to Rate attempts per second in all
// (0: as fast as the workers go, a closed loop). The run stops after
// Duration or Count attempts, whichever comes first; at least one of them
// must be set, so every run ends by itself.
type Load struct {
	Workers  int
	Rate     float64
	Duration time.Duration
	Count    int
	// Drain lets attempts under way at the end of Duration run this much
	// longer (a call placed near the end talks to its end); no attempt
	// starts after Duration. Default 0: they are cut short.
	Drain time.Duration
	// Progress, when set, gets a live line each second: rate, errors and
	// p50/p99 so far (a terminal: the line is rewritten in place).
	Progress io.Writer
	// What names the operation in the progress line ("REGISTER").
	What string
}

// Op is one attempt by worker; it returns "" on success or the failure's
// class ("SIP 503", ErrorClass(err), …).
type Op func(ctx context.Context, worker int) string

// Run drives op under l and returns what was recorded.
func (l Load) Run(ctx context.Context, op Op) (*Recorder, error) {
	if l.Workers <= 0 {
		return nil, fmt.Errorf("bench: need at least one worker")
	}
	if l.Duration <= 0 && l.Count <= 0 {
		return nil, fmt.Errorf("bench: a run needs a duration or a count, so it ends by itself")
	}
	opCtx := ctx // what attempts run under
	if l.Duration > 0 {
		var cancel context.CancelFunc
		opCtx, cancel = context.WithTimeout(ctx, l.Duration+l.Drain)
		defer cancel()
		ctx, cancel = context.WithTimeout(opCtx, l.Duration)
		defer cancel()
	}
	start := time.Now()
	rec := NewRecorder(start)
	var next atomic.Int64 // attempt numbers handed out
	var wg sync.WaitGroup
	for w := range l.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if l.Count > 0 && i >= int64(l.Count) {
					return
				}
				if l.Rate > 0 { // attempt i is due at start + i/Rate
					due := start.Add(time.Duration(float64(i) / l.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-ctx.Done():
							t.Stop()
							return
						case <-t.C:
						}
					}
				}
				t0 := time.Now()
				class := op(opCtx, w)
				if class != "" && opCtx.Err() != nil {
					return // cut short by the end of the run: not a failure
				}
				rec.Record(time.Now(), time.Since(t0), class)
			}
		}()
	}
	done := make(chan struct{})
	if l.Progress != nil {
		go l.progress(rec, done)
	}
	wg.Wait()
	close(done)
	if l.Progress != nil {
		fmt.Fprintf(l.Progress, "\r%s\n", progressLine(l.What, rec.Summary(time.Now()), l.Count))
	}
	return rec, nil
}

func (l Load) progress(rec *Recorder, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fmt.Fprintf(l.Progress, "\r%s", progressLine(l.What, rec.Summary(time.Now()), l.Count))
		}
	}
}

func progressLine(what string, s Summary, count int) string {
	failed := s.Attempts - s.Successes
	of := ""
	if count > 0 {
		of = fmt.Sprintf("/%d", count)
	}
	return fmt.Sprintf("%-9s %6.1fs  %d%s done  %8.0f/s  errors %d  p50 %s  p99 %s   ",
		what, time.Duration(s.Elapsed).Seconds(), s.Attempts, of, s.Throughput, failed, fmtMs(s.P50), fmtMs(s.P99))
}

func fmtMs(m Millis) string { return fmt.Sprintf("%.2f ms", float64(m)/float64(time.Millisecond)) }
