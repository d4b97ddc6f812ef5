package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/testenv"
)

// tierCounters reads one tier's guard counters.
type tierCounters struct {
	refused, dropped, panics func() uint64
}

// edgeCounters reads the edge's; its SIP front exists once Serve set it
// up, which a first answer on the edge's SIP port proves.
func edgeCounters(env *testenv.Env) tierCounters {
	read := func(c func(*edge.SIPFront) uint64) func() uint64 {
		return func() uint64 {
			if f := env.Edge.SIP(); f != nil {
				return c(f)
			}
			return 0
		}
	}
	return tierCounters{read((*edge.SIPFront).Refused), read((*edge.SIPFront).Dropped), read((*edge.SIPFront).Panics)}
}

func coreCounters(env *testenv.Env) tierCounters {
	return tierCounters{env.Core.SIPRefused, env.Core.SIPDropped, env.Core.SIPPanics}
}

func waitCounter(t *testing.T, what string, c func() uint64, n uint64) {
	t.Helper()
	waitCount(t, what, func() int { return int(c()) }, int(n))
}

// wireMethods are the methods of the table; inDialog ones carry a To tag.
var wireMethods = []struct {
	method   string
	inDialog bool
}{
	{"REGISTER", false}, {"INVITE", false}, {"INVITE", true}, {"ACK", true}, {"BYE", true},
	{"CANCEL", false}, {"UPDATE", true}, {"INFO", true}, {"OPTIONS", false}, {"FROBNICATE", false},
}

// headerCase is one way a request's mandatory header can be wrong, and
// the answer that names it. sipgo's transaction layer cannot form a
// transaction without a readable Via and CSeq, so it answers those itself
// with a bare "400 Bad Request" (even to an ACK) before any Edgeway code
// runs: byStack marks them.
type headerCase struct {
	name    string
	set     map[string][]string
	length  []string
	body    string
	reason  string // the reason phrase of the 400
	byStack bool
}

func headerCases(method string) []headerCase {
	return []headerCase{
		{name: "missing Via", set: map[string][]string{"Via": nil}, reason: "Bad Request", byStack: true},
		{name: "malformed Via", set: map[string][]string{"Via": {"garbage"}}, reason: "Bad Request", byStack: true},
		{name: "missing From", set: map[string][]string{"From": nil}, reason: "Missing From"},
		{name: "duplicate From", set: map[string][]string{"From": {"<sip:1001@edgeway.test>;tag=a", "<sip:1002@edgeway.test>;tag=b"}}, reason: "Duplicate From"},
		{name: "malformed From", set: map[string][]string{"From": {"<sip:1001@edgeway.test"}}, reason: "Bad From"},
		{name: "missing To", set: map[string][]string{"To": nil}, reason: "Missing To"},
		{name: "duplicate To", set: map[string][]string{"To": {"<sip:1001@edgeway.test>", "<sip:1002@edgeway.test>"}}, reason: "Duplicate To"},
		{name: "malformed To", set: map[string][]string{"To": {"<>"}}, reason: "Bad To"},
		{name: "missing Call-ID", set: map[string][]string{"Call-ID": nil}, reason: "Missing Call-ID"},
		{name: "duplicate Call-ID", set: map[string][]string{"Call-ID": {"one@test.invalid", "two@test.invalid"}}, reason: "Duplicate Call-ID"},
		{name: "malformed Call-ID", set: map[string][]string{"Call-ID": {""}}, reason: "Bad Call-ID"},
		{name: "missing CSeq", set: map[string][]string{"CSeq": nil}, reason: "Bad Request", byStack: true},
		{name: "duplicate CSeq", set: map[string][]string{"CSeq": {"1 " + method, "2 " + method}}, reason: "Duplicate CSeq"},
		{name: "malformed CSeq", set: map[string][]string{"CSeq": {"one " + method}}, reason: "Bad Request", byStack: true},
		{name: "CSeq method mismatch", set: map[string][]string{"CSeq": {"1 MESSAGE"}}, reason: "Bad CSeq: method does not match request line"},
		{name: "missing Max-Forwards", set: map[string][]string{"Max-Forwards": nil}, reason: "Missing Max-Forwards"},
		{name: "duplicate Max-Forwards", set: map[string][]string{"Max-Forwards": {"70", "70"}}, reason: "Duplicate Max-Forwards"},
		{name: "malformed Max-Forwards", set: map[string][]string{"Max-Forwards": {"seventy"}}, reason: "Bad Max-Forwards"},
		{name: "duplicate Content-Length", length: []string{"4", "4"}, body: "abcd", reason: "Duplicate Content-Length"},
	}
}

