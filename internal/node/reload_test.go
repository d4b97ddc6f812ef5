package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/logx"
	"github.com/edgeway/edgeway/internal/node"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/mtls"
)

// reloadable is a served quickstart-style node (core and edge, dev PKI
// files) whose logger level a reload sets, as `edgeway quickstart` builds
// it.
type reloadable struct {
	n     *node.Node
	lay   quickstart.Layout
	logs  *logx.Buffer
	level *slog.LevelVar
}

func serveReloadable(t *testing.T) *reloadable {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	lay, err := quickstart.Prepare(t.TempDir(), freeAddrs(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, lay.Core.Store)
	if err != nil {
		t.Fatal(err)
	}
	r := &reloadable{lay: lay, logs: &logx.Buffer{}, level: new(slog.LevelVar)}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: r.level}))
	r.n, err = node.New(ctx, node.Config{Core: &lay.Core, Store: st, Edge: &lay.Edge, Log: log, SetLevel: r.level.Set})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.n.Bind(ctx, node.Listeners{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		st.Close()
	})
	return r
}

// load reads the layout's core.yaml and edge.yaml as `edgeway quickstart`
// does on SIGHUP (strict YAML: an unknown key is an error).
func (r *reloadable) load() (node.Reloaded, error) {
	out := node.Reloaded{Core: new(core.Config), CoreFile: filepath.Join(r.lay.Dir, "core.yaml"),
		Edge: new(edge.Config), EdgeFile: filepath.Join(r.lay.Dir, "edge.yaml")}
	for file, into := range map[string]any{out.CoreFile: out.Core, out.EdgeFile: out.Edge} {
		b, err := os.ReadFile(file)
		if err != nil {
			return node.Reloaded{}, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
			return node.Reloaded{}, fmt.Errorf("config %s: %w", file, err)
		}
	}
	return out, nil
}

func (r *reloadable) reload(t *testing.T) (changed, restart []string, err error) {
	t.Helper()
	ch, err := r.n.Reload(context.Background(), r.load)
	return ch.Applied, ch.Restart, err
}

