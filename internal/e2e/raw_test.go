package e2e

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/testenv"
)

// sipClient sends hand-built requests over TLS, for tests of what the
// simulated phone would never send.
type sipClient struct {
	client *sipgo.Client
	dest   string
}

func rawClient(t *testing.T, env *testenv.Env, dest string) *sipClient {
	t.Helper()
	ua, err := sipx.NewUA("test client", "test.invalid", 0, slog.New(slog.DiscardHandler),
		&tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("test.invalid"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ua.Close() })
	return &sipClient{client: c, dest: dest}
}

// register sends a REGISTER for line with the given Call-ID, CSeq and
// extra header lines ("Name: value").
func (c *sipClient) register(t *testing.T, line, callID string, cseq int, headers ...string) *sip.Response {
	t.Helper()
	aor := sip.Uri{Scheme: "sip", User: line, Host: "edgeway.test"}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "edgeway.test"})
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", "t1")
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(cseq), MethodName: sip.REGISTER})
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("bad header %q", h)
		}
		req.AppendHeader(sip.NewHeader(strings.TrimSpace(name), strings.TrimSpace(value)))
	}
	req.SetDestination(c.dest)
	req.SetTransport("TLS")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.client.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER: %v", err)
	}
	return res
}
