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
// whether higher or lower is better; one table per pair, each Edgeway
// topology against its own peer.
func TestCompareMediansAndRatios(t *testing.T) {
	dir := t.TempDir()
	for i, v := range []float64{900, 1000, 5000} { // median 1000 (the outlier does not move it)
		write(t, dir, fmt.Sprintf("register-edgeway-%d.json", i), map[string]float64{"throughput_per_s": v, "p99_ms": 10, "server_pss_mib": 100})
	}
	for i, v := range []float64{2000, 4000} { // median 3000
		write(t, dir, fmt.Sprintf("register-twotier-%d.json", i), map[string]float64{"throughput_per_s": v, "p99_ms": 5, "server_pss_mib": 50})
	}
	for i, v := range []float64{4000, 6000} {
		write(t, dir, fmt.Sprintf("register-core-%d.json", i), map[string]float64{"throughput_per_s": v, "p50_ms": 2})
		write(t, dir, fmt.Sprintf("register-peer-%d.json", i), map[string]float64{"throughput_per_s": 2 * v, "p50_ms": 1})
	}
	table, err := compare(dir)
	if err != nil {
		t.Fatal(err)
	}
	core := strings.Index(table, "### REGISTER over TLS: core alone vs Kamailio registrar\n\n| figure | Edgeway core alone | Kamailio registrar |")
	two := strings.Index(table, "### REGISTER over TLS: edge + core vs two-tier Kamailio\n\n| figure | Edgeway edge + core | Kamailio proxy → registrar |")
	if core < 0 || two < core {
		t.Fatalf("want the core-alone table, then the edge + core one:\n%s", table)
	}
	for _, want := range []string{
		"| REGISTER/s | 5000 | 10000 | 0.50 | 2 |",
		"| latency p50 (ms) | 2.00 | 1.00 | 0.50 | 2 |",
	} {
		if i := strings.Index(table, want); i < core || i > two {
			t.Errorf("core-alone table lacks %q:\n%s", want, table)
		}
	}
	for _, want := range []string{
		"| REGISTER/s | 1000 | 3000 | 0.33 | 2 |",
		"| latency p99 (ms) | 10.00 | 5.00 | 0.50 | 2 |",
		"| server PSS at the end (MiB, shared memory by its share) | 100 | 50.00 | 0.50 | 2 |",
	} {
		if i := strings.Index(table, want); i < two {
			t.Errorf("edge + core table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "coturn") || strings.Contains(table, "sipp cross-check") {
		t.Errorf("TURN or sipp rows without their results:\n%s", table)
	}
	if _, err := compare(t.TempDir()); err == nil {
		t.Error("an empty directory compared")
	}
	if m := median([]float64{3, 1, 2, 4}); m != 2.5 {
		t.Errorf("median of 1..4 = %v", m)
	}
}

// The half-rate tables come from their own result files, and --median
// gives the run script the maximum to halve.
func TestHalfRateTablesAndMedian(t *testing.T) {
	dir := t.TempDir()
	for i, v := range []float64{6000, 8000, 7000} {
		write(t, dir, fmt.Sprintf("register-core-%d.json", i), map[string]float64{"throughput_per_s": v})
		write(t, dir, fmt.Sprintf("register-peer-%d.json", i), map[string]float64{"throughput_per_s": 2 * v})
	}
	write(t, dir, "halfrate-core-1.json", map[string]float64{"throughput_per_s": 3500, "p99_ms": 8})
	write(t, dir, "halfrate-peer-1.json", map[string]float64{"throughput_per_s": 3500, "p99_ms": 2})
	if v, err := medianOf(dir, "register:core:throughput_per_s"); err != nil || v != 7000 {
		t.Fatalf("median of the core's REGISTER/s = %v, %v; want 7000", v, err)
	}
	if _, err := medianOf(dir, "register:core"); err == nil {
		t.Fatal("a malformed --median name was accepted")
	}
	if _, err := medianOf(dir, "halfrate:edgeway:p99_ms"); err == nil {
		t.Fatal("--median of a figure with no results gave a number")
	}
	table, err := compare(dir)
	if err != nil {
		t.Fatal(err)
	}
	half := strings.Index(table, "### REGISTER at half of Edgeway's maximum: core alone vs Kamailio registrar, same offered rate")
	if half < 0 || !strings.Contains(table[half:], "| latency p99 (ms) | 8.00 | 2.00 | 0.25 | 1 |") {
		t.Fatalf("no half-rate table with the p99s:\n%s", table)
	}
	if strings.Contains(table, "edge + core vs two-tier Kamailio, same offered rate") {
		t.Fatalf("a half-rate table without results was printed:\n%s", table)
	}
}
