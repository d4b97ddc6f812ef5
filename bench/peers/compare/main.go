// Command compare reads the bench results bench/peers/run collected and
// prints a table per pair — an Edgeway topology against its peer: figure,
// Edgeway, peer, ratio — each figure the median of the rounds, the two
// measured alternately in the same run.
//
//	go run ./bench/peers/compare [--out results.md] DIR
//
// DIR holds <test>-<side>-<round>.json files written by `edgeway bench
// … --json`: test "register", "sipp" or "turn"; side "edgeway" (edge +
// core; the edge's TURN relay), "core" (the core alone), "peer" (Kamailio
// as a registrar; coturn) or "twotier" (Kamailio proxy → registrar).
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

// side is one set of result files: <test>-<file>-<round>.json.
type side struct{ file, name string }

var (
	edgeCore = side{"edgeway", "Edgeway edge + core"}
	coreOnly = side{"core", "Edgeway core alone"}
	kamReg   = side{"peer", "Kamailio registrar"}
	kamTwo   = side{"twotier", "Kamailio proxy → registrar"}
	edgeTURN = side{"edgeway", "Edgeway"}
	coturn   = side{"peer", "coturn"}
)

// pair is one table: an Edgeway topology against its peer.
type pair struct {
	title      string
	test       string
	ours, peer side
	rows       []row
}

// row is one figure of a pair's table.
type row struct {
	key, label   string
	higherBetter bool
}

var registerRows = []row{
	{"throughput_per_s", "REGISTER/s", true},
	{"p50_ms", "latency p50 (ms)", false},
	{"p99_ms", "latency p99 (ms)", false},
	{"server_cpu_ms_per_success", "server CPU per REGISTER (ms)", false},
	{"server_peak_rss_mib", "server peak RSS (MiB, summed over processes)", false},
	{"server_pss_mib", "server PSS at the end (MiB, shared memory by its share)", false},
}

// halfRateRows: both sides offered the same rate, half of the Edgeway
// topology's median maximum of the rounds before, so latency compares.
var halfRateRows = []row{
	{"throughput_per_s", "REGISTER/s (offered: half of Edgeway's maximum)", true},
	{"p50_ms", "latency p50 (ms)", false},
	{"p99_ms", "latency p99 (ms)", false},
	{"server_cpu_ms_per_success", "server CPU per REGISTER (ms)", false},
}

var pairs = []pair{
	{"REGISTER over TLS: core alone vs Kamailio registrar", "register", coreOnly, kamReg, registerRows},
	{"REGISTER over TLS: edge + core vs two-tier Kamailio", "register", edgeCore, kamTwo, registerRows},
	{"sipp cross-check: REGISTER over one TLS connection (stunnel), edge + core vs Kamailio registrar", "sipp", edgeCore, kamReg,
		[]row{{"throughput_per_s", "REGISTER/s", true}}},
	{"REGISTER at half of Edgeway's maximum: core alone vs Kamailio registrar, same offered rate", "halfrate", coreOnly, kamReg, halfRateRows},
	{"REGISTER at half of Edgeway's maximum: edge + core vs two-tier Kamailio, same offered rate", "halfrate", edgeCore, kamTwo, halfRateRows},
	{"TURN relay", "turn", edgeTURN, coturn, []row{
		{"relayed_per_s", "relayed datagrams/s", true},
		{"loss_pct", "relay loss (%)", false},
		{"cpu_ms_per_1000_relayed", "server CPU per 1000 relayed datagrams (ms)", false},
		{"p99_ms", "relay round trip p99 (ms)", false},
		{"rss_kib_per_allocation", "server memory per allocation (KiB)", false},
		{"fds_per_allocation", "server descriptors per allocation", false},
	}},
}

type result struct {
	Params  map[string]string  `json:"params"`
	Figures map[string]float64 `json:"figures"`
}

// placement says where the servers and the generator ran (--placement).
var placement = "the generator on the same CPUs"

