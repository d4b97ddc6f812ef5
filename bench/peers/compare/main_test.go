package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name string, figures map[string]float64) {
	t.Helper()
	var parts []string
	for k, v := range figures {
		parts = append(parts, fmt.Sprintf("%q: %v", k, v))
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(`{"figures": {`+strings.Join(parts, ", ")+`}}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Medians over rounds, and ratios oriented so that ≥ 1 favours Edgeway
// whether higher or lower is better.
func TestCompareMediansAndRatios(t *testing.T) {
	dir := t.TempDir()
	for i, v := range []float64{900, 1000, 5000} { // median 1000 (the outlier does not move it)
		write(t, dir, fmt.Sprintf("register-edgeway-%d.json", i), map[string]float64{"throughput_per_s": v, "p99_ms": 10})
	}
	for i, v := range []float64{2000, 4000} { // median 3000
		write(t, dir, fmt.Sprintf("register-peer-%d.json", i), map[string]float64{"throughput_per_s": v, "p99_ms": 5})
	}
	table, err := compare(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| REGISTER/s over TLS | 1000 | Kamailio: 3000 | 0.33 | 2 |",
		"| REGISTER latency p99 (ms) | 10.00 | Kamailio: 5.00 | 0.50 | 2 |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "coturn") {
		t.Errorf("TURN rows without TURN results:\n%s", table)
	}
	if _, err := compare(t.TempDir()); err == nil {
		t.Error("an empty directory compared")
	}
	if m := median([]float64{3, 1, 2, 4}); m != 2.5 {
		t.Errorf("median of 1..4 = %v", m)
	}
}
