package main

// edgeway bench onboard|register|calls: load runs of simulated phones
// through a real edge and core, with a live progress line, a results
// table, --json and --plot.

import (
	"context"
	"crypto/x509"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/media"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/turncred"
)

type benchFlags struct {
	conn                    connFlags
	phones, calls, workers  int
	sources, count          int
	rate                    float64
	duration, talk, timeout time.Duration
	hold, waitSignal        bool
	prefix                  string
	firstLine               int
	jsonPath, plotPath      string
	cpuProfile              string
	pids                    string
	progress                string
	inf                     string
	// Against any SIP registrar or TURN server (the peers):
	registrar, serverName, domain string
	// sip sends an Edgeway run's REGISTERs elsewhere than the edge (the
	// core's Phone OAuth port), onboarding still through the edge.
	sip                           string
	goSignal                      chan os.Signal // --wait-signal: SIGUSR1 starts the REGISTERs
	streams                       int
	turnServer, secretFile, realm string
	// codes names a CSV of activation codes for devices provisioned
	// beforehand (no admin API from where the phones are: a firewall);
	// sourceNet, when valid, is where the phones' source addresses come
	// from instead of 127.1.x.y.
	codes     string
	sourceNet netip.Prefix
}

func (b *benchFlags) register(fs *flag.FlagSet, what string) {
	b.conn.register(fs)
	fs.IntVar(&b.phones, "phones", 100, "simulated phones (devices provisioned through the admin API)")
	fs.IntVar(&b.workers, "workers", 0, "concurrent redemptions for onboard (default 64; each phone has its own source address) and guess (default min(--sources, 64))")
	fs.Float64Var(&b.rate, "rate", 0, "attempts per second in all (0: as fast as the workers go)")
	fs.DurationVar(&b.duration, "duration", 10*time.Second, "how long the measured phase runs (every run also stops after its count)")
	fs.DurationVar(&b.timeout, "timeout", 10*time.Second, "per-attempt timeout")
	fs.StringVar(&b.prefix, "prefix", "BENCH", "device name prefix of the provisioned phones")
	fs.IntVar(&b.firstLine, "first-line", 8000000, "directory number of the first provisioned phone; the others follow")
	fs.StringVar(&b.jsonPath, "json", "", "write the results as JSON to this file")
	fs.StringVar(&b.plotPath, "plot", "", "write latency and throughput over time as SVG to this file")
	fs.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of this process (the load generator; profile the servers with their own flag)")
	fs.StringVar(&b.pids, "pids", "", "server processes to report CPU and peak RSS of, as name=pid,name=pid; name=pid+pid+… sums several (Kamailio's workers) (default: quickstart.json's pid)")
	fs.StringVar(&b.progress, "progress", "auto", "live progress line: auto (on a terminal), always or never")
	if what == "onboard" || what == "register" || what == "calls" {
		fs.StringVar(&b.codes, "codes", "", "CSV of `edgeway admin activation issue-bulk` (device,activation_code,…) for devices already provisioned as PREFIX%06d with lines from --first-line: the phones take their codes from it and the admin API is not used (phones behind a firewall that keeps them from the core: deploy/netns/run bench)")
		fs.Func("source-net", "take the phones' source addresses from this prefix, one each from its second address on (default 127.1.0.1 on), e.g. a prefix routed to lo with `ip route add local PREFIX dev lo`", func(v string) error {
			p, err := netip.ParsePrefix(v)
			if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
				return fmt.Errorf("want an IPv4 prefix of at least 4 addresses, e.g. 10.77.16.0/20")
			}
			b.sourceNet = p.Masked()
			return nil
		})
	}
	switch what {
	case "onboard":
		fs.StringVar(&b.inf, "inf", "", "write a sipp injection file (SEQUENTIAL, then line;domain;Authorization: Bearer <token>) of the onboarded phones, for sipp load (bench/peers)")
	case "register":
		fs.BoolVar(&b.hold, "hold", false, "register every phone once and hold them idle for --duration; report memory per idle phone")
		fs.BoolVar(&b.waitSignal, "wait-signal", false, "with --hold: once every phone is onboarded, print \"bench: onboarded, waiting for SIGUSR1\" and register only when SIGUSR1 comes (a runner of several generators measures the servers in between: bench/hold/run)")
		fs.StringVar(&b.registrar, "registrar", "", "any SIP/TLS registrar host:port instead of the edge: phones register lines from --first-line with no token and nothing provisioned")
		fs.StringVar(&b.serverName, "server-name", "", "name to verify in the certificate of --registrar or --sip (default: the registrar's host; with --sip, the edge's HTTPS host)")
		fs.StringVar(&b.domain, "domain", "", "SIP domain for --registrar (default: quickstart.json's)")
		fs.StringVar(&b.sip, "sip", "", "send the REGISTERs to this SIP/TLS host:port instead of the edge's, the phones still onboarded through the edge; a comma-separated list of edges: phone i starts on edge i mod n and, when its flow fails, moves on to the next (RFC 5626 §4.5); \"core\": the core's Phone OAuth port (quickstart.json's core_phone_oauth, 5090), to measure the core alone")
	case "calls":
		fs.IntVar(&b.calls, "calls", 10, "concurrent calls (2 phones each)")
		fs.DurationVar(&b.talk, "talk", 5*time.Second, "media per call; each caller places calls back to back for --duration")
	case "guess":
		fs.IntVar(&b.sources, "sources", 1, "source addresses the guesses come from (127.1.x.y, one after another)")
		fs.IntVar(&b.count, "count", 0, "stop after this many guesses (0: only --duration ends the run)")
	case "turn":
		fs.IntVar(&b.streams, "streams", 200, "concurrent relayed G.711 streams (172-byte packets every 20 ms, echoed back by a peer on loopback)")
		fs.StringVar(&b.turnServer, "server", "", "TURN server host:port over UDP (default: the edge's, from quickstart.json)")
		fs.StringVar(&b.secretFile, "secret-file", "", "TURN REST API shared secret, as coturn's static-auth-secret (default: quickstart.json's)")
		fs.StringVar(&b.realm, "realm", "", "TURN realm (default: the server's)")
	}
}

