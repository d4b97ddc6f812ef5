package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// edgeway bench onboard|register|turn|calls against a running edge and core,
// found through a quickstart.json: each prints its table and writes the
// JSON and SVG it was asked for.
func TestBenchCommands(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	info := env.Info
	info.PID = os.Getpid() // the servers run in this process
	qs := filepath.Join(t.TempDir(), "quickstart.json")
	if err := quickstart.WriteInfo(qs, info); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runBench(context.Background(), append(args, "--quickstart", qs, "--progress", "never", "--log-level", "error"), &out); err != nil {
			t.Fatalf("edgeway bench %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	row := func(out, key string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s+(.*)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %q row in:\n%s", key, out)
		}
		return strings.TrimSpace(m[1])
	}

	dir := t.TempDir()
	jsonPath, plotPath := filepath.Join(dir, "onboard.json"), filepath.Join(dir, "onboard.svg")
	out := run("onboard", "--phones", "30", "--json", jsonPath, "--plot", plotPath)
	if row(out, "attempts") != "30" || row(out, "successes") != "30" || row(out, "errors") != "0" {
		t.Errorf("onboard of 30 phones:\n%s", out)
	}
	if got := row(out, "replayed codes accepted (must be 0)"); got != "0 of 20" {
		t.Errorf("replayed codes: %s", got)
	}
	if !strings.Contains(out, "CPU") || !strings.Contains(out, "peak RSS") {
		t.Errorf("no server CPU/RSS in:\n%s", out)
	}
	var res struct {
		Name    string
		Summary struct {
			Attempts, Successes int
			P99                 float64 `json:"p99_ms"`
		}
		Series []struct{ OK int }
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil || res.Name != "onboard" || res.Summary.Successes != 30 || res.Summary.P99 <= 0 || len(res.Series) == 0 {
		t.Errorf("JSON %v: %s", err, b)
	}
	svg, err := os.ReadFile(plotPath)
	if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || bytes.Count(svg, []byte("<polyline")) != 3 {
		t.Errorf("plot: %v %.200s", err, svg)
	}

	out = run("register", "--phones", "10", "--duration", "1s", "--prefix", "REG", "--first-line", "7100000")
	if row(out, "errors") != "0" || row(out, "successes") == "0" {
		t.Errorf("register:\n%s", out)
	}

	// --sip core: the same phones' REGISTERs straight to the core's Phone
	// OAuth port (the core alone), onboarded through the edge all the same.
	// The core records where each binding came from: through the edge (MRA)
	// or on its Phone OAuth port.
	out = run("register", "--sip", "core", "--phones", "5", "--duration", "1s", "--prefix", "CORE", "--first-line", "7150000")
	if row(out, "errors") != "0" || row(out, "successes") == "0" || !strings.Contains(out, "core's Phone OAuth port "+info.CorePhoneOAuth) {
		t.Errorf("register --sip core:\n%s", out)
	}
	regs, err := env.Store.Registrations(context.Background(), "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	viaEdge, viaCore := 0, 0
	for _, g := range regs {
		switch {
		case strings.HasPrefix(g.Device, "REG") && g.MRA:
			viaEdge++
		case strings.HasPrefix(g.Device, "CORE") && !g.MRA:
			viaCore++
		case strings.HasPrefix(g.Device, "REG") || strings.HasPrefix(g.Device, "CORE"):
			t.Errorf("binding of %s: MRA %v", g.Device, g.MRA)
		}
	}
	if viaEdge != 10 || viaCore != 5 {
		t.Errorf("bindings through the edge %d (want 10), on the core's Phone OAuth port %d (want 5)", viaEdge, viaCore)
	}
	// --sip a,b: phone i starts on edge i mod 2 and moves on when its flow
	// fails (RFC 5626 §4.5): with the first edge dead, the phones that
	// start there fail one REGISTER each, then register through the other.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	out = run("register", "--sip", deadAddr+","+info.EdgeSIP, "--phones", "6", "--duration", "1s", "--prefix", "FAIL", "--first-line", "7160000")
	if row(out, "successes") == "0" || !strings.Contains(out, "2 edges") {
		t.Errorf("register --sip %s,%s:\n%s", deadAddr, info.EdgeSIP, out)
	}
	if regs, err = env.Store.Registrations(context.Background(), "", time.Now()); err != nil {
		t.Fatal(err)
	}
	failedOver := 0
	for _, g := range regs {
		if strings.HasPrefix(g.Device, "FAIL") && g.MRA {
			failedOver++
		}
	}
	if failedOver != 6 {
		t.Errorf("bindings of the 6 phones of --sip dead,live: %d, want 6\n%s", failedOver, out)
	}
	var usage bytes.Buffer
	if err := runBench(context.Background(), []string{"register", "--sip", "core", "--registrar", "127.0.0.5:5061", "--quickstart", qs}, &usage); err == nil {
		t.Error("--sip with --registrar accepted")
	}

	out = run("turn", "--streams", "5", "--duration", "1s")
	if row(out, "allocations") != "5 of 5" || !strings.Contains(row(out, "packets"), "lost 0.000 %") || row(out, "errors") != "0" {
		t.Errorf("turn:\n%s", out)
	}
	// A wrong shared secret: every allocation refused with the server's
	// 401 after the challenge, counted by class, and the run says so.
	badSecret := filepath.Join(t.TempDir(), "wrong-secret")
	if err := os.WriteFile(badSecret, []byte("not-the-edges-secret-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var bad bytes.Buffer
	err = runBench(context.Background(), []string{"turn", "--secret-file", badSecret, "--streams", "3", "--duration", "1s",
		"--quickstart", qs, "--progress", "never", "--log-level", "error"}, &bad)
	if err == nil || !strings.Contains(err.Error(), "no TURN allocation succeeded") {
		t.Errorf("turn with a wrong secret: %v, want no allocation\n%s", err, bad.String())
	}

	out = run("calls", "--calls", "2", "--talk", "1s", "--duration", "1s", "--prefix", "CALL", "--first-line", "7200000")
	if row(out, "errors") != "0" || !strings.Contains(row(out, "media (both sides)"), "lost 0 (0.000 %), auth failures 0") {
		t.Errorf("calls:\n%s", out)
	}
}

// edgeway bench guess: wrong codes for 3 devices from 20 addresses. The
// core evaluates at most the per-device budget (10 each, issue 9); the rest
// are refused unevaluated (locked, or by the per-source throttle's device
// lock), and no wrong code is ever accepted.
func TestBenchGuess(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	info := env.Info
	info.PID = os.Getpid()
	qs := filepath.Join(t.TempDir(), "quickstart.json")
	if err := quickstart.WriteInfo(qs, info); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	args := []string{"guess", "--phones", "3", "--sources", "20", "--count", "60", "--duration", "60s",
		"--prefix", "GUESS", "--first-line", "7300000", "--quickstart", qs, "--progress", "never", "--log-level", "error"}
	if err := runBench(context.Background(), args, &out); err != nil {
		t.Fatalf("edgeway bench guess: %v\n%s", err, out.String())
	}
	row := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s+(.*)$`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no %q row in:\n%s", key, out.String())
		}
		return strings.TrimSpace(m[1])
	}
	count := func(key string) int {
		var n int
		var per float64
		if _, err := fmt.Sscanf(row(key), "%d (%f /s)", &n, &per); err != nil {
			t.Fatalf("%s: %q: %v", key, row(key), err)
		}
		return n
	}
	evaluated, refused := count("guesses evaluated by the core"), count("guesses refused unevaluated")
	if row("attempts") != "60" || row("wrong codes accepted (must be 0)") != "0" || evaluated > 30 || evaluated < 3 || evaluated+refused != 60 {
		t.Errorf("bench guess (want at most 30 evaluated, the rest refused):\n%s", out.String())
	}
}

// bench register --codes: devices provisioned beforehand (here through
// `edgeway admin`), their codes handed over as issue-bulk's CSV, and an
// info file that names no admin API (as for phones behind a firewall that
// keeps them from the core: deploy/netns/run bench): the phones onboard
// with those codes from --source-net addresses and register. A phone the
// CSV has no code for is an error, not a silent skip.
func TestBenchRegisterWithCodesFile(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	qs := filepath.Join(dir, "quickstart.json")
	if err := quickstart.WriteInfo(qs, env.Info); err != nil {
		t.Fatal(err)
	}
	admin := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runAdmin(context.Background(), append([]string{"--quickstart", qs}, args...), &out); err != nil {
			t.Fatalf("edgeway admin %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	var names []string
	for i := range 3 {
		name := fmt.Sprintf("BNC%06d", i)
		admin("device", "set", name, "--model", "8845", "--line", fmt.Sprint(8300000+i), "--profile", quickstart.ProfileName,
			"--allow-mra", "--mra-domain", env.Info.Domain)
		names = append(names, name)
	}
	codes := filepath.Join(dir, "codes.csv")
	if err := os.WriteFile(codes, []byte(admin(append([]string{"activation", "issue-bulk"}, names...)...)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The phones' side: the edge and the CA, no core, no admin token.
	phoneSide := quickstart.Info{EdgeHTTPS: env.Info.EdgeHTTPS, EdgeSIP: env.Info.EdgeSIP, CACert: env.Info.CACert, Domain: env.Info.Domain}
	ps := filepath.Join(dir, "phones.json")
	if err := quickstart.WriteInfo(ps, phoneSide); err != nil {
		t.Fatal(err)
	}
	bench := func(phones int) (string, error) {
		var out bytes.Buffer
		err := runBench(context.Background(), []string{"register", "--quickstart", ps, "--codes", codes, "--prefix", "BNC",
			"--first-line", "8300000", "--phones", fmt.Sprint(phones), "--duration", "1s", "--source-net", "127.3.0.0/24",
			"--progress", "never", "--log-level", "error"}, &out)
		return out.String(), err
	}
	out, err := bench(3)
	if err != nil {
		t.Fatalf("bench register --codes: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^successes\s+(\d+)$`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" || !regexp.MustCompile(`(?m)^errors\s+0$`).MatchString(out) {
		t.Fatalf("want REGISTERs with no errors:\n%s", out)
	}
	regs := admin("registrations")
	for i := range 3 {
		if !strings.Contains(regs, fmt.Sprintf("sip:%d@", 8300000+i)) {
			t.Errorf("no binding of line %d:\n%s", 8300000+i, regs)
		}
	}
	if out, err := bench(4); err == nil || !strings.Contains(err.Error(), "no activation code for BNC000003") {
		t.Errorf("a phone missing from the CSV: err %v, want \"no activation code for BNC000003\"\n%s", err, out)
	}
}

// --source-net hands out the prefix's addresses from the second on, one
// per phone, and wraps before the broadcast address.
func TestBenchSourceNet(t *testing.T) {
	var b benchFlags
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	b.register(fs, "register")
	for _, bad := range []string{"10.77.16.1", "::1/64", "10.77.16.0/31"} {
		if err := fs.Parse([]string{"--source-net", bad}); err == nil {
			t.Errorf("--source-net %s accepted", bad)
		}
	}
	if err := fs.Parse([]string{"--source-net", "10.77.17.9/20"}); err != nil {
		t.Fatal(err)
	}
	r := &benchRun{f: &b}
	for i, want := range map[int]string{0: "10.77.16.1", 254: "10.77.16.255", 255: "10.77.17.0", 4093: "10.77.31.254", 4094: "10.77.16.1"} {
		if got := r.sourceIP(i).String(); got != want {
			t.Errorf("sourceIP(%d) = %s, want %s", i, got, want)
		}
	}
	if got := (&benchRun{f: &benchFlags{}}).sourceIP(0).String(); got != "127.1.0.1" {
		t.Errorf("without --source-net: %s, want 127.1.0.1", got)
	}
}

// The hold generator's progress line names why phones were not
// registered, most frequent class first.
func TestErrorClasses(t *testing.T) {
	if got := errorClasses(nil); got != "" {
		t.Fatalf("no errors: %q, want empty", got)
	}
	got := errorClasses(map[string]int{"timeout": 2, "SIP 503": 5, "SIP 401": 2})
	if want := ": SIP 503 ×5, SIP 401 ×2, timeout ×2"; got != want {
		t.Fatalf("errorClasses: %q, want %q", got, want)
	}
}