// editYAML rewrites one of the layout's config files through edit.
func (r *reloadable) editYAML(t *testing.T, name string, edit func(string) string) {
	t.Helper()
	p := filepath.Join(r.lay.Dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteFileAtomic(p, []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setKey sets a top-level key of a YAML file's text, replacing its line
// or adding one.
func setKey(s, key, value string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, key+":") {
			lines[i] = key + ": " + value
			return strings.Join(lines, "\n")
		}
	}
	return s + key + ": " + value + "\n"
}

// reissue writes a new certificate and key, from the dev CA, over
// certFile and keyFile, and returns its serial.
func (r *reloadable) reissue(t *testing.T, certFile, keyFile string, names ...string) string {
	t.Helper()
	ca, err := mtls.LoadCA(r.lay.PKI.CACert, r.lay.PKI.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(mtls.CertRequest{CommonName: names[0], Names: names, Server: true, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := mtls.WriteFileAtomic(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	kp, err := mtls.NewKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return kp.Leaf().SerialNumber.String()
}

// dialTLS opens a TLS connection to addr trusting the dev CA.
func (r *reloadable) dialTLS(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	pem, err := os.ReadFile(r.lay.PKI.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func serial(c *tls.Conn) string {
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// roundTrip sends one HTTP/1.1 request over c and reads the answer: the
// connection still carries traffic.
func roundTrip(t *testing.T, c *tls.Conn, br *bufio.Reader) {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /healthz-reload-test HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatalf("write on the connection opened before the reload: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read on the connection opened before the reload: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// scrape is the edge's operations /metrics text.
func (r *reloadable) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + r.n.Listeners().EdgeOps.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReloadSwapsCertificatesKeepsConnections: certificate files replaced
// on disk and a reload: a TLS connection opened before (edge HTTPS, the
// phones' side, and core HTTPS) stays up and carries requests; a new
// handshake gets the new certificate.
func TestReloadSwapsCertificatesKeepsConnections(t *testing.T) {
	r := serveReloadable(t)
	ls := r.n.Listeners()
	for _, tc := range []struct {
		name, addr, cert, key string
	}{
		{"edge public HTTPS", ls.Edge.HTTPS.Addr().String(), r.lay.PKI.EdgePublicCert, r.lay.PKI.EdgePublicKey},
		{"core HTTPS", ls.Core.HTTPS.Addr().String(), r.lay.PKI.CoreCert, r.lay.PKI.CoreKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := r.dialTLS(t, tc.addr)
			br := bufio.NewReader(old)
			roundTrip(t, old, br)
			oldSerial := serial(old)
			newSerial := r.reissue(t, tc.cert, tc.key, "127.0.0.1", "localhost")
			if newSerial == oldSerial {
				t.Fatal("reissued certificate has the old serial")
			}
			if _, _, err := r.reload(t); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			roundTrip(t, old, br)
			if got := serial(old); got != oldSerial {
				t.Errorf("connection opened before the reload changed certificate: %s", got)
			}
			if got := serial(r.dialTLS(t, tc.addr)); got != newSerial {
				t.Errorf("new handshake after the reload got certificate %s, want the new %s (old %s)", got, newSerial, oldSerial)
			}
		})
	}
	if m := r.scrape(t); !strings.Contains(m, `edgeway_config_reload_total{result="ok"} 2`) {
		t.Errorf("metrics do not count two good reloads:\n%s", grepLines(m, "edgeway_config_"))
	}
}

// TestReloadLogLevel: log_level debug in the file and a reload: DEBUG
// lines appear afterwards (the edge's HTTPS server logs a failed TLS
// handshake at DEBUG), and did not before.
func TestReloadLogLevel(t *testing.T) {
	r := serveReloadable(t)
	addr := r.n.Listeners().Edge.HTTPS.Addr().String()
	failHandshake := func() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "not a TLS client hello\r\n\r\n")
		// The server answers with an alert and closes: read until then.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}
	failHandshake()
	if strings.Contains(r.logs.String(), "level=DEBUG") {
		t.Fatalf("DEBUG line at level info:\n%s", r.logs.String())
	}
	r.editYAML(t, "edge.yaml", func(s string) string { return setKey(s, "log_level", "debug") })
	applied, _, err := r.reload(t)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !slices.Contains(applied, "edge.log_level") {
		t.Errorf("applied %v, want edge.log_level", applied)
	}
	failHandshake()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(r.logs.String(), "level=DEBUG") {
		select {
		case <-deadline:
			t.Fatalf("no DEBUG line after the reload to log_level debug:\n%s", r.logs.String())
		case <-time.After(20 * time.Millisecond): // the server logs after closing
		}
	}
}

// TestReloadInvalidConfigChangesNothing: a config file that does not pass
// the start-up checks, or is not YAML, changes nothing: the node serves
// with the old values, one ERROR names the file and the problem, and the
// metric counts the error.
func TestReloadInvalidConfigChangesNothing(t *testing.T) {
	r := serveReloadable(t)
	before := r.n.DrainTimeout()
	// A valid change (drain_timeout) beside an invalid one.
	r.editYAML(t, "core.yaml", func(s string) string { return setKey(s, "drain_timeout", "7s") })
	r.editYAML(t, "edge.yaml", func(s string) string { return setKey(setKey(s, "log_level", "loud"), "drain_timeout", "9s") })
	if _, _, err := r.reload(t); err == nil || !strings.Contains(err.Error(), "edge.yaml") || !strings.Contains(err.Error(), "log_level") {
		t.Fatalf("Reload of an invalid edge.yaml: %v, want an error naming the file and log_level", err)
	}
	if got := r.n.DrainTimeout(); got != before {
		t.Errorf("drain timeout %v after a failed reload, want the old %v", got, before)
	}
	if r.level.Level() != slog.LevelInfo {
		t.Errorf("log level %v after a failed reload", r.level.Level())
	}
	r.editYAML(t, "core.yaml", func(s string) string { return setKey(s, "sip_domain", "[not, a, string") })
	if _, _, err := r.reload(t); err == nil || !strings.Contains(err.Error(), "core.yaml") {
		t.Fatalf("Reload of a core.yaml that is not YAML: %v", err)
	}
	logs := r.logs.String()
	if n := strings.Count(logs, "level=ERROR"); n != 2 {
		t.Errorf("%d ERROR lines for two failed reloads, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs, `level=ERROR msg="config reload failed`) || !strings.Contains(logs, "edge.yaml") {
		t.Errorf("no ERROR naming the file:\n%s", logs)
	}
	m := r.scrape(t)
	if !strings.Contains(m, `edgeway_config_reload_total{result="error"} 2`) || !strings.Contains(m, `edgeway_config_reload_total{result="ok"} 0`) {
		t.Errorf("metrics after two failed reloads:\n%s", grepLines(m, "edgeway_config_"))
	}
	// Still serving: a new handshake on the edge.
	r.dialTLS(t, r.n.Listeners().Edge.HTTPS.Addr().String())
}

// TestReloadRestartOnlyField: a field that needs a restart (the edge's
// https_addr, the core's store) changed: a WARN names each, the old value
// is kept (and served), while a live field (drain_timeout) applies.
func TestReloadRestartOnlyField(t *testing.T) {
	r := serveReloadable(t)
	oldHTTPS := r.n.Edge.Config().HTTPSAddr
	r.editYAML(t, "edge.yaml", func(s string) string {
		return setKey(setKey(s, "https_addr", "127.0.0.1:1"), "drain_timeout", "3s")
	})
	r.editYAML(t, "core.yaml", func(s string) string {
		return setKey(setKey(s, "store", r.lay.Core.Store+".other"), "drain_timeout", "2s")
	})
	applied, restart, err := r.reload(t)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, f := range []string{"edge.https_addr", "core.store"} {
		if !slices.Contains(restart, f) {
			t.Errorf("restart-required %v, want %s", restart, f)
		}
		if !strings.Contains(r.logs.String(), "level=WARN msg=\"config reload: this field changed but needs a restart; the running value is kept\" field="+f) {
			t.Errorf("no WARN naming %s:\n%s", f, r.logs.String())
		}
	}
	if !slices.Contains(applied, "edge.drain_timeout") || !slices.Contains(applied, "core.drain_timeout") {
		t.Errorf("applied %v, want both drain_timeouts", applied)
	}
	if got := r.n.Edge.Config().HTTPSAddr; got != oldHTTPS {
		t.Errorf("edge https_addr %s after the reload, want the old %s", got, oldHTTPS)
	}
	if got := r.n.Core.Config().Store; got != r.lay.Core.Store {
		t.Errorf("core store %s after the reload, want the old %s", got, r.lay.Core.Store)
	}
	if got := r.n.DrainTimeout(); got != 3*time.Second {
		t.Errorf("drain timeout %v after the reload, want 3s (the longer of the tiers')", got)
	}
	r.dialTLS(t, oldHTTPS)
	// The same files again: nothing more to apply, the same fields
	// still wait for a restart.
	applied2, restart2, err := r.reload(t)
	if err != nil || len(applied2) != 0 || !slices.Equal(restart2, restart) {
		t.Errorf("second reload of the same files: applied %v restart %v err %v; want none applied, restart %v", applied2, restart2, err, restart)
	}
}

// TestReloadUnchangedQuickstartFiles: the files quickstart writes, read
// back unchanged, differ in nothing from the running config.
func TestReloadUnchangedQuickstartFiles(t *testing.T) {
	r := serveReloadable(t)
	applied, restart, err := r.reload(t)
	if err != nil || len(applied) != 0 || len(restart) != 0 {
		t.Errorf("reload of quickstart's own files: applied %v restart %v err %v; want no change", applied, restart, err)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
