package edge

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/sipx/sipxtest"
	"github.com/edgeway/edgeway/internal/token"
)

// tokenPlaceholder in a fuzz input is replaced by an access token that
// verifies, so inputs can reach the edge's decisions past the token
// pre-check (a token in a committed corpus would have expired).
const tokenPlaceholder = "@TOKEN@"

// flowPlaceholder is replaced by a flow token this edge minted for the
// phone source fuzz inputs come from, so the core's requests down a
// phone's flow get past the Route check.
const flowPlaceholder = "@FLOW@"

const (
	fuzzCoreSrc  = "127.0.0.1:5091"
	fuzzPhoneSrc = "203.0.113.7:50123"
)

// fuzzEdge is a SIPFront with no listener: its handlers run on parsed
// messages through the guard and a recording transaction. What it would
// forward goes to a loopback port nobody listens on, so a forward ends in
// a quick 503; what it would send down a phone's flow finds no connection.
type fuzzEdge struct {
	f   *SIPFront
	tok string
}

func newFuzzEdge(t testing.TB) *fuzzEdge {
	t.Helper()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	k, err := token.GenerateKey(now)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewKeySet([]token.Key{k})
	if err != nil {
		t.Fatal(err)
	}
	const iss, aud = "https://core.edgeway.test:8443", "urn:edgeway:sip"
	ver, err := token.NewVerifier(ks, token.VerifierConfig{Issuer: iss, Audience: aud, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ks.Sign(&token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: iss, Audience: jwt.ClaimStrings{aud},
		Subject: "SEP001122334401", ID: "fuzz", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))},
		Grant: token.GrantActivationCode, Origin: token.GrantActivationCode, MRA: true})
	if err != nil {
		t.Fatal(err)
	}
	// A port that was free a moment ago: connections to it are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	log := slog.New(slog.DiscardHandler)
	ua, err := sipx.NewUA("fuzz edge", "expe-1.example.com", time.Second, log, &tls.Config{ServerName: "core.invalid", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{AdvertisedHost: "expe-1.example.com", PublicURL: "https://expe-1.example.com:8443", CoreMRA: closed}
	f, err := newSIPFront(cfg, ua, ver, 5061, []byte("fuzz-flow-key-0123456789abcdef01"), newCoreSet(cfg, nil, log), log)
	if err != nil {
		t.Fatal(err)
	}
	f.setCoreAddrs([]string{fuzzCoreSrc})
	t.Cleanup(f.Close)
	return &fuzzEdge{f: f, tok: tok}
}

// dispatch routes req to the handler sipgo's server would pick, through
// the same guard.
func (e *fuzzEdge) dispatch(req *sip.Request, tx sip.ServerTransaction) {
	f := e.f
	switch req.Method {
	case sip.REGISTER:
		f.guard.Wrap(f.onRegister)(req, tx)
	case sip.ACK:
		f.guard.Wrap(f.onAck)(req, tx)
	case sip.OPTIONS:
		f.guard.Wrap(f.onOptions)(req, tx)
	default:
		f.guard.Wrap(f.onRequest)(req, tx)
	}
}

// parseAll parses data as a TLS connection would, returning every whole
// message; the error is the stream parser's (the connection would close).
func parseAll(data []byte) ([]sip.Message, error) {
	ps := sipx.NewParser().NewSIPStream()
	defer ps.Close()
	var msgs []sip.Message
	err := ps.ParseSIPStream(data, func(m sip.Message) { msgs = append(msgs, m) })
	if errors.Is(err, sip.ErrParseSipPartial) {
		err = nil
	}
	return msgs, err
}

// reparse serialises m and parses it again: what a tier sends is what
// the next one reads.
func reparse(t *testing.T, m sip.Message) sip.Message {
	t.Helper()
	msgs, err := parseAll([]byte(m.String()))
	if err != nil || len(msgs) != 1 {
		t.Fatalf("a message this tier accepted does not parse back (%d messages, %v):\n%s", len(msgs), err, m.String())
	}
	msgs[0].SetTransport("TLS")
	return msgs[0]
}

// checkEdgeMessage runs one input through the edge and checks what must
// hold whatever the input: no handler panics; a request that fails
// validation is answered only by a 400 naming the header (an ACK: no
// answer) and never forwarded; one that passes gets exactly one final
// answer, itself a valid response; and what the edge would forward, and
// what it answers, still validates after a trip over the wire.
func checkEdgeMessage(t *testing.T, e *fuzzEdge, data []byte, fromCore bool) {
	data = []byte(strings.NewReplacer(tokenPlaceholder, e.tok, flowPlaceholder, e.f.flowToken(fuzzPhoneSrc)).Replace(string(data)))
	msgs, _ := parseAll(data)
	src := fuzzPhoneSrc
	if fromCore {
		src = fuzzCoreSrc
	}
	for _, m := range msgs {
		m.SetTransport("TLS")
		m.SetSource(src)
		switch m := m.(type) {
		case *sip.Response:
			if sipx.ValidateResponse(m) == nil {
				if err := sipx.ValidateResponse(reparse(t, m).(*sip.Response)); err != nil {
					t.Fatalf("valid response invalid after a round trip: %v\n%s", err, m)
				}
			}
		case *sip.Request:
			checkEdgeRequest(t, e, m)
		}
	}
}

func checkEdgeRequest(t *testing.T, e *fuzzEdge, req *sip.Request) {
	f := e.f
	verr := sipx.ValidateRequest(req)
	refused, dropped := f.Refused(), f.Dropped()
	rec := sipxtest.NewRecorder()
	e.dispatch(req, rec)
	if n := f.Panics(); n != 0 {
		t.Fatalf("edge handler panicked on:\n%s", req)
	}
	finals := rec.Finals()
	if verr != nil {
		var he *sipx.HeaderError
		if !errors.As(verr, &he) {
			t.Fatalf("ValidateRequest returned %T %v, want *sipx.HeaderError", verr, verr)
		}
		if req.IsAck() {
			if len(rec.Responses()) != 0 || f.Dropped() != dropped+1 {
				t.Fatalf("invalid ACK: %d responses, dropped %d -> %d", len(rec.Responses()), dropped, f.Dropped())
			}
			return
		}
		if len(rec.Responses()) != 1 || finals[0].StatusCode != 400 || finals[0].Reason != he.Reason() || f.Refused() != refused+1 {
			t.Fatalf("invalid request (%v) answered %v, refused %d -> %d", verr, rec.Responses(), refused, f.Refused())
		}
		return
	}
	// A request that passed has every mandatory header exactly once.
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"} {
		if n := len(req.GetHeaders(h)); n == 0 || (h != "Via" && n != 1) {
			t.Fatalf("accepted request has %d %s headers:\n%s", n, h, req)
		}
	}
	if req.CSeq().MethodName != req.Method {
		t.Fatalf("accepted request's CSeq method %q differs from %q", req.CSeq().MethodName, req.Method)
	}
	if f.Refused() != refused || f.Dropped() != dropped {
		t.Fatalf("valid request counted as refused or dropped:\n%s", req)
	}
	if req.IsAck() {
		if len(rec.Responses()) != 0 {
			t.Fatalf("ACK answered: %v", rec.Responses())
		}
	} else {
		if len(finals) != 1 {
			t.Fatalf("valid request got %d final answers %v:\n%s", len(finals), rec.Responses(), req)
		}
		if err := sipx.ValidateResponse(finals[0]); err != nil {
			t.Fatalf("the edge's answer %d is not a valid response: %v", finals[0].StatusCode, err)
		}
		if finals[0].StatusCode == 400 {
			t.Fatalf("valid request refused 400 %q", finals[0].Reason)
		}
	}
	// What the edge forwards must pass the next tier's validation.
	if fwd, err := sipx.PrepareForward(req); err == nil {
		if err := sipx.ValidateRequest(reparse(t, fwd).(*sip.Request)); err != nil {
			t.Fatalf("forwarded copy of a valid request is invalid: %v\n%s", err, fwd)
		}
	}
}

