// Command compare reads the bench results bench/peers/run collected and
// prints one table: figure, Edgeway, peer, ratio — each figure the median
// of the rounds, Edgeway and the peer measured alternately in the same run.
//
//	go run ./bench/peers/compare [--out results.md] DIR
//
// DIR holds <test>-<side>-<round>.json files written by `edgeway bench
// … --json`: test "register" or "turn", side "edgeway" or "peer".
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// figure is one row of the table.
type figure struct {
	test, key, label string
	higherBetter     bool
	peer             string // which peer the test compares against
}

var figures = []figure{
	{"register", "throughput_per_s", "REGISTER/s over TLS", true, "Kamailio"},
	{"register", "p99_ms", "REGISTER latency p99 (ms)", false, "Kamailio"},
	{"register", "server_cpu_ms_per_success", "server CPU per REGISTER (ms)", false, "Kamailio"},
	{"sipp", "throughput_per_s", "sipp cross-check: REGISTER/s, one TLS connection via stunnel", true, "Kamailio"},
	{"turn", "relayed_per_s", "relayed datagrams/s", true, "coturn"},
	{"turn", "loss_pct", "relay loss (%)", false, "coturn"},
	{"turn", "cpu_ms_per_1000_relayed", "server CPU per 1000 relayed datagrams (ms)", false, "coturn"},
	{"turn", "p99_ms", "relay round trip p99 (ms)", false, "coturn"},
}

type result struct {
	Params  map[string]string  `json:"params"`
	Figures map[string]float64 `json:"figures"`
}

func main() {
	out := flag.String("out", "", "also write the table (Markdown) to this file")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compare [--out FILE] DIR")
		os.Exit(2)
	}
	table, err := compare(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	fmt.Print(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
	}
}

// values collects figure key of test for side over the rounds.
func values(dir, test, side, key string) ([]float64, error) {
	files, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("%s-%s-*.json", test, side)))
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var r result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if v, ok := r.Figures[key]; ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// median of vs; vs must not be empty.
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func compare(dir string) (string, error) {
	var b strings.Builder
	rounds := 0
	fmt.Fprintf(&b, "| figure | Edgeway | peer | ratio (≥ 1: Edgeway better) | rounds |\n|---|---|---|---|---|\n")
	for _, f := range figures {
		e, err := values(dir, f.test, "edgeway", f.key)
		if err != nil {
			return "", err
		}
		p, err := values(dir, f.test, "peer", f.key)
		if err != nil {
			return "", err
		}
		if len(e) == 0 || len(p) == 0 {
			continue
		}
		me, mp := median(e), median(p)
		ratio := "—"
		switch {
		case f.higherBetter && mp > 0:
			ratio = fmt.Sprintf("%.2f", me/mp)
		case !f.higherBetter && me > 0:
			ratio = fmt.Sprintf("%.2f", mp/me)
		case !f.higherBetter && me == 0 && mp == 0:
			ratio = "equal"
		}
		rounds = max(rounds, min(len(e), len(p)))
		fmt.Fprintf(&b, "| %s | %s | %s: %s | %s | %d |\n", f.label, num(me), f.peer, num(mp), ratio, min(len(e), len(p)))
	}
	if rounds == 0 {
		return "", errors.New("no results to compare in " + dir)
	}
	fmt.Fprintf(&b, "\nMedians of the rounds; Edgeway and the peer driven alternately by the same load generator (`edgeway bench`) in one run, %s, %d CPUs (%s), the generator on the same CPUs.\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel())
	fmt.Fprintf(&b, "REGISTER: Edgeway verifies a bearer JWT at the edge and again at the core, checks revocation and stores the binding in SQLite, crossing edge → core over mutual TLS; Kamailio checks no credentials and keeps bindings in memory, in one hop.\n")
	fmt.Fprintf(&b, "sipp: Debian's sipp over TCP into stunnel (the TLS client), up to 100 REGISTERs outstanding on one connection, 200 users with Edgeway tokens (Kamailio ignores them).\n")
	fmt.Fprintf(&b, "TURN: both with TURN REST API credentials from the same shared secret; G.711-sized packets every 20 ms per stream, echoed by a peer on loopback, so each crosses the relay twice.\n")
	return b.String(), nil
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<16))
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
