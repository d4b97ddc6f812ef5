package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/testenv"
)

// sipWire is a raw SIP/TLS connection that writes hand-built messages
// byte for byte (nothing a SIP stack would fix up) and reads what comes
// back with the tiers' own parser.
type sipWire struct {
	t    *testing.T
	conn *tls.Conn
	msgs chan sip.Message
}

func dialSIPWire(t *testing.T, env *testenv.Env, addr string) *sipWire {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	w := &sipWire{t: t, conn: c, msgs: make(chan sip.Message, 64)}
	done := make(chan struct{})
	go func() { // owned: ends when the connection closes at cleanup
		defer close(done)
		ps := sipx.NewParser().NewSIPStream()
		buf := make([]byte, 8192)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if strings.Trim(string(buf[:n]), "\r\n") == "" {
				continue // keep-alive pong
			}
			if err := ps.ParseSIPStream(buf[:n], func(m sip.Message) { w.msgs <- m }); err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
				return
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return w
}

func (w *sipWire) send(raw string) {
	w.t.Helper()
	_ = w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.conn.Write([]byte(raw)); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// next waits for the next response on the connection, skipping any
// request (a phone's connection may be sent one); nil after 10s.
func (w *sipWire) next() *sip.Response {
	w.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-w.msgs:
			if res, ok := m.(*sip.Response); ok {
				if res.StatusCode == 100 {
					continue
				}
				return res
			}
		case <-timeout:
			return nil
		}
	}
}

// nextRequest waits for the next request on the connection (sent down a
// phone's flow), skipping responses; nil after 10s.
func (w *sipWire) nextRequest() *sip.Request {
	w.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-w.msgs:
			if req, ok := m.(*sip.Request); ok {
				return req
			}
		case <-timeout:
			return nil
		}
	}
}

// ping sends an OPTIONS both tiers answer themselves and returns its
// answer: what follows an ACK on the connection shows that the ACK got
// none.
func (w *sipWire) ping() *sip.Response {
	w.t.Helper()
	w.send(sipMsg{method: "OPTIONS", ruri: "sip:edgeway.test"}.build())
	return w.next()
}

var wireSeq atomic.Int64

// sipMsg builds a request from the mandatory headers; set maps a header
// name to its lines: nil removes it, two values duplicate it.
type sipMsg struct {
	method string
	ruri   string
	from   string // user part; default 1001
	to     string // user part; default: ruri's
	toTag  bool
	callID string
	extra  []string
	set    map[string][]string
	body   string
	length []string // Content-Length values; default the body's
}

func (m sipMsg) build() string {
	n := wireSeq.Add(1)
	from, to := m.from, m.to
	if from == "" {
		from = "1001"
	}
	if to == "" {
		to = strings.TrimSuffix(strings.TrimPrefix(m.ruri, "sip:"), "@edgeway.test")
		if strings.HasPrefix(to, "edgeway.test") {
			to = from
		}
	}
	toVal := fmt.Sprintf("<sip:%s@edgeway.test>", to)
	if m.toTag {
		toVal += ";tag=callee-" + fmt.Sprint(n)
	}
	callID := m.callID
	if callID == "" {
		callID = fmt.Sprintf("wire-%d@test.invalid", n)
	}
	cseqMethod := m.method
	hdrs := []struct{ name, value string }{
		{"Via", fmt.Sprintf("SIP/2.0/TLS test.invalid;branch=z9hG4bK-wire-%d;rport", n)},
		{"Max-Forwards", "70"},
		{"From", fmt.Sprintf("<sip:%s@edgeway.test>;tag=wire-%d", from, n)},
		{"To", toVal},
		{"Call-ID", callID},
		{"CSeq", fmt.Sprintf("%d %s", n, cseqMethod)},
	}
	var lines []string
	lines = append(lines, fmt.Sprintf("%s %s SIP/2.0", m.method, m.ruri))
	for _, h := range hdrs {
		vals, ok := m.set[h.name]
		if !ok {
			vals = []string{h.value}
		}
		for _, v := range vals {
			lines = append(lines, h.name+": "+v)
		}
	}
	lines = append(lines, m.extra...)
	length := m.length
	if length == nil {
		length = []string{fmt.Sprint(len(m.body))}
	}
	for _, l := range length {
		lines = append(lines, "Content-Length: "+l)
	}
	return strings.Join(lines, "\r\n") + "\r\n\r\n" + m.body
}

// dialed is the outcome of a call placed in the background.
type dialed struct {
	call *bench.Call
	err  error
}

// callRawCallee registers phone B as a raw connection through the edge,
// has phone A call it in the background, and returns B's connection once
// the INVITE reached it, with the INVITE and the outcome of A's Dial.
func callRawCallee(t *testing.T, env *testenv.Env) (*sipWire, *sip.Request, <-chan dialed) {
	t.Helper()
	ctx := context.Background()
	a := registered(t, env, phoneA, true)
	b := env.Phone(phoneB, true) // onboarded for its token; a raw connection registers as it
	if _, err := b.Onboard(ctx, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatal(err)
	}
	w := dialSIPWire(t, env, env.Info.EdgeSIP)
	w.send(sipMsg{method: "REGISTER", ruri: "sip:edgeway.test", from: "1002",
		extra: []string{"Authorization: Bearer " + b.Tokens().AccessToken, "Contact: <sip:1002@test.invalid;transport=tls>", "Expires: 600"}}.build())
	if res := w.next(); res == nil || res.StatusCode != 200 {
		t.Fatalf("raw phone REGISTER: %v", res)
	}
	done := make(chan dialed, 1)
	go func() {
		c, err := a.Dial(ctx, "1002", testSDP)
		done <- dialed{c, err}
	}()
	inv := w.nextRequest()
	if inv == nil || !inv.IsInvite() {
		t.Fatalf("raw phone got %v, want the INVITE", inv)
	}
	return w, inv, done
}