// Issue 9 (RFC 3261 §8.2, §16.3): every method with each mandatory
// header missing, duplicated or malformed, sent over real TLS to the
// edge's SIP port and to the core's Phone OAuth port, is refused by the
// first tier that parses it with a 400 naming the header (an ACK is
// dropped and counted), nothing is forwarded or stored, no handler
// panics, and the same processes then register phones as before.
func TestMandatoryHeadersRefusedAtFirstTier(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	type target struct {
		name        string
		addr        string
		mine, other tierCounters
	}
	targets := []target{
		{"edge", env.Info.EdgeSIP, edgeCounters(env), coreCounters(env)},
		{"core 5090", env.Info.CorePhoneOAuth, coreCounters(env), edgeCounters(env)},
	}
	for _, tg := range targets {
		w := dialSIPWire(t, env, tg.addr)
		for _, m := range wireMethods {
			for _, hc := range headerCases(m.method) {
				label := fmt.Sprintf("%s: %s (dialog %v) %s", tg.name, m.method, m.inDialog, hc.name)
				ruri := "sip:1002@edgeway.test"
				if m.method == "REGISTER" || m.method == "OPTIONS" {
					ruri = "sip:edgeway.test"
				}
				refused, dropped, otherRefused, otherDropped := tg.mine.refused(), tg.mine.dropped(), tg.other.refused(), tg.other.dropped()
				w.send(sipMsg{method: m.method, ruri: ruri, toTag: m.inDialog, set: hc.set, length: hc.length, body: hc.body,
					extra: []string{"Contact: <sip:1001@test.invalid;transport=tls>"}}.build())
				if m.method == "ACK" && !hc.byStack {
					// No answer to an ACK (RFC 3261 §17): dropped and counted;
					// the ping behind it is the next thing answered.
					waitCounter(t, label+": dropped", tg.mine.dropped, dropped+1)
					if res := w.ping(); res == nil || res.StatusCode != 200 || !strings.EqualFold(res.CSeq().MethodName.String(), "OPTIONS") {
						t.Fatalf("%s: after the ACK, got %v, want the ping's 200", label, res)
					}
				} else {
					res := w.next()
					if res == nil {
						t.Fatalf("%s: no answer", label)
					}
					if res.StatusCode != 400 || res.Reason != hc.reason {
						t.Fatalf("%s: answered %d %q, want 400 %q", label, res.StatusCode, res.Reason, hc.reason)
					}
					want := refused
					if !hc.byStack {
						want++
					}
					if got := tg.mine.refused(); got != want {
						t.Fatalf("%s: %s refused counter %d, want %d", label, tg.name, got, want)
					}
				}
				if tg.other.refused() != otherRefused || tg.other.dropped() != otherDropped {
					t.Fatalf("%s: the request reached the other tier", label)
				}
			}
		}
	}
	if n := len(env.Registrations(t)); n != 0 {
		t.Fatalf("bindings stored by refused requests: %d", n)
	}
	if env.Core.Calls() != 0 || env.Edge.SIP().Dialogs() != 0 || env.Edge.SIP().Flows() != 0 {
		t.Fatalf("state from refused requests: calls %d, edge legs %d, edge flows %d", env.Core.Calls(), env.Edge.SIP().Dialogs(), env.Edge.SIP().Flows())
	}
	// The same processes serve phones as before: one through the edge,
	// one on 5090.
	registered(t, env, phoneA, true)
	registered(t, env, phoneB, false)
	if n := len(env.Registrations(t)); n != 2 {
		t.Fatalf("bindings = %d, want 2", n)
	}
	for _, tg := range targets {
		if n := tg.mine.panics(); n != 0 {
			t.Errorf("%s recovered %d handler panics: validation must stop these requests first", tg.name, n)
		}
	}
	t.Logf("edge refused %d dropped %d; core refused %d dropped %d", env.Edge.SIP().Refused(), env.Edge.SIP().Dropped(), env.Core.SIPRefused(), env.Core.SIPDropped())
}

