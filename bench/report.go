package bench

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one bench run as the table, the JSON file and the plot show
// it.
type Result struct {
	Name    string            `json:"name"`   // "register", "onboard", "calls"
	Target  string            `json:"target"` // what was driven
	Started time.Time         `json:"started"`
	Params  map[string]string `json:"params"`
	Summary Summary           `json:"summary"`
	Procs   []ProcUsage       `json:"processes,omitempty"`
	// Extra holds figures particular to the run (media loss, bytes per
	// idle phone, …), shown under the table; Figures the same as numbers,
	// for comparisons (bench/peers).
	Extra   map[string]string  `json:"extra,omitempty"`
	Figures map[string]float64 `json:"figures,omitempty"`
	Series  []Point            `json:"series"`
}

// WriteTable prints r for a person.
func WriteTable(w io.Writer, r Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	s := r.Summary
	fmt.Fprintf(tw, "%s against %s\n", r.Name, r.Target)
	fmt.Fprintf(tw, "attempts\t%d\n", s.Attempts)
	fmt.Fprintf(tw, "successes\t%d\n", s.Successes)
	for _, k := range SortedErrors(s.Errors) {
		fmt.Fprintf(tw, "errors: %s\t%d\n", k, s.Errors[k])
	}
	if len(s.Errors) == 0 {
		fmt.Fprintf(tw, "errors\t0\n")
	}
	fmt.Fprintf(tw, "elapsed\t%.1f s\n", time.Duration(s.Elapsed).Seconds())
	fmt.Fprintf(tw, "throughput\t%.0f /s\n", s.Throughput)
	fmt.Fprintf(tw, "latency p50 / p90 / p99 / max\t%s / %s / %s / %s\n", fmtMs(s.P50), fmtMs(s.P90), fmtMs(s.P99), fmtMs(s.Max))
	for _, p := range r.Procs {
		pss := ""
		if p.PSSEnd > 0 {
			pss = ", PSS " + fmtBytes(p.PSSEnd)
		}
		fmt.Fprintf(tw, "%s (pid %d)\tCPU %.2f s, peak RSS %s%s\n", p.Name, p.PID, p.CPUSeconds, fmtBytes(p.PeakRSS), pss)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Extra)) {
		fmt.Fprintf(tw, "%s\t%s\n", k, r.Extra[k])
	}
	return tw.Flush()
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// WriteJSONFile writes r to path, indented.
func WriteJSONFile(path string, r Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WritePlot draws r's series as an SVG: successes per second on top,
// latency p50 and p99 per second below, on a shared time axis.
func WritePlot(w io.Writer, r Result) error {
	const (
		width, height   = 900, 560
		left, right     = 70, 20
		top, gap, panel = 50, 60, 200
	)
	pts := r.Series
	n := len(pts)
	if n == 0 {
		n = 1
	}
	maxRate, maxLat := 1.0, 0.001
	for _, p := range pts {
		maxRate = max(maxRate, float64(p.OK))
		maxLat = max(maxLat, ms(p.P99))
	}
	maxRate, maxLat = niceCeil(maxRate), niceCeil(maxLat)
	x := func(i int) float64 { return left + float64(i)*float64(width-left-right)/float64(max(n-1, 1)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf("edgeway bench %s — %s (%s)", r.Name, r.Target, r.Started.Format("2006-01-02 15:04"))))
	axes := func(y0 int, label string, maxV float64, unit string) {
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left, y0-8, html.EscapeString(label))
		for k := 0; k <= 4; k++ {
			y := float64(y0+panel) - float64(k)*panel/4
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, trimFloat(maxV*float64(k)/4)+unit)
		}
	}
	line := func(y0 int, maxV float64, color string, v func(Point) float64) {
		var path strings.Builder
		for i, p := range pts {
			y := float64(y0+panel) - v(p)/maxV*panel
			fmt.Fprintf(&path, "%.1f,%.1f ", x(i), y)
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.TrimSpace(path.String()))
	}
	y1, y2 := top, top+panel+gap
	axes(y1, "successes per second", maxRate, "")
	line(y1, maxRate, "#1f77b4", func(p Point) float64 { return float64(p.OK) })
	axes(y2, "latency per second: p50 (green), p99 (red)", maxLat, " ms")
	line(y2, maxLat, "#2ca02c", func(p Point) float64 { return ms(p.P50) })
	line(y2, maxLat, "#d62728", func(p Point) float64 { return ms(p.P99) })
	for i := 0; i < n; i += max(1, n/10) {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%ds</text>`+"\n", x(i), y2+panel+18, i)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(m Millis) float64 { return float64(m) / float64(time.Millisecond) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := 1.0 // the largest power of ten not above v
	for p*10 <= v {
		p *= 10
	}
	for p > v {
		p /= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
