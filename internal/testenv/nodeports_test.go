package testenv_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/testenv"
)

// TestNodeSetPortsAreTheOnesBound: the SIP ports set for a node with
// `admin node set` (S-11) are what the assembled core binds at its next
// start — quickstart and testenv too, not only `edgeway core` (issue 10:
// they used to be resolved in core.Server.Run alone). testenv pre-binds
// kernel-chosen ports; the node's ports, written to the store before the
// start, must replace them.
func TestNodeSetPortsAreTheOnesBound(t *testing.T) {
	phone, mra := testenv.FreePort(t), testenv.FreePort(t)
	var preBoundPhone string
	env := testenv.Start(t, testenv.Options{BeforeStart: func(ctx context.Context, e *testenv.Env) error {
		preBoundPhone = e.Info.CorePhoneOAuth
		return e.Store.PutNode(ctx, store.Node{Name: e.Layout.Core.Node, PhoneOAuthPort: phone, MRAPort: mra})
	}})
	if want := fmt.Sprintf("127.0.0.1:%d", phone); env.Info.CorePhoneOAuth != want {
		t.Fatalf("core Phone OAuth listener on %s, want the node's %s", env.Info.CorePhoneOAuth, want)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", mra); env.Info.CoreMRA != want {
		t.Fatalf("core MRA listener on %s, want the node's %s", env.Info.CoreMRA, want)
	}
	// The core serves TLS on the node's Phone OAuth port...
	conn, err := tls.Dial("tcp", env.Info.CorePhoneOAuth, &tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS to the node's Phone OAuth port: %v", err)
	}
	conn.Close()
	// ...no longer on the port it was configured with...
	if c, err := net.Dial("tcp", preBoundPhone); err == nil {
		c.Close()
		t.Fatalf("the configured Phone OAuth port %s still accepts connections", preBoundPhone)
	}
	// ...and reports the node's ports as the ones it listens on.
	code, body := env.Admin(t, http.MethodGet, "/api/v1/nodes", nil)
	if code != http.StatusOK {
		t.Fatalf("GET nodes: %d %s", code, body)
	}
	var nodes []core.NodeView
	if err := json.Unmarshal(body, &nodes); err != nil {
		t.Fatalf("nodes: %v: %s", err, body)
	}
	if len(nodes) != 1 || nodes[0].ListeningPhoneOAuthPort != phone || nodes[0].ListeningMRAPort != mra || nodes[0].PortsPending {
		t.Fatalf("nodes %+v, want one listening on %d/%d with no ports pending", nodes, phone, mra)
	}
}