// edgeSeeds are whole messages as phones and the core send them, with
// each of issue 9's crashes.
var edgeSeeds = []struct {
	msg      string
	fromCore bool
}{
	{"REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=a1\r\nTo: <sip:1001@edgeway.test>\r\nCall-ID: reg-1@192.0.2.10\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@192.0.2.10:50123;transport=tls>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\";reg-id=1\r\nAuthorization: Bearer " + tokenPlaceholder + "\r\nExpires: 600\r\nSupported: path, outbound\r\nContent-Length: 0\r\n\r\n", false},
	{"REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-2\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=a1\r\nTo: <sip:1001@edgeway.test>\r\nCSeq: 2 REGISTER\r\nContact: <sip:1001@192.0.2.10:50123;transport=tls>\r\nAuthorization: Bearer " + tokenPlaceholder + "\r\nContent-Length: 0\r\n\r\n", false},
	{"INVITE sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-3\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@192.0.2.10:50123;transport=tls>\r\nAuthorization: Bearer " + tokenPlaceholder + "\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=-\r\n", false},
	{"INVITE sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-4\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n", false},
	{"ACK sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-5\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", false},
	{"ACK sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-6\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n", false},
	{"BYE sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-7\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n", false},
	{"CANCEL sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-3\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n", false},
	{"OPTIONS sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-8\r\nMax-Forwards: 70\r\nFrom: <sip:1001@edgeway.test>;tag=o1\r\nTo: <sip:edgeway.test>\r\nCall-ID: ping-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", false},
	{"INVITE sip:1001@192.0.2.10:50123;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS core.edgeway.test:5091;branch=z9hG4bK-9\r\nVia: SIP/2.0/TLS 192.0.2.20:5061;branch=z9hG4bK-a\r\nRoute: <sip:@FLOW@@expe-1.example.com:5061;transport=tls;lr;ob>\r\nRecord-Route: <sip:core.edgeway.test:5091;transport=tls;lr>\r\nMax-Forwards: 69\r\nFrom: <sip:1002@edgeway.test>;tag=e1\r\nTo: <sip:1001@edgeway.test>\r\nCall-ID: call-2@192.0.2.20\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", true},
	{"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-3\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", true},
	{"SIP/2.0 481 Call/Transaction Does Not Exist\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-4\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n", true},
	{"FROBNICATE sip:1002@edgeway.test SIP/2.0\r\nv: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-b\r\nMax-Forwards: 70\r\nf: <sip:1001@edgeway.test>;tag=c1\r\nt: <sip:1002@edgeway.test>\r\ni: x\r\nCSeq: 1 FROBNICATE\r\nCall-ID: y\r\nl: 0\r\n\r\n", false},
	{"UPDATE sip:1002@edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.10:50123;branch=z9hG4bK-c\r\nMax-Forwards: 0\r\nFrom: <sip:1001@edgeway.test>;tag=c1\r\nTo: <sip:1002@edgeway.test>;tag=d1\r\nCall-ID: call-1@192.0.2.10\r\nCSeq: 4 INFO\r\nContent-Length: 4\r\nContent-Length: 2\r\n\r\nabcd", false},
}

// FuzzEdgeSIPMessage feeds whole messages, as a phone (or the core) would
// write them on the edge's SIP/TLS port, through sipgo's stream parser,
// Edgeway's validation and the edge's handlers (checkEdgeMessage).
func FuzzEdgeSIPMessage(f *testing.F) {
	for _, s := range edgeSeeds {
		f.Add([]byte(s.msg), s.fromCore)
	}
	e := newFuzzEdge(f)
	f.Fuzz(func(t *testing.T, data []byte, fromCore bool) {
		checkEdgeMessage(t, e, data, fromCore)
	})
}
