package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// dialFrom opens a TCP connection to addr from the loopback address ip
// (closed at test end).
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tlsFrom completes a TLS handshake with addr from ip.
func tlsFrom(t *testing.T, env *testenv.Env, ip, addr string) *tls.Conn {
	t.Helper()
	c := tls.Client(dialFrom(t, ip, addr), &tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS with %s from %s: %v", addr, ip, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// registerText is a REGISTER for line 1001 with a bearer token, its own
// transaction and Call-ID (n), ready to write on a TLS connection.
func registerText(tok string, n int) string {
	return fmt.Sprintf("REGISTER sip:edgeway.test SIP/2.0\r\n"+
		"Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKpl%d\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:1001@edgeway.test>;tag=pl\r\n"+
		"To: <sip:1001@edgeway.test>\r\n"+
		"Call-ID: pipeline-%d\r\n"+
		"CSeq: 1 REGISTER\r\n"+
		"Contact: <sip:1001@pipeline.invalid;transport=tls>\r\n"+
		"Expires: 600\r\n"+
		"Supported: path, outbound\r\n"+
		"Authorization: Bearer %s\r\n"+
		"Content-Length: 0\r\n\r\n", n, n, tok)
}

// finalCodes reads responses from r and returns the status codes of the
// first n final ones (provisional responses are skipped).
func finalCodes(r *bufio.Reader, n int) ([]int, error) {
	var codes []int
	for len(codes) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			return codes, err
		}
		rest, ok := strings.CutPrefix(line, "SIP/2.0 ")
		if !ok || len(rest) < 3 {
			continue
		}
		code, err := strconv.Atoi(rest[:3])
		if err != nil {
			return codes, fmt.Errorf("status line %q", line)
		}
		if code >= 200 {
			codes = append(codes, code)
		}
	}
	return codes, nil
}

// pipeline writes n REGISTERs back to back on conn while reading their
// answers, and returns how many of each status came back.
func pipeline(t *testing.T, conn net.Conn, tok string, n int) map[int]int {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := bufio.NewWriterSize(conn, 64<<10)
		for i := range n {
			if _, err := w.WriteString(registerText(tok, i)); err != nil {
				t.Errorf("pipelining: %v", err)
				return
			}
		}
		if err := w.Flush(); err != nil {
			t.Errorf("pipelining: %v", err)
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
	codes, err := finalCodes(bufio.NewReader(conn), n)
	wg.Wait()
	if err != nil {
		t.Fatalf("after %d of %d answers: %v", len(codes), n, err)
	}
	out := map[int]int{}
	for _, c := range codes {
		out[c]++
	}
	return out
}

// Issue 9 item 10: 200 REGISTERs pipelined on one TLS connection, to the
// edge and to the core's Phone OAuth port, with sip_max_inflight 4: every
// one is answered 200, and neither tier ever worked on more than 4 of them
// at once (the tiers' in-flight gauges).
func TestPipelinedRegistersAreBoundedPerConnection(t *testing.T) {
	const limit, total = 4, 200
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		l.Core.SIPMaxInFlight, l.Edge.SIPMaxInFlight = limit, limit
	}})
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(context.Background(), env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []struct {
		name, addr string
		peak       func() int
	}{
		{"edge", env.Info.EdgeSIP, func() int { return env.Edge.SIP().InFlight().Peak() }},
		{"core phone-oauth", env.Info.CorePhoneOAuth, func() int { return env.Core.PhoneInFlight().Peak() }},
	} {
		conn := tlsFrom(t, env, "127.0.0.1", target.addr)
		got := pipeline(t, conn, tok.AccessToken, total)
		if got[200] != total {
			t.Errorf("%s: answers %v, want %d × 200", target.name, got, total)
		}
		if p := target.peak(); p < 1 || p > limit {
			t.Errorf("%s: %d requests of one connection in handlers at once, limit %d", target.name, p, limit)
		}
		conn.Close()
	}
}