// Issue 9 item 1: an ACK without Call-ID, to the edge (which used to
// forward it) and to the core's 5090, used to panic the core and stop
// every tier. It is dropped and counted by the tier that reads it.
func TestAckWithoutCallIDDropped(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	for _, tg := range []struct {
		name string
		addr string
		c    tierCounters
	}{{"edge", env.Info.EdgeSIP, edgeCounters(env)}, {"core 5090", env.Info.CorePhoneOAuth, coreCounters(env)}} {
		w := dialSIPWire(t, env, tg.addr)
		before := tg.c.dropped()
		w.send(sipMsg{method: "ACK", ruri: "sip:1002@edgeway.test", toTag: true, set: map[string][]string{"Call-ID": nil}}.build())
		waitCounter(t, tg.name+" dropped", tg.c.dropped, before+1)
		if res := w.ping(); res == nil || res.StatusCode != 200 {
			t.Fatalf("%s: after the ACK, ping answered %v", tg.name, res)
		}
	}
	if env.Core.SIPDropped() != 1 {
		t.Fatalf("core dropped %d ACKs, want only the one sent to it (the edge must not forward its)", env.Core.SIPDropped())
	}
	registered(t, env, phoneA, true)
	registered(t, env, phoneB, false)
	if env.Core.SIPPanics() != 0 || env.Edge.SIP().Panics() != 0 {
		t.Fatal("a handler panicked")
	}
}

// Issue 9 item 2: a re-INVITE (To tag) without Call-ID or token through
// the edge used to reach the core, whose 481 made the edge's client
// transaction send an ACK without Call-ID that panicked the core. The
// edge refuses it itself.
func TestReInviteWithoutCallIDRefusedAtEdge(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	w := dialSIPWire(t, env, env.Info.EdgeSIP)
	w.send(sipMsg{method: "INVITE", ruri: "sip:1002@edgeway.test", toTag: true, set: map[string][]string{"Call-ID": nil},
		extra: []string{"Contact: <sip:1001@test.invalid;transport=tls>"}}.build())
	if res := w.next(); res == nil || res.StatusCode != 400 || res.Reason != "Missing Call-ID" {
		t.Fatalf("re-INVITE without Call-ID: %v, want 400 Missing Call-ID", res)
	}
	if env.Core.SIPRefused() != 0 || env.Core.SIPDropped() != 0 {
		t.Fatal("the re-INVITE reached the core")
	}
	registered(t, env, phoneA, true)
}

// Issue 9 item 3: an INVITE without Call-ID that carries a valid token,
// to a registered callee, used to panic the core in call setup. Refused
// by the first tier: the edge for an MRA phone, the core on 5090.
func TestInviteWithoutCallIDRefused(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	a := registered(t, env, phoneA, true)  // line 1001, through the edge
	b := registered(t, env, phoneB, false) // line 1002, on 5090
	for _, tc := range []struct {
		name, addr, from, to, token string
		c                           tierCounters
	}{
		{"edge", env.Info.EdgeSIP, "1001", "1002", a.Tokens().AccessToken, edgeCounters(env)},
		{"core 5090", env.Info.CorePhoneOAuth, "1002", "1001", b.Tokens().AccessToken, coreCounters(env)},
	} {
		w := dialSIPWire(t, env, tc.addr)
		before := tc.c.refused()
		msg := sipMsg{method: "INVITE", ruri: "sip:" + tc.to + "@edgeway.test", from: tc.from, set: map[string][]string{"Call-ID": nil},
			extra: []string{"Authorization: Bearer " + tc.token, "Contact: <sip:" + tc.from + "@test.invalid;transport=tls>", "Content-Type: application/sdp"},
			body:  string(testSDP)}
		w.send(msg.build())
		if res := w.next(); res == nil || res.StatusCode != 400 || res.Reason != "Missing Call-ID" {
			t.Fatalf("%s: INVITE without Call-ID: %v, want 400 Missing Call-ID", tc.name, res)
		}
		if tc.c.refused() != before+1 {
			t.Fatalf("%s: refusal not counted", tc.name)
		}
		// Control: the same INVITE with a Call-ID is admitted (the token
		// and callee are good) and reaches the callee.
		msg.set = nil
		w.send(msg.build())
		res := w.next()
		if res == nil || res.StatusCode == 400 || res.StatusCode == 401 || res.StatusCode == 403 || res.StatusCode == 404 {
			t.Fatalf("%s: the same INVITE with a Call-ID: %v", tc.name, res)
		}
	}
	if env.Core.SIPPanics() != 0 || env.Edge.SIP().Panics() != 0 {
		t.Fatal("a handler panicked")
	}
	if res, err := a.Register(context.Background(), 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register after: %v %v", res, err)
	}
}

