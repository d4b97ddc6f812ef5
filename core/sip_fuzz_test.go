package core_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/sipx/sipxtest"
	"github.com/edgeway/edgeway/internal/store"
)

// fuzzToken in an input is replaced by a valid access token of device
// SEP001122334401 (line 1001), so inputs reach the registrar and call
// set-up past the token check.
const fuzzToken = "@TOKEN@"

type fuzzCore struct {
	srv *core.Server
	sip *core.SIPHarness
	st  store.Store
	tok string
	now time.Time
}

// newFuzzCore builds a provisioned core node on a fresh SQLite store with
// a fixed clock, and its SIP handlers without listeners.
func newFuzzCore(t testing.TB) *fuzzCore {
	t.Helper()
	ctx := context.Background()
	lay, err := quickstart.Prepare(t.TempDir(), quickstart.DefaultAddrs())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(lay.Dir, "fuzz.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	srv, err := core.New(ctx, lay.Core, st, slog.New(slog.DiscardHandler), core.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	// What quickstart.Provision sets up for phones, without its demo
	// user: hashing that password takes seconds in a coverage-instrumented
	// fuzz worker.
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.PutSecurityProfile(ctx, store.SecurityProfile{Name: quickstart.ProfileName, Mode: "encrypted", Transport: "TLS", OAuth: true}))
	for k, v := range map[string]string{core.ParamRefreshLoginFlow: "enabled", core.ParamAccessTokenForDevices: "implicit",
		core.ParamExportControlled: "true", core.ParamClusterSIPOAuthMode: "enabled"} {
		must(st.SetParam(ctx, k, v))
	}
	for _, d := range []store.Device{
		{Name: "SEP001122334401", Model: "8845", Line: "1001", SecurityProfile: quickstart.ProfileName, AllowMRA: true, MRAServiceDomain: quickstart.Domain},
		{Name: "SEP001122334402", Model: "8865", Line: "1002", SecurityProfile: quickstart.ProfileName, AllowMRA: true, MRAServiceDomain: quickstart.Domain},
	} {
		must(st.PutDevice(ctx, d))
	}
	h, err := core.NewSIPHarness(srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	tok, err := h.AccessToken("SEP001122334401")
	if err != nil {
		t.Fatal(err)
	}
	return &fuzzCore{srv: srv, sip: h, st: st, tok: tok, now: now}
}

func (c *fuzzCore) bindings(t *testing.T) int {
	regs, err := c.st.Registrations(context.Background(), "", c.now)
	if err != nil {
		t.Fatal(err)
	}
	return len(regs)
}

// checkCoreRequest runs one input through the core's SIP handlers and
// checks what must hold whatever it holds: no handler panics; a request
// that fails validation is answered only by a 400 naming the header (an
// ACK: nothing), stores nothing and routes nothing; one that passes gets
// exactly one final answer, a valid response, and never a 503 (which here
// would mean the store choked on the input).
func checkCoreRequest(t *testing.T, c *fuzzCore, data []byte, mra bool) {
	data = []byte(strings.ReplaceAll(string(data), fuzzToken, c.tok))
	ps := sipx.NewParser().NewSIPStream()
	defer ps.Close()
	var msgs []sip.Message
	_ = ps.ParseSIPStream(data, func(m sip.Message) { msgs = append(msgs, m) })
	for _, m := range msgs {
		req, ok := m.(*sip.Request)
		if !ok {
			continue
		}
		req.SetTransport("TLS")
		req.SetSource("192.0.2.10:50123")
		verr := sipx.ValidateRequest(req)
		refused, dropped := c.srv.SIPRefused(), c.srv.SIPDropped()
		before := -1
		if req.Method == sip.REGISTER {
			before = c.bindings(t)
		}
		rec := sipxtest.NewRecorder()
		c.sip.Handle(req, rec, mra)
		if c.srv.SIPPanics() != 0 {
			t.Fatalf("core handler panicked on:\n%s", req)
		}
		finals := rec.Finals()
		if verr != nil {
			var he *sipx.HeaderError
			if !errors.As(verr, &he) {
				t.Fatalf("ValidateRequest returned %T", verr)
			}
			switch {
			case req.IsAck() && (len(rec.Responses()) != 0 || c.srv.SIPDropped() != dropped+1):
				t.Fatalf("invalid ACK answered %v", rec.Responses())
			case !req.IsAck() && (len(rec.Responses()) != 1 || finals[0].StatusCode != 400 || finals[0].Reason != he.Reason() || c.srv.SIPRefused() != refused+1):
				t.Fatalf("invalid request (%v) answered %v", verr, rec.Responses())
			}
			if before >= 0 && c.bindings(t) != before {
				t.Fatalf("invalid REGISTER (%v) changed the bindings", verr)
			}
			if c.srv.Calls() != 0 {
				t.Fatal("invalid request opened a call")
			}
			continue
		}
		if req.IsAck() {
			if len(rec.Responses()) != 0 {
				t.Fatalf("ACK answered %v", rec.Responses())
			}
			continue
		}
		if len(finals) != 1 {
			t.Fatalf("valid request got %d final answers %v:\n%s", len(finals), rec.Responses(), req)
		}
		res := finals[0]
		if err := sipx.ValidateResponse(res); err != nil {
			t.Fatalf("the core's answer %d is not a valid response: %v", res.StatusCode, err)
		}
		if res.StatusCode == 503 {
			t.Fatalf("503 on a valid request (store error?):\n%s", req)
		}
	}
}

var coreSeeds = []struct {
	msg string
	mra bool
}{
	{"REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=a1\r\nTo: <sip:1001@edgeway.test>\r\nCall-ID: reg-1@192.0.2.10\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@192.0.2.10:50123;transport=tls>;expires=600\r\nAuthorization: Bearer " + fuzzToken + "\r\nExpires: 600\r\nSupported: path\r\nContent-Length: 0\r\n\r\n", false},
	{"REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-2\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=a1\r\nTo: <sip:1001@edgeway.test>\r\nCSeq: 2 REGISTER\r\nContact: <sip:1001@192.0.2.10:50123;transport=tls>\r\nAuthorization: Bearer " + fuzzToken + "\r\nContent-Length: 0\r\n\r\n", false},
	{"REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-3\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=a1\r\nTo: <sip:1001@edgeway.test>\r\nCall-ID: reg-1@192.0.2.10\r\nCSeq: 3 REGISTER\r\nContact: *\r\nExpires: 0\r\nAuthorization: Bearer " + fuzzToken + "\r\nContent-Length: 0\r\n\r\n", false},
	{"REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-4\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=a1\r\nTo: <sip:1001@edgeway.test>\r\nCall-ID: reg-2@192.0.2.10\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@192.0.2.10:50123;transport=tls>\r\nPath: <sip:flow@expe-1.example.com:5061;lr;ob>\r\nAuthorization: Bearer " + fuzzToken + "\r\nExpires: 60\r\nContent-Length: 0\r\n\r\n", true},
	{"INVITE sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-5\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@192.0.2.10:50123;transport=tls>\r\nAuthorization: Bearer " + fuzzToken + "\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=-\r\n", false},
	{"INVITE sip:1001@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-6\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c2\r\nTo: <sip:1001@edgeway.test>\r\nCSeq: 1 INVITE\r\nAuthorization: Bearer " + fuzzToken + "\r\nContent-Length: 0\r\n\r\n", false},
	{"INVITE sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-7\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n", true},
	{"ACK sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-8\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", false},
	{"ACK sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-9\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", true},
	{"BYE sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-a\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n", false},
	{"CANCEL sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-5\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n", false},
	{"OPTIONS sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-b\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=o1\r\nTo: <sip:edgeway.test>\r\nCall-ID: ping-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", false},
	{"INFO sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-c\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCall-ID: call-1@192.0.2.10\r\nCall-ID: call-2@192.0.2.10\r\nCSeq: 4 INFO\r\nContent-Length: 0\r\n\r\n", false},
	{"REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-d\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=a1\r\nTo: <sip:1001@edgeway.test>\r\nCall-ID: reg-3@192.0.2.10\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@192.0.2.10:50123;transport=tls>;expires=-5, <sip:1001@192.0.2.11>\r\nAuthorization: Digest username=\"1001\"\r\nExpires: abc\r\nContent-Length: 0\r\n\r\n", false},
}

// FuzzCoreSIPRequest feeds whole messages, as a phone writes them on 5090
// or the edge on 5091, through sipgo's stream parser, Edgeway's
// validation and the core's registrar and call routing, on a real SQLite
// store (checkCoreRequest).
func FuzzCoreSIPRequest(f *testing.F) {
	for _, s := range coreSeeds {
		f.Add([]byte(s.msg), s.mra)
	}
	c := newFuzzCore(f)
	f.Fuzz(func(t *testing.T, data []byte, mra bool) {
		checkCoreRequest(t, c, data, mra)
	})
}
