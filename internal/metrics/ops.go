package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReadyTimeout bounds one readiness check (a store round trip).
const ReadyTimeout = 2 * time.Second

// OpsHandler is a tier's operations address: GET /metrics (Prometheus,
// from reg), /healthz (200 while the process serves HTTP at all) and
// /readyz (200 when ready reports nil, else 503 with its reason).
func OpsHandler(reg *prometheus.Registry, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// Reload counts configuration reloads (SIGHUP, issue 12 §2) by result and
// keeps the time of the last good one, registered on every registry of the
// process's tiers (quickstart serves both).
type Reload struct {
	ok, failed prometheus.Counter
	last       prometheus.Gauge
}

// NewReload builds the reload metrics on regs; the last-success time
// starts at now (the configuration loaded at start counts as one).
func NewReload(now time.Time, regs ...*prometheus.Registry) *Reload {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgeway_config_reload_total",
		Help: "Configuration reloads (SIGHUP) by result: ok (applied, restart-only changes kept their old value) or error (nothing changed)."}, []string{"result"})
	last := prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeway_config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load: the start, or a reload (SIGHUP)."})
	last.Set(float64(now.UnixNano()) / 1e9)
	for _, r := range regs {
		r.MustRegister(vec, last)
	}
	return &Reload{ok: vec.WithLabelValues("ok"), failed: vec.WithLabelValues("error"), last: last}
}

// Done counts one reload: failed when err is not nil, else good at now.
func (m *Reload) Done(err error, now time.Time) {
	if m == nil {
		return
	}
	if err != nil {
		m.failed.Inc()
		return
	}
	m.ok.Inc()
	m.last.Set(float64(now.UnixNano()) / 1e9)
}
