package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/media"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// Issue 9, item 7: a TURN credential dies with its token family. A phone
// onboards through the edge, allocates a relay with the credential of its
// token response, and revokes its refresh token (RFC 7009, through the
// edge), which revokes the family. Within a bounded wait the edge closes
// the live allocation and refuses a new Allocate with the same credential
// (401). The edge's half (Refresh 401 too) is edge.TestTURNRevokedFamily.
func TestTURNCredentialDiesWithItsFamily(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		l.Edge.TURN.RevocationPoll = 100 * time.Millisecond
	}})
	const device = "SEP001122334401"
	ph := registered(t, env, device, true)
	tok := ph.Tokens()
	if tok.TURN == nil || tok.RefreshToken == "" {
		t.Fatalf("token response without TURN credentials or refresh token: %+v", tok)
	}
	if strings.Count(tok.TURN.Username, ":") != 2 {
		t.Fatalf("TURN username %q does not name the token family", tok.TURN.Username)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	relay, err := media.AllocateRelay(ctx, env.Info.EdgeTURN, "udp", tok.TURN.Username, tok.TURN.Credential, env.Info.TURNRealm)
	if err != nil {
		t.Fatalf("allocation before the revocation: %v", err)
	}
	defer relay.Close()
	turnSrv := env.Edge.TURN()
	if n := turnSrv.DeviceAllocations(device); n != 1 {
		t.Fatalf("DeviceAllocations = %d, want 1", n)
	}

	revoke(t, env, env.Info.EdgeHTTPS, tok.RefreshToken)

	deadline := time.Now().Add(10 * time.Second)
	for turnSrv.DeviceAllocations(device) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the revoked family's allocation is still live 10 s after the revocation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r2, err := media.AllocateRelay(ctx, env.Info.EdgeTURN, "udp", tok.TURN.Username, tok.TURN.Credential, env.Info.TURNRealm)
	var te *media.TURNError
	if err == nil {
		r2.Close()
		t.Fatal("Allocate with the revoked family's credential succeeded")
	}
	if !errors.As(err, &te) || te.Code != 401 {
		t.Fatalf("Allocate with the revoked family's credential: %v, want 401", err)
	}
}

// The core lists revoked families to admitted edges only: a client
// without an Expressway-C certificate is refused (S-12).
func TestRevokedFamiliesForEdgesOnly(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}}
	defer c.CloseIdleConnections()
	res, err := c.Get(env.Info.CoreHTTPS + edge.RevokedFamiliesPath)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("without an edge certificate: HTTP %d, want 403", res.StatusCode)
	}
}
