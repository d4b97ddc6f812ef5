package core_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
)

// clusterNode is one core node of an in-process cluster sharing a store.
type clusterNode struct {
	srv   *core.Server
	https string
	token string
	pool  *x509.CertPool
}

func (n *clusterNode) call(t *testing.T, method, path string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.https+path, rd)
	req.Header.Set("Authorization", "Bearer "+n.token)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.pool, MinVersion: tls.VersionTLS12}}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func startNode(t *testing.T, ctx context.Context, lay quickstart.Layout, st store.Store, name, role string) *clusterNode {
	t.Helper()
	cfg := lay.Core
	cfg.Node, cfg.Role = name, role
	var ls core.Listeners
	for _, l := range []*net.Listener{&ls.HTTPS, &ls.Config, &ls.Phone, &ls.MRA} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		*l = ln
	}
	cfg.PhoneOAuthPort = ls.Phone.Addr().(*net.TCPAddr).Port
	cfg.MRAPort = ls.MRA.Addr().(*net.TCPAddr).Port
	cfg.HTTPSAddr, cfg.ConfigAddr = ls.HTTPS.Addr().String(), ls.Config.Addr().String()
	srv, err := core.New(ctx, cfg, st, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ls) }()
	t.Cleanup(func() { <-done })
	tok, err := os.ReadFile(cfg.AdminTokenFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(lay.PKI.CACert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	n := &clusterNode{srv: srv, https: "https://" + ls.HTTPS.Addr().String(), token: strings.TrimSpace(string(tok)), pool: pool}
	// Serve registers the node in the store; wait until the API answers.
	for i := 0; i < 100; i++ {
		if code, _ := n.call(t, http.MethodGet, "/api/v1/nodes", nil); code == 200 {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %s did not come up", name)
	return nil
}

// S-13, S-14: a publisher and a subscriber share one store. The mode is
// enabled on the publisher only (a subscriber refuses), reaches every node
// through the shared settings, and each node applies it when its
// CallManager service restarts; status names the nodes still behind.
func TestClusterSIPOAuthModeAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lay, err := quickstart.Prepare(t.TempDir(), quickstart.DefaultAddrs())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(lay.Dir, "cluster.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the nodes (registered later) stop
	t.Cleanup(cancel)
	pub := startNode(t, ctx, lay, st, "cucm-pub", core.RolePublisher)
	sub := startNode(t, ctx, lay, st, "cucm-sub1", core.RoleSubscriber)

	code, body := sub.call(t, http.MethodPost, "/api/v1/utils/sipoauth-mode", map[string]string{"action": "enable"})
	if code != http.StatusConflict || !strings.Contains(body, "S-13") {
		t.Fatalf("enable on the subscriber: %d %s, want 409 naming S-13", code, body)
	}
	code, body = pub.call(t, http.MethodPost, "/api/v1/utils/sipoauth-mode", map[string]string{"action": "enable"})
	if code != http.StatusConflict || !strings.Contains(body, "S-7") {
		t.Fatalf("enable before export-controlled is allowed: %d %s, want 409 naming S-7", code, body)
	}
	if code, body := pub.call(t, http.MethodPut, "/api/v1/params/"+core.ParamExportControlled, map[string]string{"value": "true"}); code != 200 {
		t.Fatalf("params: %d %s", code, body)
	}
	code, body = pub.call(t, http.MethodPost, "/api/v1/utils/sipoauth-mode", map[string]string{"action": "enable"})
	if code != 200 {
		t.Fatalf("enable on the publisher: %d %s", code, body)
	}
	status := func(n *clusterNode) core.ModeStatus {
		code, body := n.call(t, http.MethodGet, "/api/v1/utils/sipoauth-mode", nil)
		if code != 200 {
			t.Fatalf("status: %d %s", code, body)
		}
		var ms core.ModeStatus
		if err := json.Unmarshal([]byte(body), &ms); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	stale := func(ms core.ModeStatus) []string {
		var out []string
		for _, n := range ms.Nodes {
			if n.RestartNeeded {
				out = append(out, n.Name)
			}
		}
		return out
	}
	// The subscriber reads the publisher's setting from the shared store.
	ms := status(sub)
	if ms.ClusterMode != "enabled" || fmt.Sprint(stale(ms)) != "[cucm-pub cucm-sub1]" || !strings.Contains(ms.Message, "S-14") {
		t.Fatalf("after enable: %+v; want both nodes waiting for a restart", ms)
	}
	if code, body := sub.call(t, http.MethodPost, "/api/v1/service/restart", map[string]string{"service": "callmanager"}); code != 200 {
		t.Fatalf("restart subscriber: %d %s", code, body)
	}
	if got := stale(status(pub)); fmt.Sprint(got) != "[cucm-pub]" {
		t.Fatalf("after restarting the subscriber, nodes behind = %v, want [cucm-pub]", got)
	}
	if code, body := pub.call(t, http.MethodPost, "/api/v1/service/restart", map[string]string{"service": "callmanager"}); code != 200 {
		t.Fatalf("restart publisher: %d %s", code, body)
	}
	if got := stale(status(sub)); len(got) != 0 {
		t.Fatalf("after restarting both, nodes behind = %v", got)
	}

	// R-1 across the cluster: a key regenerated on the publisher stops
	// verifying on the subscriber too, and the new key starts, within the
	// sweep interval.
	code, body = pub.call(t, http.MethodPost, "/api/v1/keys/rotate?regen=true", nil)
	if code != 200 {
		t.Fatalf("regen: %d %s", code, body)
	}
	var rotated struct{ Kid string }
	_ = json.Unmarshal([]byte(body), &rotated)
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids := jwksKIDs(t, sub.srv)
		if len(kids) == 1 && kids[rotated.Kid] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriber still publishes %v after the publisher regenerated to %s", kids, rotated.Kid)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Token lifetimes set as parameters on one node apply on the others.
	if code, body := pub.call(t, http.MethodPut, "/api/v1/params/"+core.ParamAccessTokenTTL, map[string]string{"value": "5m"}); code != 200 {
		t.Fatalf("set access_token_ttl: %d %s", code, body)
	}
	deadline = time.Now().Add(10 * time.Second)
	for sub.srv.AccessTTL() != 5*time.Minute {
		if time.Now().After(deadline) {
			t.Fatalf("subscriber's access token lifetime = %v, want 5m", sub.srv.AccessTTL())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