var benchUsage = `usage: edgeway bench onboard|register|calls|turn|guess [flags]
  onboard   provision --phones devices with activation codes, redeem them through the edge
  register  --phones phones, each on its own TLS connection, REGISTER with bearer tokens
            (--hold: register once and hold idle to measure memory per phone;
            --sip core: straight to the core's Phone OAuth port;
            --registrar: any SIP/TLS registrar, no token)
  calls     --calls concurrent calls with SRTP through the edge's TURN relay
  turn      --streams G.711-sized streams through a TURN relay (the edge's, or --server)
  guess     wrong activation codes for --phones devices through the edge from --sources
            addresses for --duration: how many wrong guesses per second the core evaluates
Run 'edgeway bench <what> -h' for the flags.`

func runBench(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || wantsHelp(args[:1]) {
		fmt.Fprintln(out, benchUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	what := args[0]
	if what != "onboard" && what != "register" && what != "calls" && what != "turn" && what != "guess" {
		return fmt.Errorf("%w: unknown bench %q\n%s", errUsage, what, benchUsage)
	}
	fs := flag.NewFlagSet("bench "+what, flag.ContinueOnError)
	fs.SetOutput(out)
	var b benchFlags
	b.register(fs, what)
	level, format := logFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	log, err := newLogger(*level, *format)
	if err != nil {
		return err
	}
	if b.phones <= 0 || b.duration <= 0 {
		return fmt.Errorf("%w: --phones and --duration must be positive", errUsage)
	}
	if b.waitSignal && (what != "register" || !b.hold) {
		return fmt.Errorf("%w: --wait-signal goes with register --hold", errUsage)
	}
	if b.waitSignal {
		// Before anything is announced: SIGUSR1's default action ends the
		// process, so it is caught from the start.
		b.goSignal = make(chan os.Signal, 1)
		signal.Notify(b.goSignal, syscall.SIGUSR1)
		defer signal.Stop(b.goSignal)
	}
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := newBenchRun(what, &b, log, out)
	if err != nil {
		return err
	}
	var res bench.Result
	switch what {
	case "onboard":
		res, err = r.onboard(ctx)
	case "register":
		res, err = r.registerRun(ctx)
	case "calls":
		res, err = r.callsRun(ctx)
	case "turn":
		res, err = r.turnRun(ctx)
	case "guess":
		res, err = r.guessRun(ctx)
	}
	if err != nil {
		return err
	}
	return r.report(res)
}

// benchRun is one bench invocation's shared state.
type benchRun struct {
	f     *benchFlags
	info  quickstart.Info
	admin *adminClient
	pool  *x509.CertPool
	log   *slog.Logger
	out   io.Writer
	prog  io.Writer // nil: no progress line
	procs map[string][]int
}

func newBenchRun(what string, f *benchFlags, log *slog.Logger, out io.Writer) (*benchRun, error) {
	info, err := f.conn.resolve()
	if err != nil {
		return nil, err
	}
	if f.sip != "" && f.registrar != "" {
		return nil, fmt.Errorf("%w: --sip (Edgeway's phones elsewhere than the edge) and --registrar (a peer registrar) exclude each other", errUsage)
	}
	if f.sip == "core" && info.CorePhoneOAuth == "" {
		return nil, fmt.Errorf("%w: --sip core needs quickstart.json's core_phone_oauth", errUsage)
	}
	// Against a peer (--registrar, turn --server) nothing is provisioned:
	// no admin API, no quickstart.json needed.
	var a *adminClient
	if what != "turn" && f.registrar == "" && info.EdgeHTTPS == "" {
		return nil, fmt.Errorf("%w: bench needs --quickstart (quickstart.json names the edge, the core's admin API and the CA)", errUsage)
	}
	if what != "turn" && f.registrar == "" && f.codes == "" {
		if info.EdgeHTTPS == "" {
			return nil, fmt.Errorf("%w: bench needs --quickstart (quickstart.json names the edge, the core's admin API and the CA)", errUsage)
		}
		a = &adminClient{cmd: &adminCmd{path: []string{"bench"}}}
		if err := a.connect(f.conn, true); err != nil {
			return nil, err
		}
	}
	pool, err := caPool(f.conn.ca)
	if err != nil {
		return nil, err
	}
	r := &benchRun{f: f, info: info, admin: a, pool: pool, log: log, out: out, procs: map[string][]int{}}
	switch f.progress {
	case "always":
		r.prog = os.Stderr
	case "auto":
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			r.prog = os.Stderr
		}
	case "never":
	default:
		return nil, fmt.Errorf("%w: --progress auto|always|never", errUsage)
	}
	if f.pids != "" {
		for _, kv := range strings.Split(f.pids, ",") {
			name, list, ok := strings.Cut(kv, "=")
			if !ok || name == "" {
				return nil, fmt.Errorf("%w: --pids name=pid,…: %q", errUsage, kv)
			}
			for _, p := range strings.Split(list, "+") {
				pid, err := strconv.Atoi(p)
				if err != nil || pid <= 0 {
					return nil, fmt.Errorf("%w: --pids name=pid+pid,…: %q", errUsage, kv)
				}
				r.procs[name] = append(r.procs[name], pid)
			}
		}
	} else if info.PID > 0 && f.registrar == "" && f.turnServer == "" {
		r.procs["edge+core+TURN (quickstart)"] = []int{info.PID}
	}
	return r, nil
}

// benchPhone is one provisioned device.
type benchPhone struct {
	name, line, code string
	ph               *bench.Phone
}

// provision creates n devices (model of the first MRA demo device, the
// demo security profile, MRA allowed) and issues their activation codes
// in one bulk call. Re-running replaces the codes.
func (r *benchRun) provision(ctx context.Context, n int) ([]*benchPhone, error) {
	if r.f.codes != "" {
		return r.provisioned(n)
	}
	var model, domain string
	for _, d := range r.info.Devices {
		if d.MRA {
			model, domain = d.Model, d.Domain
			break
		}
	}
	if model == "" {
		return nil, errors.New("bench: quickstart.json lists no MRA device to copy the model from")
	}
	if n > 999_999 {
		return nil, fmt.Errorf("%w: at most 999999 phones", errUsage)
	}
	phones := make([]*benchPhone, n)
	for i := range phones {
		phones[i] = &benchPhone{name: fmt.Sprintf("%s%06d", r.f.prefix, i), line: strconv.Itoa(r.f.firstLine + i)}
	}
	r.step("provisioning %d devices through the admin API", n)
	var done atomic.Int64
	err := bench.Parallel(ctx, 16, n, func(ctx context.Context, i int) error {
		p := phones[i]
		body := map[string]any{"model": model, "line": p.line, "security_profile": quickstart.ProfileName,
			"allow_activation_code_via_mra": true, "activation_code_mra_service_domain": domain}
		if err := r.admin.call(ctx, http.MethodPut, "/api/v1/devices/"+p.name, body, nil); err != nil {
			return fmt.Errorf("device %s: %w", p.name, err)
		}
		r.tick(done.Add(1), n, "devices")
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.endTick()
	byName := map[string]*benchPhone{}
	for _, p := range phones {
		byName[p.name] = p
	}
	for start := 0; start < n; start += 1000 { // bulk issue, 1000 at a time
		end := min(start+1000, n)
		names := make([]string, 0, end-start)
		for _, p := range phones[start:end] {
			names = append(names, p.name)
		}
		if err := r.issueCodes(ctx, names, byName); err != nil {
			return nil, err
		}
	}
	return phones, r.newPhones(phones)
}

// newPhones makes each device's simulated phone, once its code is known.
func (r *benchRun) newPhones(phones []*benchPhone) error {
	for i, p := range phones {
		if p.code == "" {
			return fmt.Errorf("bench: no activation code for %s", p.name)
		}
		// Phone i starts on edge i mod n and fails over to the others.
		sips := r.sipAddrs()
		edges := make([]bench.Edge, len(sips))
		for k, a := range sips {
			edges[k] = bench.Edge{HTTPS: r.info.EdgeHTTPS, SIP: a}
		}
		ph, err := bench.NewPhone(bench.PhoneConfig{Device: p.name, Line: p.line, Domain: r.info.Domain, Edges: edges, FirstEdge: i,
			ServerName: r.f.serverName, RootCAs: r.pool, Log: r.log, Expires: 600, SourceIP: r.sourceIP(i)})
		if err != nil {
			return err
		}
		p.ph = ph
	}
	return nil
}

// provisioned takes n devices provisioned beforehand (--prefix, --first-line)
// and their codes from the --codes CSV.
func (r *benchRun) provisioned(n int) ([]*benchPhone, error) {
	f, err := os.Open(r.f.codes)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("bench: --codes %s: %w", r.f.codes, err)
	}
	codes := map[string]string{}
	for _, row := range rows[min(1, len(rows)):] { // header: device,activation_code,id,expires_at
		if len(row) >= 2 {
			codes[row[0]] = row[1]
		}
	}
	phones := make([]*benchPhone, n)
	for i := range phones {
		name := fmt.Sprintf("%s%06d", r.f.prefix, i)
		phones[i] = &benchPhone{name: name, line: strconv.Itoa(r.f.firstLine + i), code: codes[name]}
	}
	r.step("%d devices provisioned beforehand, codes from %s", n, r.f.codes)
	return phones, r.newPhones(phones)
}

func (r *benchRun) issueCodes(ctx context.Context, names []string, byName map[string]*benchPhone) error {
	res, err := r.admin.do(ctx, http.MethodPost, "/api/v1/activation/bulk", map[string]any{"devices": names})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("bench: bulk activation codes: %s: %s", res.Status, strings.TrimSpace(string(b)))
	}
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil {
		return fmt.Errorf("bench: bulk activation CSV: %w", err)
	}
	for _, row := range rows[min(1, len(rows)):] { // header: device,activation_code,id,expires_at
		if len(row) >= 2 && byName[row[0]] != nil {
			byName[row[0]].code = row[1]
		}
	}
	return nil
}

// onboardAll redeems every phone's code (setup for register and calls).
func (r *benchRun) onboardAll(ctx context.Context, phones []*benchPhone) error {
	r.step("onboarding %d phones through the edge", len(phones))
	var done atomic.Int64
	err := bench.Parallel(ctx, 64, len(phones), func(ctx context.Context, i int) error {
		if _, err := phones[i].ph.Onboard(ctx, phones[i].code); err != nil {
			return err
		}
		phones[i].ph.CloseIdleConnections()
		r.tick(done.Add(1), len(phones), "onboarded")
		return nil
	})
	r.endTick()
	return err
}

func (r *benchRun) onboard(ctx context.Context) (bench.Result, error) {
	phones, err := r.provision(ctx, r.f.phones)
	if err != nil {
		return bench.Result{}, err
	}
	workers := r.f.workers
	if workers <= 0 {
		workers = min(64, len(phones))
	}
	before := r.sampleProcs()
	var next atomic.Int64
	load := bench.Load{Workers: workers, Rate: r.f.rate, Duration: r.f.duration, Count: len(phones), Progress: r.prog, What: "redeem"}
	r.step("redeeming %d activation codes through the edge (%d workers)", len(phones), workers)
	rec, err := load.Run(ctx, func(ctx context.Context, _ int) string {
		p := phones[next.Add(1)-1]
		actx, cancel := context.WithTimeout(ctx, r.f.timeout)
		defer cancel()
		_, err := p.ph.Onboard(actx, p.code)
		p.ph.CloseIdleConnections()
		return classOf(err)
	})
	if err != nil {
		return bench.Result{}, err
	}
	res := r.result("onboard", rec, before, map[string]string{"workers": strconv.Itoa(workers)})
	// Exactly once: a second redemption of a code must fail.
	replays := min(20, len(phones))
	accepted := 0
	for _, p := range phones[:replays] {
		if _, err := p.ph.Onboard(ctx, p.code); err == nil {
			accepted++
		}
	}
	res.Extra["replayed codes accepted (must be 0)"] = fmt.Sprintf("%d of %d", accepted, replays)
	if r.f.inf != "" {
		if err := writeInf(r.f.inf, r.info.Domain, phones); err != nil {
			return res, err
		}
	}
	if accepted > 0 {
		_ = r.report(res)
		return res, fmt.Errorf("bench: %d replayed activation codes were accepted", accepted)
	}
	return res, nil
}

func (r *benchRun) registerRun(ctx context.Context) (bench.Result, error) {
	var phones []*benchPhone
	var err error
	auth := func(p *benchPhone) string { return "Bearer " + p.ph.Tokens().AccessToken }
	target := "edge " + r.info.EdgeSIP + " (bearer token checked at edge and core, edge → core over mTLS)"
	if r.f.sip != "" {
		target = "SIP " + r.sipAddr() + " (onboarded through the edge; bearer token checked there)"
		if r.sipAddr() == r.info.CorePhoneOAuth {
			target = "core's Phone OAuth port " + r.sipAddr() + " (onboarded through the edge; bearer token checked at the core, one hop)"
		} else if n := len(r.sipAddrs()); n > 1 {
			target = fmt.Sprintf("%d edges %s (onboarded through the edge; phone i starts on edge i mod %d and fails over to the others)", n, r.sipAddr(), n)
		}
	}
	if r.f.registrar != "" {
		auth = func(*benchPhone) string { return "" }
		target = "registrar " + r.f.registrar + " (no token)"
		if phones, err = r.peerPhones(); err != nil {
			return bench.Result{}, err
		}
	} else {
		if phones, err = r.provision(ctx, r.f.phones); err != nil {
			return bench.Result{}, err
		}
		if err := r.onboardAll(ctx, phones); err != nil {
			return bench.Result{}, err
		}
	}
	defer func() {
		for _, p := range phones {
			p.ph.Close()
		}
	}()
	if r.f.goSignal != nil {
		r.step("onboarded, waiting for SIGUSR1")
		select {
		case <-ctx.Done():
			return bench.Result{}, ctx.Err()
		case <-r.f.goSignal:
		}
	}
	before := r.sampleProcs()
	if r.f.hold {
		return r.hold(ctx, phones, before, auth)
	}
	load := bench.Load{Workers: len(phones), Rate: r.f.rate, Duration: r.f.duration, Progress: r.prog, What: "REGISTER"}
	r.step("REGISTER to the %s: %d phones, each on its own TLS connection, for %s", target, len(phones), r.f.duration)
	rec, err := load.Run(ctx, func(ctx context.Context, w int) string {
		return r.registerOnce(ctx, phones[w], auth, 600)
	})
	if err != nil {
		return bench.Result{}, err
	}
	res := r.result("register", rec, before, map[string]string{"phones": strconv.Itoa(len(phones)), "rate": fmt.Sprint(r.f.rate)})
	res.Target = target
	return res, nil
}

// sipAddrs are where an Edgeway run's phones send SIP: the edge, or the
// addresses --sip lists.
func (r *benchRun) sipAddrs() []string {
	if r.f.sip == "" || r.f.sip == "core" {
		return []string{r.sipAddr()}
	}
	return splitList(r.f.sip)
}

// sipAddr is where an Edgeway run's phones send SIP: the edge, or --sip
// (as given: a list of edges, comma-separated).
func (r *benchRun) sipAddr() string {
	switch r.f.sip {
	case "":
		return r.info.EdgeSIP
	case "core":
		return r.info.CorePhoneOAuth
	}
	return r.f.sip
}

// registerOnce is one REGISTER attempt of p: "" on 200, else its class.
func (r *benchRun) registerOnce(ctx context.Context, p *benchPhone, auth func(*benchPhone) string, expires int) string {
	ctx, cancel := context.WithTimeout(ctx, r.f.timeout)
	defer cancel()
	res, err := p.ph.RegisterWith(ctx, auth(p), expires)
	if err != nil {
		return classOf(err)
	}
	if res.StatusCode != 200 {
		return fmt.Sprintf("SIP %d", res.StatusCode)
	}
	return ""
}

// peerPhones are phones for a registrar other than Edgeway: lines from
// --first-line, nothing provisioned, no token.
func (r *benchRun) peerPhones() ([]*benchPhone, error) {
	domain := r.f.domain
	if domain == "" {
		domain = r.info.Domain
	}
	if domain == "" {
		return nil, fmt.Errorf("%w: --registrar needs --domain (or --quickstart)", errUsage)
	}
	phones := make([]*benchPhone, r.f.phones)
	for i := range phones {
		p := &benchPhone{name: fmt.Sprintf("%s%06d", r.f.prefix, i), line: strconv.Itoa(r.f.firstLine + i)}
		ph, err := bench.NewPhone(bench.PhoneConfig{Device: p.name, Line: p.line, Domain: domain, EdgeHTTPS: "https://" + r.f.registrar,
			EdgeSIP: r.f.registrar, ServerName: r.f.serverName, RootCAs: r.pool, Log: r.log, SourceIP: r.sourceIP(i)})
		if err != nil {
			return nil, err
		}
		p.ph = ph
		phones[i] = p
	}
	return phones, nil
}

// hold registers every phone once, holds them idle for the duration and
// reports the servers' memory growth per phone.
func (r *benchRun) hold(ctx context.Context, phones []*benchPhone, before map[string]bench.ProcSample, auth func(*benchPhone) string) (bench.Result, error) {
	var next atomic.Int64
	load := bench.Load{Workers: min(200, len(phones)), Rate: r.f.rate, Count: len(phones), Duration: 10 * time.Minute, Progress: r.prog, What: "REGISTER"}
	r.step("registering %d phones once, then holding them idle for %s", len(phones), r.f.duration)
	rec, err := load.Run(ctx, func(ctx context.Context, _ int) string {
		return r.registerOnce(ctx, phones[next.Add(1)-1], auth, 3600)
	})
	if err != nil {
		return bench.Result{}, err
	}
	sum := rec.Summary(time.Now())
	held := sum.Successes
	r.step("holding %d registered phones (%d not registered%s)", held, len(phones)-held, errorClasses(sum.Errors))
	select {
	case <-ctx.Done():
		return bench.Result{}, ctx.Err()
	case <-time.After(r.f.duration):
	}
	res := r.result("register --hold", rec, before, map[string]string{"phones": strconv.Itoa(len(phones)), "held": r.f.duration.String()})
	ok := rec.Summary(time.Now()).Successes
	for _, p := range res.Procs {
		if ok > 0 {
			res.Extra["memory per idle registered phone, "+p.Name] = fmt.Sprintf("%.1f KiB (RSS %.1f → %.1f MiB for %d phones)",
				float64(p.RSSEnd-p.RSSStart)/float64(ok)/1024, float64(p.RSSStart)/(1<<20), float64(p.RSSEnd)/(1<<20), ok)
		}
	}
	return res, nil
}

func (r *benchRun) callsRun(ctx context.Context) (bench.Result, error) {
	if r.f.calls <= 0 || r.f.talk <= 0 {
		return bench.Result{}, fmt.Errorf("%w: --calls and --talk must be positive", errUsage)
	}
	phones, err := r.provision(ctx, 2*r.f.calls)
	if err != nil {
		return bench.Result{}, err
	}
	if err := r.onboardAll(ctx, phones); err != nil {
		return bench.Result{}, err
	}
	defer func() {
		for _, p := range phones {
			p.ph.Close()
		}
	}()
	callers, callees := phones[:r.f.calls], phones[r.f.calls:]
	r.step("registering %d phones", len(phones))
	if err := bench.Parallel(ctx, 64, len(phones), func(ctx context.Context, i int) error {
		res, err := phones[i].ph.Register(ctx, 600)
		if err == nil && res.StatusCode != 200 {
			err = fmt.Errorf("%s: REGISTER %d", phones[i].name, res.StatusCode)
		}
		return err
	}); err != nil {
		return bench.Result{}, err
	}
	actx, stop := context.WithCancel(ctx)
	var mu sync.Mutex
	var total media.Stats
	add := func(st media.Stats) {
		mu.Lock()
		total.Sent += st.Sent
		total.Received += st.Received
		total.Lost += st.Lost
		total.AuthFailures += st.AuthFailures
		total.PlayedOut += st.PlayedOut
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, p := range callees {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.ph.AnswerWithMedia(actx, r.f.talk+5*time.Second, func(st media.Stats, err error) {
				if err == nil {
					add(st)
				}
			})
		}()
	}
	defer func() { stop(); wg.Wait() }()
	before := r.sampleProcs()
	load := bench.Load{Workers: r.f.calls, Duration: r.f.duration, Drain: r.f.talk + r.f.timeout, Progress: r.prog, What: "calls"}
	r.step("%d concurrent calls with SRTP through the edge's TURN relay, %s each, for %s", r.f.calls, r.f.talk, r.f.duration)
	rec, err := load.Run(ctx, func(ctx context.Context, w int) string {
		cctx, cancel := context.WithTimeout(ctx, r.f.talk+r.f.timeout)
		defer cancel()
		st, err := callers[w].ph.CallWithMedia(cctx, callees[w].line, r.f.talk)
		if err != nil {
			return classOf(err)
		}
		add(st)
		return ""
	})
	if err != nil {
		return bench.Result{}, err
	}
	res := r.result("calls", rec, before, map[string]string{"calls": strconv.Itoa(r.f.calls), "talk": r.f.talk.String()})
	mu.Lock()
	loss := 0.0
	if total.Sent > 0 {
		loss = 100 * float64(total.Lost) / float64(total.Received+total.Lost)
	}
	res.Extra["media (both sides)"] = fmt.Sprintf("received %d packets, lost %d (%.3f %%), auth failures %d, played %d",
		total.Received, total.Lost, loss, total.AuthFailures, total.PlayedOut)
	mu.Unlock()
	return res, nil
}

// writeInf writes the onboarded phones' lines and tokens as a sipp
// injection file.
func writeInf(path, domain string, phones []*benchPhone) error {
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	n := 0
	for _, p := range phones {
		if tok := p.ph.Tokens().AccessToken; tok != "" {
			b.WriteString(sippRow(p.line, domain, tok))
			n++
		}
	}
	if n == 0 {
		return errors.New("bench: no phone was onboarded: nothing for --inf")
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// sourceIP spreads phones over loopback addresses, one each, as real
// phones come from many: 127.1.0.1, 127.1.0.2, … (never 127.0.0.x, where
// the servers listen). The edge and the core limit what one source may do
// at once (connections, redemptions in flight), as they should.
func sourceIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(1 + i/(250*256)), byte(i / 250 % 256), byte(i%250 + 1)})
}

