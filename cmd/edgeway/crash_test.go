package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
)

// startEdgeway runs this test binary as `edgeway args...` in its own
// process and returns it; the test kills it at cleanup if it still runs.
func startEdgeway(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join(args, "\x1f"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("edgeway %s stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
	})
	return cmd
}

// waitListening waits until addr accepts TCP connections or d passes.
func waitListening(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after %v: %v", addr, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A REGISTER answered 200 is durable: kill -9 of the process that runs
// the core, in the middle of a REGISTER load, loses no binding a phone was
// told was stored (RFC 3261 §10.3: the 200 lists the bindings the
// registrar holds). Every phone's last acknowledged CSeq must be in the
// store when it is opened again.
func TestKill9LosesNoAcknowledgedBinding(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills an edgeway process")
	}
	dir := t.TempDir()
	const coreIP, edgeIP = "127.0.0.82", "127.0.0.81"
	proc := startEdgeway(t, "quickstart", "--dir", dir, "--core-ip", coreIP, "--edge-ip", edgeIP, "--log-level", "error")
	qs := filepath.Join(dir, "quickstart.json")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(qs); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("quickstart.json not written within 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	info, err := quickstart.ReadInfo(qs)
	if err != nil {
		t.Fatal(err)
	}
	waitListening(t, info.EdgeSIP, 30*time.Second)
	waitListening(t, strings.TrimPrefix(info.EdgeHTTPS, "https://"), 30*time.Second)

	// Phones with tokens: bench onboard provisions and redeems them and
	// writes their access tokens as sipp rows (line;domain;Authorization).
	rows := filepath.Join(t.TempDir(), "rows.csv")
	var out bytes.Buffer
	if err := runBench(context.Background(), []string{"onboard", "--quickstart", qs, "--phones", "24", "--prefix", "KILL",
		"--first-line", "7300000", "--inf", rows, "--progress", "never", "--log-level", "error"}, &out); err != nil {
		t.Fatalf("bench onboard: %v\n%s", err, out.String())
	}
	type row struct{ line, auth string }
	var phones []row
	f, err := os.Open(rows)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ";", 3)
		if len(parts) == 3 {
			phones = append(phones, row{parts[0], strings.TrimPrefix(parts[2], "Authorization: ")})
		}
	}
	f.Close()
	if len(phones) < 20 {
		t.Fatalf("only %d phones onboarded:\n%s", len(phones), out.String())
	}
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(info.CACert)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA %s: %v", info.CACert, err)
	}

	// Each phone re-registers in a loop and records the CSeq of every 200;
	// the process is killed once enough have been acknowledged, with
	// REGISTERs still in flight.
	acked := make([]atomic.Uint32, len(phones))
	var total atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, p := range phones {
		ph, err := bench.NewPhone(bench.PhoneConfig{Device: fmt.Sprintf("KILL%d", i), Line: p.line, Domain: info.Domain,
			EdgeHTTPS: info.EdgeHTTPS, EdgeSIP: info.EdgeSIP, RootCAs: pool, Expires: 3600, Log: slog.New(slog.DiscardHandler),
			SourceIP: netip.AddrFrom4([4]byte{127, 4, 0, byte(i + 1)})})
		if err != nil {
			t.Fatal(err)
		}
		defer ph.Close()
		wg.Go(func() {
			for n := 0; n < 10000 && ctx.Err() == nil; n++ {
				res, err := ph.RegisterWith(ctx, p.auth, 3600)
				if err != nil {
					return // the process is gone
				}
				if res.StatusCode != 200 {
					t.Errorf("phone %s: REGISTER answered %d %s", p.line, res.StatusCode, res.Reason)
					return
				}
				acked[i].Store(res.CSeq().SeqNo)
				total.Add(1)
			}
		})
	}
	for total.Load() < 300 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	cancel()
	wg.Wait()
	if total.Load() < 300 {
		t.Fatalf("only %d REGISTERs acknowledged before the deadline", total.Load())
	}

	st, err := store.Open(context.Background(), filepath.Join(dir, "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	regs, err := st.Registrations(context.Background(), "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]uint32{}
	for _, r := range regs {
		stored[r.AOR] = max(stored[r.AOR], r.CSeq)
	}
	lost := 0
	for i, p := range phones {
		want := acked[i].Load()
		if want == 0 {
			continue
		}
		aor := "sip:" + p.line + "@" + strings.ToLower(info.Domain)
		if got, ok := stored[aor]; !ok || got < want {
			lost++
			t.Errorf("%s: acknowledged CSeq %d, the store after kill -9 holds %d (present %v)", aor, want, got, ok)
		}
	}
	t.Logf("%d REGISTERs acknowledged by %d phones before kill -9; %d bindings in the store; %d lost", total.Load(), len(phones), len(regs), lost)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Log("note: the load reached its deadline")
	}
}