func main() {
	out := flag.String("out", "", "also write the table (Markdown) to this file")
	med := flag.String("median", "", "print only the median of one figure over the rounds, named TEST:SIDE:KEY (e.g. register:core:throughput_per_s)")
	flag.StringVar(&placement, "placement", "the generator on the same CPUs", "where the servers and the generator ran, for the table's notes (bench/peers/run --pin sets it)")
	flag.Parse()
	if *med != "" && flag.NArg() == 1 {
		v, err := medianOf(flag.Arg(0), *med)
		if err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
		fmt.Printf("%.0f\n", v)
		return
	}
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

// medianOf is the median over the rounds of the figure named
// TEST:SIDE:KEY in dir.
func medianOf(dir, name string) (float64, error) {
	parts := strings.Split(name, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("--median %q: TEST:SIDE:KEY expected", name)
	}
	vs, err := values(dir, parts[0], parts[1], parts[2])
	if err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, fmt.Errorf("--median %q: no results in %s", name, dir)
	}
	return median(vs), nil
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
	for _, p := range pairs {
		var lines []string
		for _, f := range p.rows {
			e, err := values(dir, p.test, p.ours.file, f.key)
			if err != nil {
				return "", err
			}
			q, err := values(dir, p.test, p.peer.file, f.key)
			if err != nil {
				return "", err
			}
			if len(e) == 0 || len(q) == 0 {
				continue
			}
			me, mq := median(e), median(q)
			ratio := "—"
			switch {
			case f.higherBetter && mq > 0:
				ratio = fmt.Sprintf("%.2f", me/mq)
			case !f.higherBetter && me > 0:
				ratio = fmt.Sprintf("%.2f", mq/me)
			case !f.higherBetter && me == 0 && mq == 0:
				ratio = "equal"
			}
			n := min(len(e), len(q))
			rounds = max(rounds, n)
			lines = append(lines, fmt.Sprintf("| %s | %s | %s | %s | %d |\n", f.label, num(me), num(mq), ratio, n))
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "### %s\n\n| figure | %s | %s | ratio (≥ 1: Edgeway better) | rounds |\n|---|---|---|---|---|\n", p.title, p.ours.name, p.peer.name)
		for _, l := range lines {
			b.WriteString(l)
		}
		b.WriteString("\n")
	}
	if rounds == 0 {
		return "", errors.New("no results to compare in " + dir)
	}
	fmt.Fprintf(&b, "Medians of the rounds; in each round the four REGISTER set-ups, then sipp, then the two TURN relays, one after another (then, in rounds of their own, each REGISTER pair at half of the Edgeway side's median maximum), driven by the same load generator (`edgeway bench`) in one run, %s, %d CPUs (%s), %s.\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel(), placement)
	fmt.Fprintf(&b, "REGISTER, Edgeway: the phones onboard through the edge; \"core alone\" sends the REGISTERs to the core's Phone OAuth port (5090), which verifies the bearer JWT, checks revocation and stores the binding in SQLite; \"edge + core\" sends them to the edge, which verifies the JWT too, adds Path and forwards over mutual TLS to the core's MRA port (5091). Both tiers (and the idle TURN relay) are one quickstart process, measured whole.\n")
	fmt.Fprintf(&b, "REGISTER, Kamailio: no credentials checked, bindings in memory (usrloc), as many workers as CPUs in each process; the registrar alone is one process, the two-tier peer two (a transaction-stateful proxy adding Path, forwarding over TLS with a client certificate to the registrar, which requires one and keeps the Path; Kamailio's TLS client verifies the chain, not the name). CPU and memory are summed over every Kamailio process; RSS sums count Kamailio's shared memory once per process, PSS by its share.\n")
	fmt.Fprintf(&b, "sipp: Debian's sipp over TCP into stunnel (the TLS client), up to 32 REGISTERs outstanding on one connection (the edge's bound per connection), 200 users with Edgeway tokens (Kamailio ignores them).\n")
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