// sourceIP is phone i's source address: from --source-net when set (its
// i+1th address, wrapping before the broadcast address), else sourceIP(i).
func (r *benchRun) sourceIP(i int) netip.Addr {
	p := r.f.sourceNet
	if !p.IsValid() {
		return sourceIP(i)
	}
	size := uint32(1) << (32 - p.Bits())
	a := p.Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v := base + 1 + uint32(i)%(size-2)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (r *benchRun) turnRun(ctx context.Context) (bench.Result, error) {
	server, secretFile, realm := r.f.turnServer, r.f.secretFile, r.f.realm
	target := "TURN " + server
	if server == "" {
		server, target = r.info.EdgeTURN, "the edge's TURN "+r.info.EdgeTURN
		if secretFile == "" {
			secretFile = r.info.TURNSecretFile
		}
	}
	if server == "" || secretFile == "" {
		return bench.Result{}, fmt.Errorf("%w: bench turn needs --server and --secret-file (or --quickstart)", errUsage)
	}
	secret, err := turncred.LoadSecret(secretFile)
	if err != nil {
		return bench.Result{}, err
	}
	if r.f.streams <= 0 {
		return bench.Result{}, fmt.Errorf("%w: --streams must be positive", errUsage)
	}
	expires := time.Now().Add(r.f.duration + time.Hour)
	load := bench.TURNLoad{Server: server, Realm: realm, Streams: r.f.streams, Duration: r.f.duration, Progress: r.prog,
		Credentials: func(i int) (string, string) {
			return turncred.Issue(secret, fmt.Sprintf("%s%06d", r.f.prefix, i), expires)
		}}
	r.step("relaying %d G.711-sized streams through %s for %s", r.f.streams, target, r.f.duration)
	before := r.sampleProcs()
	var held map[string]bench.ProcSample // the servers with every allocation made
	load.Allocated = func(int) { held = r.sampleProcs() }
	rec, st, err := load.Run(ctx)
	if err != nil {
		return bench.Result{}, err
	}
	res := r.result("turn", rec, before, map[string]string{"streams": strconv.Itoa(r.f.streams)})
	res.Target = target
	relayed := st.Relayed()
	res.Extra["allocations"] = fmt.Sprintf("%d of %d", st.Allocated, r.f.streams)
	res.Extra["packets"] = fmt.Sprintf("sent %d, back %d, lost %.3f %%", st.Sent, st.Received, st.Lost())
	res.Extra["relayed datagrams per second"] = fmt.Sprintf("%.0f", float64(relayed)/r.f.duration.Seconds())
	res.Figures["relayed_per_s"] = float64(relayed) / r.f.duration.Seconds()
	res.Figures["loss_pct"] = st.Lost()
	for _, p := range res.Procs {
		if relayed > 0 {
			res.Extra["server CPU per 1000 relayed datagrams, "+p.Name] = fmt.Sprintf("%.2f ms", 1e6*p.CPUSeconds/float64(relayed))
			res.Figures["cpu_ms_per_1000_relayed"] = 1e6 * p.CPUSeconds / float64(relayed)
		}
	}
	// What each allocation holds in the server: memory (RSS) and file
	// descriptors with every allocation made, less the same before any,
	// by process name; and so how many allocations the process's
	// open-files limit (RLIMIT_NOFILE: 20,000 on the benchmark machine)
	// would hold.
	for name, h := range held {
		b, ok := before[name]
		if !ok || st.Allocated == 0 {
			continue
		}
		// RSS is coarse: a collector may give memory back meanwhile, so a
		// fall is reported as such, not as a negative cost.
		kib := float64(h.RSS-b.RSS) / 1024 / float64(st.Allocated)
		if kib >= 0 {
			res.Extra["server memory per allocation, "+name] = fmt.Sprintf("%.1f KiB (RSS %.0f → %.0f MiB)", kib, float64(b.RSS)/(1<<20), float64(h.RSS)/(1<<20))
			res.Figures["rss_kib_per_allocation"] = kib
		} else {
			res.Extra["server memory per allocation, "+name] = fmt.Sprintf("not measurable here: RSS fell %.0f → %.0f MiB", float64(b.RSS)/(1<<20), float64(h.RSS)/(1<<20))
		}
		if h.FDs > 0 && b.FDs > 0 {
			fds := float64(h.FDs-b.FDs) / float64(st.Allocated)
			res.Extra["server descriptors per allocation, "+name] = fmt.Sprintf("%.2f (%d → %d)", fds, b.FDs, h.FDs)
			res.Figures["fds_per_allocation"] = fds
			if fds > 0 && h.FDLimit > 0 {
				res.Extra["allocations within its open-files limit, "+name] = fmt.Sprintf("%.0f (limit %d)", float64(h.FDLimit-b.FDs)/fds, h.FDLimit)
				res.Figures["allocations_within_fd_limit"] = float64(h.FDLimit-b.FDs) / fds
			}
		}
	}
	return res, nil
}

// classOf is the results-table class of a failed attempt.
func classOf(err error) string {
	if err == nil {
		return ""
	}
	var te *bench.TokenError
	if errors.As(err, &te) {
		return fmt.Sprintf("HTTP %d", te.Status)
	}
	if errors.Is(err, bench.ErrCallRefused) {
		// "call refused: 486 Busy Here"
		if _, rest, ok := strings.Cut(err.Error(), "call refused: "); ok {
			if code, _, _ := strings.Cut(rest, " "); code != "" {
				return "SIP " + code
			}
		}
	}
	return bench.ErrorClass(err)
}

func (r *benchRun) sampleProcs() map[string]bench.ProcSample {
	out := map[string]bench.ProcSample{}
	for name, pids := range r.procs {
		var sum bench.ProcSample
		for _, pid := range pids {
			s, err := bench.ReadProc(pid)
			if err != nil {
				r.log.Warn("cannot read server process; its CPU and memory are left out", "name", name, "pid", pid, "err", err)
				continue
			}
			sum.PID = pids[0]
			sum.CPU += s.CPU
			sum.RSS += s.RSS
			sum.PeakRSS += s.PeakRSS
			sum.PSS += s.PSS
			sum.FDs += s.FDs
			sum.FDLimit = s.FDLimit
		}
		if sum.PID != 0 {
			out[name] = sum
		}
	}
	return out
}

func (r *benchRun) result(name string, rec *bench.Recorder, before map[string]bench.ProcSample, params map[string]string) bench.Result {
	sum := rec.Summary(time.Now())
	res := bench.Result{Name: name, Target: r.info.EdgeHTTPS + " / sip " + r.sipAddr(), Started: rec.Start(),
		Params: params, Summary: sum, Series: rec.Series(), Extra: map[string]string{}, Figures: map[string]float64{}}
	after := r.sampleProcs()
	var cpu float64
	var peak, pss int64
	for name, b := range before {
		if a, ok := after[name]; ok {
			u := bench.Usage(name, b, a)
			res.Procs = append(res.Procs, u)
			cpu += u.CPUSeconds
			peak += u.PeakRSS
			pss += u.PSSEnd
		}
	}
	if len(res.Procs) > 0 {
		// Peak RSS summed over the processes (shared pages counted once
		// per process), and PSS at the end (shared pages by their share).
		res.Figures["server_peak_rss_mib"] = float64(peak) / (1 << 20)
		if pss > 0 {
			res.Figures["server_pss_mib"] = float64(pss) / (1 << 20)
		}
	}
	res.Figures["throughput_per_s"] = sum.Throughput
	res.Figures["p50_ms"] = float64(sum.P50) / float64(time.Millisecond)
	res.Figures["p99_ms"] = float64(sum.P99) / float64(time.Millisecond)
	if len(res.Procs) > 0 && sum.Successes > 0 {
		res.Figures["server_cpu_ms_per_success"] = 1000 * cpu / float64(sum.Successes)
	}
	return res
}

func (r *benchRun) report(res bench.Result) error {
	fmt.Fprintln(r.out)
	if err := bench.WriteTable(r.out, res); err != nil {
		return err
	}
	if r.f.jsonPath != "" {
		if err := bench.WriteJSONFile(r.f.jsonPath, res); err != nil {
			return err
		}
		fmt.Fprintf(r.out, "results: %s\n", r.f.jsonPath)
	}
	if r.f.plotPath != "" {
		f, err := os.Create(r.f.plotPath)
		if err != nil {
			return err
		}
		if err := bench.WritePlot(f, res); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(r.out, "plot: %s\n", r.f.plotPath)
	}
	return nil
}

func (r *benchRun) step(format string, args ...any) {
	fmt.Fprintf(r.out, "bench: "+format+"\n", args...)
}

// tick shows setup progress on a terminal.
func (r *benchRun) tick(done int64, total int, what string) {
	if r.prog != nil && (done%50 == 0 || int(done) == total) {
		fmt.Fprintf(r.prog, "\r  %d/%d %s", done, total, what)
	}
}

func (r *benchRun) endTick() {
	if r.prog != nil {
		fmt.Fprintln(r.prog)
	}
}

// errorClasses is ": class ×n, …" for a progress line, most frequent
// first, or "" when there were none.
func errorClasses(errs map[string]int) string {
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(": ")
	for i, c := range bench.SortedErrors(errs) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s ×%d", c, errs[c])
	}
	return b.String()
}
