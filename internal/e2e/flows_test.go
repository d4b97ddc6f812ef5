package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// rawRegister is a REGISTER with a bearer token, as a phone sends it.
func rawRegister(line, domain, accessToken string) string {
	return fmt.Sprintf("REGISTER sip:%[2]s SIP/2.0\r\n"+
		"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK-raw1\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:%[1]s@%[2]s>;tag=raw1\r\n"+
		"To: <sip:%[1]s@%[2]s>\r\n"+
		"Call-ID: raw-register-1\r\n"+
		"CSeq: 1 REGISTER\r\n"+
		"Contact: <sip:%[1]s@raw.invalid;transport=tls;ob>\r\n"+
		"Expires: 600\r\n"+
		"Supported: path, outbound\r\n"+
		"Authorization: Bearer %[3]s\r\n"+
		"Content-Length: 0\r\n\r\n", line, domain, accessToken)
}

// Issue 4 (call routing): the edge keeps each registered phone's TLS flow
// (RFC 5626) and sends CRLF keep-alives down it, so a NAT in front of the
// phone keeps the binding open for incoming calls. A phone that answers
// the pings stays connected past the idle timeout; one that goes silent is
// dropped at the idle timeout, and the edge forgets its flow.
func TestEdgeKeepsPhoneFlowsAlive(t *testing.T) {
	const every, idle = 100 * time.Millisecond, time.Second
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		l.Edge.SIPKeepAlive, l.Edge.SIPIdleTimeout = every, idle
	}})
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(context.Background(), env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", env.Info.EdgeSIP, &tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, rawRegister(env.Devices[phoneA].Line, env.Info.Domain, tok.AccessToken)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "SIP/2.0 200") {
		t.Fatalf("REGISTER through the edge: %q %v", status, err)
	}
	for { // the rest of the response
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "\r\n" {
			break
		}
	}
	// The edge records the flow just after relaying the 200.
	waitCount(t, "flows the edge keeps after the REGISTER", env.Edge.SIP().Flows, 1)

	// Answer every ping with a pong for twice the idle timeout.
	pings := 0
	until := time.Now().Add(2 * idle)
	for time.Now().Before(until) {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatalf("after %d pings: %v (the edge closed a phone that answers its keep-alives?)", pings, err)
		}
		if !bytes.Equal(buf, []byte("\r\n\r\n")) {
			t.Fatalf("keep-alive %q, want CRLFCRLF (RFC 5626 §4.4.1)", buf)
		}
		pings++
		if _, err := io.WriteString(conn, "\r\n"); err != nil {
			t.Fatalf("pong: %v", err)
		}
	}
	if pings < 5 {
		t.Errorf("%d keep-alives in %v at one per %v", pings, 2*idle, every)
	}
	// The counter moves just after the write the phone may already have read.
	for deadline := time.Now().Add(2 * time.Second); env.Edge.SIP().KeepAlives() < uint64(pings) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := env.Edge.SIP().KeepAlives(); got < uint64(pings) {
		t.Errorf("KeepAlives() = %d, fewer than the %d received", got, pings)
	}

	// Go silent: the edge drops the connection at its idle timeout (the
	// pings it writes do not count as the phone speaking) and forgets the
	// flow.
	_ = conn.SetReadDeadline(time.Now().Add(10 * idle))
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		closed <- err
	}()
	select {
	case <-closed:
	case <-time.After(10 * idle):
		t.Fatal("a phone that stopped answering keep-alives was never dropped")
	}
	waitCount(t, "flows the edge keeps after the phone's connection closed", env.Edge.SIP().Flows, 0)
}
