package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/logx"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/mtls"
)

// startEdgewayLogged is startEdgeway with the child's stderr readable.
func startEdgewayLogged(t *testing.T, args ...string) (*exec.Cmd, *logx.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join(args, "\x1f"))
	logs := &logx.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("edgeway %s stderr:\n%s", strings.Join(args, " "), logs.String())
		}
	})
	return cmd, logs
}

// until polls cond (a scrape, a log line) until it holds or d passes.
func until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		<-tick.C
	}
}

func scrapeOps(addr string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// setYAMLKey sets a top-level key of a YAML file, replacing its line or
// adding one.
func setYAMLKey(t *testing.T, file, key, value string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	found := false
	for i, l := range lines {
		if strings.HasPrefix(l, key+":") {
			lines[i], found = key+": "+value, true
		}
	}
	s := strings.Join(lines, "\n")
	if !found {
		s += key + ": " + value + "\n"
	}
	if err := mtls.WriteFileAtomic(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSIGHUPReloadsQuickstart sends real SIGHUPs to a running `edgeway
// quickstart` process: the edge's public certificate replaced on disk is
// served to new handshakes while a connection opened before keeps working;
// log_level debug in edge.yaml brings DEBUG lines; an invalid edge.yaml
// changes nothing (ERROR naming it, metric error, still serving); a
// restart-only field gets a WARN naming it; SIGTERM still drains and exits.
func TestSIGHUPReloadsQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an edgeway process")
	}
	dir := t.TempDir()
	const coreIP, edgeIP = "127.0.0.86", "127.0.0.85"
	proc, logs := startEdgewayLogged(t, "quickstart", "--dir", dir, "--core-ip", coreIP, "--edge-ip", edgeIP, "--log-level", "info")
	qs := filepath.Join(dir, "quickstart.json")
	until(t, 120*time.Second, "quickstart.json written", func() bool { _, err := os.Stat(qs); return err == nil })
	info, err := quickstart.ReadInfo(qs)
	if err != nil {
		t.Fatal(err)
	}
	edgeHTTPS := strings.TrimPrefix(info.EdgeHTTPS, "https://")
	// Served: the operations address answers, so SIGHUP is caught.
	until(t, 30*time.Second, "edge /metrics", func() bool { return strings.Contains(scrapeOps(info.EdgeOps), "edgeway_config_reload_total") })

	caPEM, err := os.ReadFile(info.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	dial := func() *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", edgeHTTPS, &tls.Config{RootCAs: pool, ServerName: edgeIP})
		if err != nil {
			t.Fatalf("TLS to the edge: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	serialOf := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].SerialNumber.String() }
	old := dial()
	br := bufio.NewReader(old)
	get := func() {
		t.Helper()
		_ = old.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(old, "GET /sighup-test HTTP/1.1\r\nHost: "+edgeIP+"\r\n\r\n"); err != nil {
			t.Fatalf("write on the connection opened before SIGHUP: %v", err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("read on the connection opened before SIGHUP: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get()
	oldSerial := serialOf(old)

	// A new public certificate for the edge, and log_level debug.
	pki := filepath.Join(dir, "pki")
	ca, err := mtls.LoadCA(filepath.Join(pki, "ca.pem"), filepath.Join(pki, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(mtls.CertRequest{CommonName: "edge.edgeway.test", Names: []string{"edge.edgeway.test", "localhost", edgeIP}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteFileAtomic(filepath.Join(pki, "edge-public-key.pem"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteFileAtomic(filepath.Join(pki, "edge-public.pem"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	edgeYAML := filepath.Join(dir, "edge.yaml")
	setYAMLKey(t, edgeYAML, "log_level", "debug")
	if strings.Contains(logs.String(), "level=DEBUG") {
		t.Fatal("DEBUG lines before the reload to debug")
	}
	if err := proc.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "a good reload counted", func() bool {
		return strings.Contains(scrapeOps(info.EdgeOps), `edgeway_config_reload_total{result="ok"} 1`)
	})
	get()
	if got := serialOf(old); got != oldSerial {
		t.Errorf("the connection opened before SIGHUP changed certificate")
	}
	if got := serialOf(dial()); got == oldSerial {
		t.Errorf("a handshake after SIGHUP still gets the old certificate %s", got)
	}
	// A failed handshake is logged at DEBUG by the HTTPS server.
	if c, err := net.Dial("tcp", edgeHTTPS); err == nil {
		_, _ = io.WriteString(c, "not TLS\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}
	until(t, 10*time.Second, "a DEBUG line after SIGHUP to log_level debug", func() bool { return strings.Contains(logs.String(), "level=DEBUG") })

	// An invalid edge.yaml: nothing changes.
	setYAMLKey(t, edgeYAML, "public_url", "ftp://edge.invalid")
	if err := proc.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "a failed reload counted", func() bool {
		return strings.Contains(scrapeOps(info.EdgeOps), `edgeway_config_reload_total{result="error"} 1`)
	})
	if l := logs.String(); !strings.Contains(l, `level=ERROR msg="config reload failed`) || !strings.Contains(l, edgeYAML) || !strings.Contains(l, "public_url") {
		t.Errorf("no ERROR naming %s and public_url", edgeYAML)
	}
	get()
	dial()

	// A restart-only field: WARN, old value kept.
	setYAMLKey(t, edgeYAML, "public_url", "https://"+edgeHTTPS)
	setYAMLKey(t, edgeYAML, "sip_addr", edgeIP+":1")
	if err := proc.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	until(t, 30*time.Second, "a second good reload counted", func() bool {
		return strings.Contains(scrapeOps(info.EdgeOps), `edgeway_config_reload_total{result="ok"} 2`)
	})
	if !strings.Contains(logs.String(), "field=edge.sip_addr") {
		t.Error("no WARN naming edge.sip_addr")
	}
	if c, err := net.DialTimeout("tcp", info.EdgeSIP, 5*time.Second); err != nil {
		t.Errorf("the edge's SIP port %s after a reload that changed sip_addr: %v", info.EdgeSIP, err)
	} else {
		c.Close()
	}

	// SIGTERM: drain and exit as before.
	old.Close()
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Error("no exit within 60 s of SIGTERM")
	}
}