// Issue 9 item 4: a REGISTER without Call-ID used to get 200 and be
// stored. It is refused, through the edge and on 5090, and stores nothing.
func TestRegisterWithoutCallIDNotStored(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	a := env.Phone(phoneA, true)
	if _, err := a.Onboard(ctx, env.Devices[phoneA].ActivationCode); err != nil {
		t.Fatal(err)
	}
	b := env.Phone(phoneB, false)
	if _, err := b.Onboard(ctx, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, addr, line, token string
	}{
		{"edge", env.Info.EdgeSIP, "1001", a.Tokens().AccessToken},
		{"core 5090", env.Info.CorePhoneOAuth, "1002", b.Tokens().AccessToken},
	} {
		w := dialSIPWire(t, env, tc.addr)
		w.send(sipMsg{method: "REGISTER", ruri: "sip:edgeway.test", from: tc.line, set: map[string][]string{"Call-ID": nil},
			extra: []string{"Authorization: Bearer " + tc.token, "Contact: <sip:" + tc.line + "@test.invalid;transport=tls>", "Expires: 600"}}.build())
		if res := w.next(); res == nil || res.StatusCode != 400 || res.Reason != "Missing Call-ID" {
			t.Fatalf("%s: REGISTER without Call-ID: %v, want 400 Missing Call-ID", tc.name, res)
		}
	}
	if n := len(env.Registrations(t)); n != 0 {
		t.Fatalf("REGISTER without Call-ID stored %d bindings", n)
	}
	for _, ph := range []interface {
		Register(context.Context, int) (*sip.Response, error)
	}{a, b} {
		if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
			t.Fatalf("legitimate REGISTER after: %v %v", res, err)
		}
	}
	if n := len(env.Registrations(t)); n != 2 {
		t.Fatalf("bindings = %d, want 2", n)
	}
}