// Issue 9 item 11: a flood of half-open and silent connections from a few
// addresses fills its per-source caps, connections over a cap are closed
// at once, TLS connections that never register are closed after
// sip_unregistered_timeout, and meanwhile a legitimate phone from another
// address completes TLS and registers (200), on the edge and on the core's
// Phone OAuth port. A flood that fills the Phone OAuth listener's own cap
// leaves the MRA port's slots alone: a phone still registers through the
// edge.
func TestConnectionFloodLeavesRoomForPhones(t *testing.T) {
	const perSource, unregistered = 30, 2 * time.Second
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		// A long handshake timeout: half-open connections are held for
		// the whole test, so a prompt close can only be a cap.
		l.Edge.HandshakeTimeout, l.Core.HandshakeTimeout = time.Minute, time.Minute
		l.Edge.MaxConns, l.Edge.MaxConnsPerSource = 120, perSource
		l.Core.PhoneMaxConns, l.Core.MaxConnsPerSource = 120, perSource
		l.Edge.SIPUnregisteredTimeout, l.Core.SIPUnregisteredTimeout = unregistered, unregistered
	}})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	targets := []struct{ name, addr string }{{"edge", env.Info.EdgeSIP}, {"core phone-oauth", env.Info.CorePhoneOAuth}}
	flooders := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	for _, tg := range targets {
		// Each flooding address: its whole per-source cap in half-open TCP
		// connections (never a ClientHello) ...
		for _, ip := range flooders {
			for range perSource {
				dialFrom(t, ip, tg.addr)
			}
		}
		// ... and one more, closed at once.
		if over := dialFrom(t, flooders[0], tg.addr); !closedWithin(over, 5*time.Second) {
			t.Fatalf("%s: a connection over the per-source cap was held", tg.name)
		}
	}
	// TLS clients that complete the handshake and say nothing.
	var silent []net.Conn
	for _, tg := range targets {
		for range 5 {
			silent = append(silent, tlsFrom(t, env, "127.0.0.5", tg.addr))
		}
	}
	// Legitimate phones from another address register on both ports while
	// 90 half-open connections sit on each.
	var legit []*tls.Conn
	for i, tg := range targets {
		c := tlsFrom(t, env, "127.0.0.1", tg.addr)
		if _, err := io.WriteString(c, registerText(tok.AccessToken, 1000+i)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		codes, err := finalCodes(bufio.NewReader(c), 1)
		if err != nil || codes[0] != 200 {
			t.Fatalf("%s: legitimate REGISTER during the flood: %v %v", tg.name, codes, err)
		}
		legit = append(legit, c)
	}
	// Silent TLS connections are dropped after sip_unregistered_timeout;
	// the registered ones, older than that by now, are not.
	for i, c := range silent {
		if !closedWithin(c, 20*time.Second) {
			t.Fatalf("silent TLS connection %d was not closed", i)
		}
	}
	for i, c := range legit {
		_, _ = io.WriteString(c, registerText(tok.AccessToken, 2000+i))
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if codes, err := finalCodes(bufio.NewReader(c), 1); err != nil || codes[0] != 200 {
			t.Fatalf("%s: a registered connection was closed by the pre-REGISTER timeout: %v %v", targets[i].name, codes, err)
		}
	}

	// Fill the core's Phone OAuth listener to its cap (120: 90 held, 30
	// more from a fourth address): a fifth address is refused there at
	// once, yet the MRA port, with its own cap, admits a new edge
	// connection and answers it, and a phone registers through the edge.
	for range perSource {
		dialFrom(t, "127.0.0.6", env.Info.CorePhoneOAuth)
	}
	if c := dialFrom(t, "127.0.0.7", env.Info.CorePhoneOAuth); !closedWithin(c, 5*time.Second) {
		t.Fatal("a connection over the Phone OAuth listener's cap was held")
	}
	edgeCert, err := tls.LoadX509KeyPair(env.Layout.PKI.EdgeMTLSCert, env.Layout.PKI.EdgeMTLSKey)
	if err != nil {
		t.Fatal(err)
	}
	mra := tls.Client(dialFrom(t, "127.0.0.7", env.Info.CoreMRA), &tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{edgeCert}})
	_ = mra.SetDeadline(time.Now().Add(20 * time.Second))
	if err := mra.Handshake(); err != nil {
		t.Fatalf("a new edge connection to the MRA port while 5090 is full: %v", err)
	}
	ping := "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.7:5999;branch=z9hG4bKmraping\r\nMax-Forwards: 70\r\n" +
		"From: <sip:edge@edgeway.test>;tag=m\r\nTo: <sip:127.0.0.1>\r\nCall-ID: mra-ping\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(mra, ping); err != nil {
		t.Fatal(err)
	}
	if codes, err := finalCodes(bufio.NewReader(mra), 1); err != nil || codes[0] != 200 {
		t.Fatalf("OPTIONS on the MRA port while 5090 is full: %v %v", codes, err)
	}
	phB := env.Phone(phoneB, true)
	if _, err := phB.Onboard(ctx, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatalf("onboarding through the edge while 5090 is full: %v", err)
	}
	if res, err := phB.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("registering through the edge (core MRA port) while 5090 is full: %v %v", res, err)
	}
}
