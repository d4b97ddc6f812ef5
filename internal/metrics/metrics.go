// Package metrics holds the Prometheus metrics of the two tiers (issue 12
// §2): one registry per tier and node, never the global default, so that
// several nodes in one process (quickstart, tests) keep their own series.
// Names follow the Prometheus conventions: edgeway_<tier>_…, counters end
// in _total, durations are histograms in _seconds.
//
// The hot paths (a REGISTER answered, a token issued) touch counters whose
// label children are resolved when the metrics are built; the values the
// tiers already keep (atomic counters, gauges read under a lock) are read
// only when Prometheus scrapes, by collectors (CounterFunc, GaugeFunc, or a
// Collector of the tier's own).
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry is a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves r in the Prometheus text (or OpenMetrics) format.
func Handler(r *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{Registry: r})
}

// sipCodes are the SIP status codes a tier answers REGISTER with, whose
// counter children are resolved up front; any other code is counted under
// its own label when it first happens.
var sipCodes = []int{200, 400, 401, 403, 404, 408, 420, 423, 430, 480, 482, 483, 486, 500, 503, 504}

// Codes counts final SIP responses by status code (label "code").
type Codes struct {
	vec   *prometheus.CounterVec
	fixed [700]prometheus.Counter // by code; nil → resolve on use
}

func newCodes(vec *prometheus.CounterVec, labels ...string) *Codes {
	c := &Codes{vec: vec.MustCurryWith(curry(labels))}
	for _, code := range sipCodes {
		c.fixed[code] = c.vec.WithLabelValues(strconv.Itoa(code))
	}
	return c
}

func curry(kv []string) prometheus.Labels {
	l := prometheus.Labels{}
	for i := 0; i+1 < len(kv); i += 2 {
		l[kv[i]] = kv[i+1]
	}
	return l
}

// Inc counts one final response with status code; nil c counts nothing.
func (c *Codes) Inc(code int) {
	if c == nil || code < 200 {
		return
	}
	if code < len(c.fixed) && c.fixed[code] != nil {
		c.fixed[code].Inc()
		return
	}
	c.vec.WithLabelValues(strconv.Itoa(code)).Inc()
}

// GaugeFunc registers a gauge read from fn at each scrape.
func GaugeFunc(r *prometheus.Registry, name, help string, fn func() float64) {
	r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// CounterFunc registers a counter read from fn (a count the tier keeps) at
// each scrape.
func CounterFunc(r *prometheus.Registry, name, help string, labels prometheus.Labels, fn func() float64) {
	r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, fn))
}