// sipgo matches a CANCEL, and an ACK for a non-2xx, to the INVITE's
// server transaction by Via branch and sent-by before any Edgeway code
// runs (RFC 3261 §17.2.3, §9.2): the guard never sees them. Without a
// Call-ID they must still crash nothing: sipgo answers the CANCEL 200
// and the INVITE 487 itself, the edge cancels downstream from the valid
// INVITE it forwarded, the ACK is absorbed by the transaction, and no
// call is left behind.
func TestCancelAndAckWithoutCallIDMatchedByTransaction(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	a, ringing := ringingCallee(t, env)

	w := dialSIPWire(t, env, env.Info.EdgeSIP)
	via := "SIP/2.0/TLS test.invalid;branch=z9hG4bK-txpath-1;rport"
	from := "<sip:1001@edgeway.test>;tag=txpath"
	w.send(sipMsg{method: "INVITE", ruri: "sip:1002@edgeway.test", callID: "txpath@test.invalid",
		set:   map[string][]string{"Via": {via}, "From": {from}, "CSeq": {"7 INVITE"}},
		extra: []string{"Authorization: Bearer " + a.Tokens().AccessToken, "Contact: <sip:1001@test.invalid;transport=tls>", "Content-Type: application/sdp"},
		body:  string(testSDP)}.build())
	select {
	case <-ringing:
	case <-time.After(10 * time.Second):
		t.Fatal("the INVITE never reached the callee")
	}
	waitCalls(t, env, 1)

	w.send(sipMsg{method: "CANCEL", ruri: "sip:1002@edgeway.test",
		set: map[string][]string{"Via": {via}, "From": {from}, "CSeq": {"7 CANCEL"}, "Call-ID": nil}}.build())
	got := map[string]int{}
	for range 2 {
		res := w.next()
		if res == nil {
			t.Fatalf("answers so far %v: want the CANCEL's and the INVITE's", got)
		}
		got[string(res.CSeq().MethodName)] = res.StatusCode
	}
	if got["CANCEL"] != 200 || got["INVITE"] != 487 {
		t.Fatalf("answers %v, want CANCEL 200 and INVITE 487", got)
	}
	w.send(sipMsg{method: "ACK", ruri: "sip:1002@edgeway.test", toTag: true,
		set: map[string][]string{"Via": {via}, "From": {from}, "CSeq": {"7 ACK"}, "Call-ID": nil}}.build())
	if res := w.ping(); res == nil || res.StatusCode != 200 {
		t.Fatalf("after the ACK, ping answered %v", res)
	}
	waitCalls(t, env, 0)
	waitEdgeDialogs(t, env, 0)
	if env.Core.SIPPanics() != 0 || env.Edge.SIP().Panics() != 0 {
		t.Fatal("a handler panicked")
	}
	if res, err := a.Register(context.Background(), 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register after: %v %v", res, err)
	}
}

// A response that fails validation on its way back is dropped and
// counted by the tier that reads it, never relayed (RFC 3261 §16.7): a
// callee phone that answers an INVITE with a 200 without Call-ID does not
// get it to the caller; the caller hears 502 Bad Gateway, and no call is
// left behind.
func TestBadResponseFromPhoneDropped(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	w, inv, done := callRawCallee(t, env)
	bad := sip.NewResponseFromRequest(inv, 200, "OK", nil)
	bad.RemoveHeader("Call-ID")
	if bad.ContentLength() == nil {
		bad.AppendHeader(func() sip.Header { h := sip.ContentLengthHeader(0); return &h }())
	}
	dropped := env.Edge.SIP().Dropped()
	w.send(bad.String())
	select {
	case d := <-done:
		if !errors.Is(d.err, bench.ErrCallRefused) || d.call == nil || d.call.Status != 502 {
			t.Fatalf("caller's Dial: %v, want refused with 502 Bad Gateway", d.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the caller never got an answer")
	}
	if n := env.Edge.SIP().Dropped(); n != dropped+1 {
		t.Fatalf("edge dropped %d responses, want %d", n, dropped+1)
	}
	waitCalls(t, env, 0)
	if env.Core.SIPPanics() != 0 || env.Edge.SIP().Panics() != 0 {
		t.Fatal("a handler panicked")
	}
}

// Found by FuzzEdgeSIPMessage: sipgo reads "Route: <::0A>" but writes it
// as "<sip::0A>", which it cannot read. Before, the edge forwarded such a
// request, the core's parser failed on it and sipgo closed the edge's
// shared MRA connection (the phone got 408). The edge now refuses it with
// a 400 naming the header, and the core never sees it.
func TestUnforwardableHeaderRefusedAtEdge(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	w := dialSIPWire(t, env, env.Info.EdgeSIP)
	w.send(sipMsg{method: "INFO", ruri: "sip:1002@edgeway.test", toTag: true, extra: []string{"Route: <::0A>"}}.build())
	if res := w.next(); res == nil || res.StatusCode != 400 || res.Reason != "Bad Route: does not survive forwarding" {
		t.Fatalf("INFO with an unforwardable Route: %v", res)
	}
	if env.Core.SIPRefused() != 0 {
		t.Fatal("the request reached the core")
	}
	registered(t, env, phoneA, true)
}
