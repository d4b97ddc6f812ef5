package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/mtls"
)

// fakeEdge is a SIP/TLS server that answers every REGISTER 200 and, when
// pong is set, every CRLF ping with a CRLF pong (RFC 5626 §4.4.1); when
// not, it stays silent, as a host that died without closing anything.
type fakeEdge struct {
	addr  string
	roots *x509.CertPool
}

func startFakeEdge(t *testing.T, pong bool) *fakeEdge {
	t.Helper()
	pki, err := mtls.InitDevPKI(mtls.DevPKIOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pki.EdgePublicCert, pki.EdgePublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFake(c, pong)
		}
	}()
	return &fakeEdge{addr: ln.Addr().String(), roots: roots}
}

func serveFake(c net.Conn, pong bool) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line == "\r\n" { // a CRLF of a ping between messages
			if next, err := r.Peek(2); err == nil && string(next) == "\r\n" {
				_, _ = r.Discard(2)
				if pong {
					_, _ = c.Write([]byte("\r\n"))
				}
			}
			continue
		}
		var copied []string
		for {
			h, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if h == "\r\n" {
				break
			}
			name := strings.ToLower(strings.TrimSpace(h[:max(strings.IndexByte(h, ':'), 0)]))
			switch name {
			case "via", "from", "call-id", "cseq":
				copied = append(copied, strings.TrimRight(h, "\r\n"))
			case "to":
				copied = append(copied, strings.TrimRight(h, "\r\n")+";tag=fake")
			}
		}
		fmt.Fprintf(c, "SIP/2.0 200 OK\r\n%s\r\nContent-Length: 0\r\n\r\n", strings.Join(copied, "\r\n"))
	}
}

func fakePhone(t *testing.T, e *fakeEdge) *Phone {
	t.Helper()
	ph, err := NewPhone(PhoneConfig{Device: "SEP0000000000F1", Line: "1001", Domain: "edgeway.test", RootCAs: e.roots,
		EdgeHTTPS: "https://" + e.addr, EdgeSIP: e.addr, PongTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ph.Close)
	res, err := ph.Register(context.Background(), 600)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER to the fake edge: %v %v", res, err)
	}
	return ph
}

// RFC 5626 §4.4.1: a flow whose edge answers the CRLF ping with a pong is
// alive; one whose edge stays silent has failed once PongTimeout passes —
// the way a phone notices an edge that died without closing its
// connections.
func TestPingNeedsPong(t *testing.T) {
	ctx := context.Background()
	alive := fakePhone(t, startFakeEdge(t, true))
	for i := range 3 {
		if err := alive.Ping(ctx); err != nil {
			t.Fatalf("ping %d to an edge that pongs: %v", i, err)
		}
	}
	silent := fakePhone(t, startFakeEdge(t, false))
	err := silent.Ping(ctx)
	if !errors.Is(err, ErrFlowFailed) {
		t.Fatalf("ping to a silent edge: %v, want ErrFlowFailed", err)
	}
	if err := silent.Ping(ctx); !errors.Is(err, ErrFlowFailed) {
		t.Fatalf("second ping on the failed flow: %v, want ErrFlowFailed", err)
	}
}

// A token request that cannot connect to the current edge sent nothing
// (no code redeemed), so the phone asks the next edge; one the edge
// answered — even with an error — is not repeated elsewhere.
func TestTokenRequestTriesNextEdgeOnlyWhenNothingWasSent(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	live := startFakeEdge(t, true) // answers HTTP with nothing useful: not a token response
	ph, err := NewPhone(PhoneConfig{Device: "SEP0000000000F2", Line: "1002", Domain: "edgeway.test", RootCAs: live.roots,
		Edges: []Edge{{HTTPS: "https://" + deadAddr, SIP: deadAddr}, {HTTPS: "https://" + live.addr, SIP: live.addr}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = ph.Onboard(ctx, "1234-5678-9012-3456")
	if err == nil || dialFailed(err) {
		t.Fatalf("onboarding: %v; want the second edge's (non-dial) failure", err)
	}
	if got := ph.Edge().SIP; got != live.addr {
		t.Fatalf("the phone is on %s after the dead edge, want the live one %s", got, live.addr)
	}
	// The live edge answered: the next request stays there.
	_, _ = ph.Onboard(ctx, "1234-5678-9012-3456")
	if got := ph.Edge().SIP; got != live.addr {
		t.Fatalf("an answered request moved the phone to %s", got)
	}
}
