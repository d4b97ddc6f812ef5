package sipx

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// RFC 3261 §16.6 step 3: the copy a proxy forwards has Max-Forwards one
// lower; the request it answers on (the server transaction's) keeps its
// own. sipgo's Clone shares the Max-Forwards value between the two.
func TestPrepareForwardLeavesRequestAlone(t *testing.T) {
	req := register(t)
	before := req.String()
	fwd, err := PrepareForward(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := fwd.MaxForwards().Val(); got != 69 {
		t.Errorf("forwarded Max-Forwards = %d, want 69", got)
	}
	if got := fwd.GetHeader("Max-Forwards").Value(); got != "69" {
		t.Errorf("forwarded Max-Forwards header = %q, want 69", got)
	}
	if got := req.MaxForwards().Val(); got != 70 {
		t.Errorf("original Max-Forwards = %d after PrepareForward, want 70", got)
	}
	if after := req.String(); after != before {
		t.Errorf("PrepareForward changed the request:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Forwarding the same request again gives the same copy.
	again, err := PrepareForward(req)
	if err != nil || again.String() != fwd.String() {
		t.Errorf("second PrepareForward = %v, %v; want the first copy", again, err)
	}
}

// RFC 3261 §16.3 step 3: Max-Forwards 1 (or 0) is not forwarded.
func TestPrepareForwardTooManyHops(t *testing.T) {
	for _, mf := range []string{"0", "1"} {
		lines := append([]string{}, registerHead...)
		for i, l := range lines {
			if strings.HasPrefix(l, "Max-Forwards:") {
				lines[i] = "Max-Forwards: " + mf
			}
		}
		req := parseRequest(t, append(lines, "Content-Length: 0")...)
		if _, err := PrepareForward(req); !errors.Is(err, ErrTooManyHops) {
			t.Errorf("Max-Forwards %s: err = %v, want ErrTooManyHops", mf, err)
		}
		if got := req.MaxForwards().Val(); got != uint32(mf[0]-'0') {
			t.Errorf("Max-Forwards %s changed to %d", mf, got)
		}
	}
}

// RFC 3261 §16.7 step 3: the response relayed upstream is the one that
// came back, without the top Via (the proxy's own), and the one that came
// back is left as it was.
func TestUpstreamDropsTopVia(t *testing.T) {
	req := register(t)
	fwd, err := PrepareForward(req)
	if err != nil {
		t.Fatal(err)
	}
	fwd.PrependHeader(sip.NewHeader("Via", "SIP/2.0/TLS edge.example:5061;branch=z9hG4bKedge"))
	raw := sip.NewResponseFromRequest(fwd, 200, "OK", []byte("x"))
	raw.AppendHeader(sip.NewHeader("Contact", "<sip:1001@192.0.2.10:5061;transport=tls>;expires=600"))
	raw.AppendHeader(sip.NewHeader("Via", "SIP/2.0/TLS late.example;branch=z9hG4bKlate"))
	m, err := parseStream(t, raw.String())
	if err != nil {
		t.Fatal(err)
	}
	res := m.(*sip.Response)
	res.SetSource("192.0.2.99:5091")
	before := res.String()
	var rewritten *sip.Response
	back, err := NewGuard(nil).Upstream(fwd, res, func(r *sip.Response) { rewritten = r })
	if err != nil {
		t.Fatal(err)
	}
	if rewritten != back {
		t.Error("rewrite did not get the relayed copy")
	}
	want := res.Clone()
	want.RemoveHeader("Via")
	if back.String() != want.String() {
		t.Errorf("relayed:\n%s\nwant (Clone without the top Via):\n%s", back, want)
	}
	if back.Via() == nil || back.Via().Host != "192.0.2.10" {
		t.Errorf("relayed top Via = %v, want the phone's", back.Via())
	}
	if back.Source() != res.Source() || back.Transport() != res.Transport() || string(back.Body()) != "x" {
		t.Errorf("relayed source %q transport %q body %q", back.Source(), back.Transport(), back.Body())
	}
	back.To().Params.Add("tag", "changed")
	if res.String() != before {
		t.Errorf("Upstream or a change to its copy altered the response:\n%s", res)
	}
	// A response that does not answer fwd is dropped.
	other := res.Clone()
	other.ReplaceHeader(&sip.CSeqHeader{SeqNo: 99, MethodName: sip.REGISTER})
	if _, err := NewGuard(nil).Upstream(fwd, other, nil); err == nil {
		t.Error("a response with another CSeq was relayed")
	}
}

// The forwarded copy is what sipgo's Clone makes, Max-Forwards apart, and
// shares nothing a proxy changes with the request it came from.
func TestPrepareForwardIsClone(t *testing.T) {
	m, err := parseStream(t, message(append(append([]string{}, validInvite...),
		"Route: <sip:edge.example:5061;transport=tls;lr>", "Route: <sip:core.example:5091;lr>",
		"Record-Route: <sip:rr.example;lr>", "Authorization: Bearer abc", "X-Custom: 1"), "v=0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.Recipient.UriParams = sip.NewParams()
	req.Recipient.UriParams.Add("transport", "tls")
	req.SetSource("192.0.2.10:5061")
	req.Laddr = sip.Addr{Hostname: "edge.example", Port: 5061}
	want := req.Clone()
	want.MaxForwards().Dec() // shared with req: restored below
	wantText := want.String()
	*req.MaxForwards() = 70
	fwd, err := PrepareForward(req)
	if err != nil {
		t.Fatal(err)
	}
	if fwd.String() != wantText {
		t.Fatalf("PrepareForward:\n%s\nClone with Max-Forwards 69:\n%s", fwd, wantText)
	}
	if fwd.Source() != req.Source() || fwd.Transport() != req.Transport() || fwd.Laddr.String() != req.Laddr.String() || fwd.SipVersion != req.SipVersion {
		t.Errorf("copy source %q transport %q laddr %v version %q", fwd.Source(), fwd.Transport(), fwd.Laddr, fwd.SipVersion)
	}
	before := req.String()
	fwd.Recipient.UriParams.Add("x", "y")
	fwd.Recipient.Host = "elsewhere.example"
	fwd.RemoveHeader("Route")
	fwd.RemoveHeader("Authorization")
	fwd.Via().Params.Add("received", "192.0.2.99")
	fwd.From().Params.Add("x", "y")
	fwd.PrependHeader(sip.NewHeader("Path", "<sip:p.example;lr>"))
	fwd.Body()[0] = 'X'
	if after := req.String(); after != before {
		t.Errorf("changing the copy changed the request:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// A destination set on req is kept; none set is left for the caller.
	if fwd.MessageData.Destination() != "" {
		t.Errorf("copy of a request with no destination has %q", fwd.MessageData.Destination())
	}
	req.SetDestination("198.51.100.1:5091")
	if fwd, _ := PrepareForward(req); fwd.Destination() != "198.51.100.1:5091" {
		t.Errorf("copy destination %q, want req's", fwd.Destination())
	}
}
