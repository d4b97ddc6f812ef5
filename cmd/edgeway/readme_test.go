package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlocks returns the ```sh blocks of the README section whose
// heading is heading, up to the next heading of any level.
func readmeBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var blocks []string
	in, block := false, -1
	for _, l := range lines {
		switch {
		case block < 0 && strings.HasPrefix(l, "#"):
			in = strings.TrimSpace(strings.TrimLeft(l, "#")) == heading
		case in && block < 0 && strings.TrimSpace(l) == "```sh":
			blocks = append(blocks, "")
			block = len(blocks) - 1
		case block >= 0 && strings.TrimSpace(l) == "```":
			block = -1
		case block >= 0:
			blocks[block] += l + "\n"
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("README: no ```sh block under %q", heading)
	}
	return blocks
}

// untilCtrlC matches a foreground `edgeway phone` that runs until Ctrl-C:
// no --call, not in the background.
var untilCtrlC = regexp.MustCompile(`^\./edgeway phone .*$`)

// scriptFor turns a README block into the script a user would type: the
// `go run ./cmd/edgeway` spelling runs the built binary, and a phone the
// README says runs until Ctrl-C gets its Ctrl-C (SIGINT) after a few
// seconds; its exit status is its own (timeout --preserve-status).
func scriptFor(block string) string {
	var b strings.Builder
	b.WriteString("set -e -x\nshopt -s expand_aliases\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n")
	for _, l := range strings.Split(block, "\n") {
		l = strings.ReplaceAll(l, "go run ./cmd/edgeway ", "./edgeway ")
		if code, _, _ := strings.Cut(l, "#"); untilCtrlC.MatchString(strings.TrimSpace(code)) &&
			!strings.Contains(code, "--call") && !strings.HasSuffix(strings.TrimSpace(code), "&") {
			l = "timeout --preserve-status -s INT 6s " + strings.TrimSpace(l)
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// startQuickstart runs `edgeway quickstart` in dir on its own loopback
// addresses and returns when it says it is running; the cleanup stops it
// with SIGTERM and checks its farewell.
func startQuickstart(t *testing.T, ctx context.Context, bin, dir string, args ...string) {
	t.Helper()
	// Not bound to ctx: the cleanup stops it with SIGTERM, after the test's
	// context has ended.
	cmd := exec.Command(bin, append([]string{"quickstart"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan struct{})
	var tail strings.Builder // read after done
	var waitErr error        // read after done
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Edgeway is running") {
				close(ready)
			}
			tail.WriteString(sc.Text() + "\n")
		}
		waitErr = cmd.Wait() // reaps it as soon as it exits, as a shell would
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		stop := time.AfterFunc(time.Minute, func() { _ = cmd.Process.Kill() })
		defer stop.Stop()
		<-done
		if err := waitErr; err != nil {
			t.Errorf("quickstart after SIGTERM: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(tail.String(), "stopped; state kept in") {
			t.Errorf("quickstart printed no farewell on SIGTERM; stdout:\n%s", tail.String())
		}
	})
	select {
	case <-ready:
	case <-done:
		t.Fatalf("quickstart exited before it was running:\n%s", stderr.String())
	case <-ctx.Done():
		t.Fatalf("quickstart not running: %v\n%s", ctx.Err(), stderr.String())
	}
}

// buildEdgeway builds the binary once for a test.
func buildEdgeway(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "edgeway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runScript runs a shell script in dir and returns its output; it fails
// the test when any command exits non-zero (set -e).
func runScript(t *testing.T, ctx context.Context, dir, name, script string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("README %q: %v; the script and its output:\n%s\n----\n%s", name, err, script, out.String())
	}
	return out.String()
}

// TestREADMEBlocks runs the README's "Try it" and "Administer it" shell
// blocks top to bottom, as written, against a fresh quickstart in a
// temporary directory (issue 12 §3): every command must exit 0. The second
// and third runs of SEP001122334401 work only because the phone kept the
// tokens its one-time code bought.
func TestREADMEBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds edgeway and runs a quickstart")
	}
	for _, tool := range []string{"bash", "timeout", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	work := t.TempDir()
	buildEdgeway(t, ctx, work)
	// Loopback addresses of its own, so other quickstarts on this machine
	// do not collide; the README's commands take addresses from
	// quickstart.json.
	octet := 1 + os.Getpid()%250
	ips := []string{"--edge-ip", fmt.Sprintf("127.12.%d.1", octet), "--core-ip", fmt.Sprintf("127.12.%d.2", octet)}
	startQuickstart(t, ctx, "./edgeway", work, ips...)
	defer func() {
		// A second quickstart on the same ports names the first; `quickstart
		// stop` then stops the first (its farewell is checked by the cleanup).
		// It changes nothing of the first one's state: no new codes in
		// quickstart.json, the same passwords.
		const listCodes = "./edgeway admin --quickstart edgeway-data/quickstart.json activation list\n"
		codesBefore := runScript(t, ctx, work, "codes before", listCodes)
		infoBefore, _ := os.ReadFile(filepath.Join(work, "edgeway-data", "quickstart.json"))
		pwBefore, _ := os.ReadFile(filepath.Join(work, "edgeway-data", "passwords.json"))
		second := exec.CommandContext(ctx, "./edgeway", append([]string{"quickstart"}, ips...)...)
		second.Dir = work
		out, err := second.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "another quickstart (pid ") || !strings.Contains(string(out), "address already in use") {
			t.Errorf("second quickstart on busy ports: %v, want a refusal naming the first:\n%s", err, out)
		}
		infoAfter, _ := os.ReadFile(filepath.Join(work, "edgeway-data", "quickstart.json"))
		pwAfter, _ := os.ReadFile(filepath.Join(work, "edgeway-data", "passwords.json"))
		if len(infoBefore) == 0 || !bytes.Equal(infoBefore, infoAfter) || !bytes.Equal(pwBefore, pwAfter) {
			t.Errorf("the refused second quickstart changed the first one's quickstart.json or passwords.json")
		}
		if codesAfter := runScript(t, ctx, work, "codes after", listCodes); codesAfter != codesBefore {
			t.Errorf("the refused second quickstart issued activation codes in the first one's store:\nbefore:\n%s\nafter:\n%s", codesBefore, codesAfter)
		}
		stop := runScript(t, ctx, work, "quickstart stop", "./edgeway quickstart stop\n")
		if !strings.Contains(stop, "stopped quickstart pid") {
			t.Errorf("quickstart stop: %s", stop)
		}
	}()

	try := runScript(t, ctx, work, "Try it", scriptFor(strings.Join(readmeBlocks(t, string(readme), "Try it"), "")))
	for _, want := range []string{
		"onboarded SEP001122334401",
		"registered   200 OK",
		"unregistered binding removed",
		"resumed SEP001122334401 with its stored refresh token",
		"media received: sent",
		"onboarded CSFDEMO",
	} {
		if !strings.Contains(try, want) {
			t.Errorf("Try it: no %q in the output:\n%s", want, try)
		}
	}
	if n := strings.Count(try, "calling "); n != 2 {
		t.Errorf("Try it: %d calls placed, want 2:\n%s", n, try)
	}
	fi, err := os.Stat(filepath.Join(work, "edgeway-data", "phones", "SEP001122334401.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("stored tokens mode %v, want 0600", fi.Mode().Perm())
	}
	runScript(t, ctx, work, "Administer it", scriptFor(strings.Join(readmeBlocks(t, string(readme), "Administer it"), "")))

	// A stored refresh token replayed past the grace revokes its family
	// (RFC 9700 §4.14.2): the phone says so, forgets it, and with its code
	// spent it fails and names the way out; with a fresh code it onboards.
	tokens := filepath.Join(work, "edgeway-data", "phones", "SEP001122334402.json")
	old, err := os.ReadFile(tokens)
	if err != nil {
		t.Fatal(err)
	}
	onboard := "./edgeway onboard --quickstart edgeway-data/quickstart.json --device SEP001122334402 >/dev/null\n"
	runScript(t, ctx, work, "rotate", onboard) // rotates: old is now a used token
	for range 2 {                              // the grace answers one retry; the next is a replay
		if err := os.WriteFile(tokens, old, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, "bash", "-c", onboard)
		cmd.Dir = work
		out, _ := cmd.CombinedOutput()
		t.Logf("replayed refresh token: %s", out)
		if strings.Contains(string(out), "was refused") {
			for _, want := range []string{"the token family is revoked or expired", "activation code has already been used", "edgeway admin activation issue SEP001122334402"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("replayed refresh token: no %q in:\n%s", want, out)
				}
			}
			if _, err := os.Stat(tokens); err == nil {
				t.Error("the refused tokens were kept")
			}
			out := runScript(t, ctx, work, "fresh code", `set -e
code=$(./edgeway admin --quickstart edgeway-data/quickstart.json activation issue SEP001122334402 | awk '/^activation code/ {print $3}')
./edgeway onboard --quickstart edgeway-data/quickstart.json --device SEP001122334402 --code "$code"
`)
			if !strings.Contains(out, `"access_token"`) {
				t.Errorf("a fresh code did not onboard the device again:\n%s", out)
			}
			if _, err := os.Stat(tokens); err != nil {
				t.Errorf("the fresh tokens were not kept: %v", err)
			}
			return
		}
	}
	t.Fatal("a refresh token replayed twice was never refused")
}
