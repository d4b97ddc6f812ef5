package edge

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/sipx/sipxtest"
)

// relayMessages is a phone's REGISTER as the edge parses it off the
// phone's connection, and the core's 200 to the copy the edge forwards,
// as the edge parses it off the link to the core.
type relayMessages struct {
	e        *fuzzEdge
	reqBytes []byte
	resBytes []byte
	req      *sip.Request
	res      *sip.Response
}

func newRelayMessages(b *testing.B) *relayMessages {
	b.Helper()
	e := newFuzzEdge(b)
	m := &relayMessages{e: e}
	m.reqBytes = []byte(strings.ReplaceAll(edgeSeeds[0].msg, tokenPlaceholder, e.tok))
	m.req = parseOne(b, m.reqBytes).(*sip.Request)
	m.req.SetSource(fuzzPhoneSrc)
	fwd, err := e.f.registerToCore(m.req, "3f9a01c2b7de-1")
	if err != nil {
		b.Fatal(err)
	}
	// The Via sipgo's client adds when it sends fwd to the core.
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "TLS", Host: "expe-1.example.com", Port: 5061, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	fwd.PrependHeader(via)
	// The core's 200 (core/registrar.go okResponse).
	ok := sip.NewResponseFromRequest(fwd, 200, "OK", nil)
	ok.AppendHeader(sip.NewHeader("Contact", "<sip:1001@192.0.2.10:50123;transport=tls>;expires=600"))
	ok.AppendHeader(sip.NewHeader("Path", fwd.GetHeader("Path").Value()))
	ok.AppendHeader(sip.NewHeader("Date", "Mon, 30 Nov 2026 12:00:00 GMT"))
	ok.AppendHeader(sip.NewHeader("Supported", "path"))
	m.resBytes = []byte(ok.String())
	m.res = parseOne(b, m.resBytes).(*sip.Response)
	m.res.SetSource(fuzzCoreSrc)
	return m
}

func parseOne(b *testing.B, data []byte) sip.Message {
	b.Helper()
	msgs, err := parseAll(data)
	if err != nil || len(msgs) != 1 {
		b.Fatalf("parsing %d messages: %v\n%s", len(msgs), err, data)
	}
	msgs[0].SetTransport("TLS")
	return msgs[0]
}

// BenchmarkEdgeRegisterWork is the edge's own work per relayed REGISTER,
// without sockets or sipgo's transaction layer (issue 10 §2): the guard
// (validation, RFC 3261 §8.2, §16.3), the bearer pre-check against the
// verified-token cache (RFC 8898), the copy for the core with Path
// (RFC 3327, RFC 5626 flow token), and, on the way back, the check of the
// core's 200 and its copy without the edge's Via (RFC 3261 §16.7).
// "parse" is sipgo's parsing of the same two messages, for scale: the
// edge pays it on top, per message, on its connections.
func BenchmarkEdgeRegisterWork(b *testing.B) {
	m := newRelayMessages(b)
	f := m.e.f
	b.Run("edge", func(b *testing.B) {
		var fwd *sip.Request
		var ferr error
		handle := f.wrap(func(req *sip.Request, tx sip.ServerTransaction) {
			if f.precheck(req, tx) {
				fwd, ferr = f.registerToCore(req, reqid.FromTx(tx))
			}
		})
		rec := sipxtest.NewRecorder()
		b.ReportAllocs()
		for b.Loop() {
			fwd = nil
			handle(m.req, rec)
			if fwd == nil || ferr != nil {
				b.Fatalf("REGISTER not forwarded: %v %v", ferr, rec.Responses())
			}
			back, err := f.guard.Upstream(fwd, m.res, f.rewriteChallenge)
			if err != nil {
				b.Fatal(err)
			}
			if v := back.Via(); v == nil || v.Host != "192.0.2.10" {
				b.Fatalf("relayed 200 kept the edge's Via:\n%s", back)
			}
		}
		if paths := fwd.GetHeaders("Path"); len(paths) != 1 || !strings.Contains(paths[0].Value(), "@expe-1.example.com:5061;") {
			b.Fatalf("forwarded REGISTER has Path %v", paths)
		}
		if n := len(rec.Responses()); n != 0 {
			b.Fatalf("the edge answered %d times", n)
		}
	})
	b.Run("parse", func(b *testing.B) {
		p := sipx.NewParser()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.ParseSIP(m.reqBytes); err != nil {
				b.Fatal(err)
			}
			if _, err := p.ParseSIP(m.resBytes); err != nil {
				b.Fatal(err)
			}
		}
	})
}
