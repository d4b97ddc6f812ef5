package sipx

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// parseStream parses one message the way a TLS connection does: sipgo's
// stream parser with Edgeway's header parsers.
func parseStream(t testing.TB, raw string) (sip.Message, error) {
	t.Helper()
	ps := NewParser().NewSIPStream()
	defer ps.Close()
	var msgs []sip.Message
	err := ps.ParseSIPStream([]byte(raw), func(m sip.Message) {
		m.SetTransport("TLS")
		msgs = append(msgs, m)
	})
	if err != nil {
		return nil, err
	}
	if len(msgs) != 1 {
		t.Fatalf("parsed %d messages from %q", len(msgs), raw)
	}
	return msgs[0], nil
}

// validInvite is a well-formed INVITE; tests change one header at a time.
var validInvite = []string{
	"INVITE sip:1002@edgeway.test SIP/2.0",
	"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds",
	"Max-Forwards: 70",
	"To: <sip:1002@edgeway.test>",
	"From: <sip:1001@edgeway.test>;tag=1928301774",
	"Call-ID: a84b4c76e66710@192.0.2.10",
	"CSeq: 314159 INVITE",
	"Contact: <sip:1001@192.0.2.10:5061;transport=tls>",
}

// edit returns lines with every header named name (long form) replaced by
// values (none: the header removed).
func edit(lines []string, name string, values ...string) []string {
	var out []string
	done := false
	for _, l := range lines {
		if strings.HasPrefix(strings.ToLower(l), strings.ToLower(name)+":") {
			if !done {
				for _, v := range values {
					out = append(out, name+": "+v)
				}
				done = true
			}
			continue
		}
		out = append(out, l)
	}
	return out
}

func message(lines []string, body string, length ...string) string {
	cl := []string{"Content-Length: " + itoa(len(body))}
	if len(length) > 0 {
		cl = nil
		for _, l := range length {
			cl = append(cl, "Content-Length: "+l)
		}
	}
	return strings.Join(append(append([]string{}, lines...), cl...), "\r\n") + "\r\n\r\n" + body
}

func itoa(n int) string {
	var b []byte
	if n == 0 {
		return "0"
	}
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// RFC 3261 §8.2 / §16.3: each mandatory header missing, duplicated or
// malformed is refused with a reason that names it.
func TestValidateRequest(t *testing.T) {
	cases := []struct {
		name   string
		lines  []string
		body   string
		length []string
		want   string // reason phrase; "" = valid
	}{
		{"valid", validInvite, "", nil, ""},
		{"valid with body", validInvite, "v=0\r\n", nil, ""},
		{"valid compact forms", []string{"INVITE sip:1002@edgeway.test SIP/2.0", "v: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK1",
			"Max-Forwards: 70", "t: <sip:1002@edgeway.test>", "f: <sip:1001@edgeway.test>;tag=1", "i: abc", "CSeq: 1 INVITE"}, "", nil, ""},
		{"valid two Via in one header", edit(validInvite, "Via", "SIP/2.0/TLS a.example:5061;branch=z9hG4bK1, SIP/2.0/TLS b.example;branch=z9hG4bK2"), "", nil, ""},
		{"missing Via", edit(validInvite, "Via"), "", nil, "Missing Via"},
		{"bad Via", edit(validInvite, "Via", "garbage"), "", nil, "Bad Via"},
		{"bad second Via", edit(validInvite, "Via", "SIP/2.0/TLS a.example;branch=z9hG4bK1", "nonsense"), "", nil, "Bad Via"},
		{"missing From", edit(validInvite, "From"), "", nil, "Missing From"},
		{"duplicate From", edit(validInvite, "From", "<sip:1001@edgeway.test>;tag=1", "<sip:1003@edgeway.test>;tag=2"), "", nil, "Duplicate From"},
		{"bad From", edit(validInvite, "From", "<sip:1001@edgeway.test"), "", nil, "Bad From"},
		{"missing To", edit(validInvite, "To"), "", nil, "Missing To"},
		{"duplicate To", edit(validInvite, "To", "<sip:1002@edgeway.test>", "<sip:1004@edgeway.test>"), "", nil, "Duplicate To"},
		{"bad To", edit(validInvite, "To", "<>"), "", nil, "Bad To"},
		{"missing Call-ID", edit(validInvite, "Call-ID"), "", nil, "Missing Call-ID"},
		{"duplicate Call-ID", edit(validInvite, "Call-ID", "a@b", "c@d"), "", nil, "Duplicate Call-ID"},
		{"empty Call-ID", edit(validInvite, "Call-ID", ""), "", nil, "Bad Call-ID"},
		{"missing CSeq", edit(validInvite, "CSeq"), "", nil, "Missing CSeq"},
		{"duplicate CSeq", edit(validInvite, "CSeq", "1 INVITE", "2 INVITE"), "", nil, "Duplicate CSeq"},
		{"bad CSeq number", edit(validInvite, "CSeq", "x INVITE"), "", nil, "Bad CSeq"},
		{"CSeq above 2^31-1", edit(validInvite, "CSeq", "2147483648 INVITE"), "", nil, "Bad CSeq"},
		{"CSeq method mismatch", edit(validInvite, "CSeq", "1 BYE"), "", nil, "Bad CSeq: method does not match request line"},
		{"missing Max-Forwards", edit(validInvite, "Max-Forwards"), "", nil, "Missing Max-Forwards"},
		{"duplicate Max-Forwards", edit(validInvite, "Max-Forwards", "70", "69"), "", nil, "Duplicate Max-Forwards"},
		{"bad Max-Forwards", edit(validInvite, "Max-Forwards", "seventy"), "", nil, "Bad Max-Forwards"},
		{"Max-Forwards above 255", edit(validInvite, "Max-Forwards", "256"), "", nil, "Bad Max-Forwards: above 255"},
		{"duplicate Content-Length", validInvite, "", []string{"0", "0"}, "Duplicate Content-Length"},
		{"two Content-Length framing differently", validInvite, "abcd", []string{"2", "4"}, "Duplicate Content-Length"},
		// Found by FuzzEdgeSIPMessage: sipgo reads these, but what it would
		// forward the next hop cannot parse (edge/testdata/fuzz/FuzzEdgeSIPMessage/crash-route-does-not-reparse).
		{"Via without SIP/2.0", edit(validInvite, "Via", "// 0"), "", nil, "Bad Via"},
		{"version not SIP/2.0", append([]string{"INVITE sip:1002@edgeway.test SIP"}, validInvite[1:]...), "", nil, "Bad Request-Line: version is not SIP/2.0"},
		{"Route that does not survive forwarding", append(append([]string{}, validInvite...), "Route: <::0A>"), "", nil, "Bad Route: does not survive forwarding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseStream(t, message(tc.lines, tc.body, tc.length...))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = ValidateRequest(m.(*sip.Request))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid request refused: %v", err)
				}
				return
			}
			var he *HeaderError
			if !errors.As(err, &he) {
				t.Fatalf("ValidateRequest = %v, want a *HeaderError %q", err, tc.want)
			}
			if he.Reason() != tc.want {
				t.Fatalf("reason = %q, want %q", he.Reason(), tc.want)
			}
		})
	}
}

// On a stream the one Content-Length must frame the body (RFC 3261 §18.3).
// The stream parser always gives a body of that length, so a mismatch can
// only come from a message built another way; a stream without one is
// refused by sipgo's parser itself.
func TestValidateRequestContentLength(t *testing.T) {
	req := parseRequest(t, append(append([]string{}, validInvite...), "Content-Length: 0")...)
	req.SetTransport("TLS")
	req.SetBody([]byte("abcdef"))
	req.ReplaceHeader(func() sip.Header { h := sip.ContentLengthHeader(4); return &h }())
	var he *HeaderError
	if err := ValidateRequest(req); !errors.As(err, &he) || he.Header != "Content-Length" || he.Problem != Malformed {
		t.Fatalf("length 4 with a 6-byte body: %v", err)
	}
	req.RemoveHeader("Content-Length")
	if err := ValidateRequest(req); !errors.As(err, &he) || he.Reason() != "Missing Content-Length" {
		t.Fatalf("no Content-Length on TLS: %v", err)
	}
	if _, err := parseStream(t, strings.Join(validInvite, "\r\n")+"\r\n\r\n"); err == nil {
		t.Fatal("sipgo's stream parser took a message without Content-Length")
	}
}

func TestValidateResponse(t *testing.T) {
	head := []string{
		"SIP/2.0 200 OK",
		"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds",
		"To: <sip:1002@edgeway.test>;tag=a6c85cf",
		"From: <sip:1001@edgeway.test>;tag=1928301774",
		"Call-ID: a84b4c76e66710@192.0.2.10",
		"CSeq: 314159 INVITE",
	}
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"valid", head, ""},
		{"missing Via", edit(head, "Via"), "Missing Via"},
		{"missing To", edit(head, "To"), "Missing To"},
		{"missing Call-ID", edit(head, "Call-ID"), "Missing Call-ID"},
		{"duplicate Call-ID", edit(head, "Call-ID", "a", "b"), "Duplicate Call-ID"},
		{"bad CSeq", edit(head, "CSeq", "INVITE"), "Bad CSeq"},
		{"duplicate From", edit(head, "From", "<sip:a@b>;tag=1", "<sip:a@b>;tag=2"), "Duplicate From"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseStream(t, message(tc.lines, ""))
			if err != nil {
				t.Fatal(err)
			}
			err = ValidateResponse(m.(*sip.Response))
			var he *HeaderError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid response refused: %v", err)
			case tc.want != "" && (!errors.As(err, &he) || he.Reason() != tc.want):
				t.Fatalf("ValidateResponse = %v, want %q", err, tc.want)
			}
		})
	}
}

// NewParser must not change sipgo's process-wide parser map.
func TestNewParserLeavesDefaultAlone(t *testing.T) {
	_ = NewParser()
	if _, err := sip.ParseMessage([]byte(message(edit(validInvite, "CSeq", "x INVITE"), ""))); err == nil {
		t.Fatal("sipgo's default parser became lenient")
	}
}

// Header names match whatever their ASCII case (RFC 3261 §7.3.1), as
// sipgo's GetHeaders matches them: a second Call-ID added under another
// spelling is a duplicate, and FindHeader finds any spelling.
func TestHeaderNamesIgnoreCase(t *testing.T) {
	m, err := parseStream(t, message(validInvite, ""))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.AppendHeader(sip.NewHeader("X-Extra", "1"))
	req.AppendHeader(sip.NewHeader("authorization", "Bearer abc"))
	for _, name := range []string{"Authorization", "AUTHORIZATION", "authorization"} {
		if h := FindHeader(req, name); h == nil || h.Value() != "Bearer abc" {
			t.Errorf("FindHeader(%q) = %v", name, h)
		}
	}
	if h := FindHeader(req, "Authorizatio"); h != nil {
		t.Errorf("FindHeader matched a prefix: %v", h)
	}
	if tok, scheme, ok := BearerToken(req); !ok || scheme != "Bearer" || tok != "abc" {
		t.Errorf("BearerToken = %q, %q, %v", tok, scheme, ok)
	}
	req.AppendHeader(sip.NewHeader("CALL-ID", "other@example"))
	var he *HeaderError
	if err := ValidateRequest(req); !errors.As(err, &he) || he.Reason() != "Duplicate Call-ID" {
		t.Fatalf("ValidateRequest = %v, want Duplicate Call-ID", err)
	}
	if got := len(req.GetHeaders("call-id")); got != 2 {
		t.Fatalf("sipgo counts %d Call-ID headers, the test assumes 2", got)
	}
}

// checkRoundTrip writes each header with StringWrite and parses it back,
// where it used to parse Name()+": "+Value(): for every header sipgo
// parses, both must be the same text.
func TestStringWriteIsNameAndValue(t *testing.T) {
	raw := message(append(append([]string{}, validInvite...),
		"Route: <sip:edge.example:5061;transport=tls;lr>",
		"Record-Route: <sip:core.example:5091;transport=tls;lr>",
		"Refer-To: <sip:1003@edgeway.test>",
		"Referred-By: <sip:1001@edgeway.test>",
		"Content-Type: application/sdp",
		"Expires: 600",
		"Path: <sip:x@edge.example;lr>"), "v=0\r\n")
	m, err := parseStream(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	typed := 0
	for _, h := range m.(*sip.Request).Headers() {
		var b strings.Builder
		h.StringWrite(&b)
		if want := h.Name() + ": " + h.Value(); b.String() != want {
			t.Errorf("%T writes %q, Name and Value give %q", h, b.String(), want)
		}
		if _, ok := wireParsers[strings.ToLower(h.Name())]; ok {
			typed++
		}
	}
	if typed < 12 {
		t.Errorf("only %d headers with a sipgo parser in the message", typed)
	}
}

// Looking a header up costs no allocation, whatever the message's other
// header names (sipgo's GetHeader allocates a lower-cased copy of each
// name it does not know).
func TestFindHeaderAllocs(t *testing.T) {
	m, err := parseStream(t, message(append(append([]string{}, validInvite...), "X-One: 1", "X-Two: 2", "Authorization: Bearer abc"), ""))
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if FindHeader(m, "Authorization") == nil {
			t.Fatal("no Authorization")
		}
		if _, n := findHeaders(m, "Content-Length"); n != 1 {
			t.Fatal("no Content-Length")
		}
	}); n != 0 {
		t.Errorf("FindHeader allocates %v times", n)
	}
}

// valueRoundTrips must give the verdict of writing the header and parsing
// it back with sipgo's parsers, for every value it claims to know.
func TestValueRoundTripsAgrees(t *testing.T) {
	callID := func(v string) sip.Header { h := sip.CallIDHeader(v); return &h }
	maxFwd := func(v uint32) sip.Header { h := sip.MaxForwardsHeader(v); return &h }
	length := func(v uint32) sip.Header { h := sip.ContentLengthHeader(v); return &h }
	cseq := func(n uint32, m string) sip.Header {
		return &sip.CSeqHeader{SeqNo: n, MethodName: sip.RequestMethod(m)}
	}
	headers := []sip.Header{
		callID("a84b4c76e66710@192.0.2.10"), callID(""), callID(" "), callID("\t\u00a0"), callID(" x "), callID("a,b"),
		callID("a b"), callID("\xff"), callID("x\r\ny"),
		maxFwd(0), maxFwd(70), maxFwd(1<<32 - 1),
		length(0), length(1<<32 - 1),
		cseq(1, "INVITE"), cseq(0, "REGISTER"), cseq(maxCSeq, "BYE"), cseq(maxCSeq+1, "BYE"), cseq(1<<32-1, "BYE"),
		cseq(1, ""), cseq(1, " "), cseq(1, "\t"), cseq(1, " X"), cseq(1, "X "), cseq(1, "A B"), cseq(1, "\u00a0"), cseq(1, "\u00a0X"),
	}
	rt := getRoundTrip()
	defer rt.put()
	for _, h := range headers {
		ok, known := valueRoundTrips(h)
		if !known {
			t.Errorf("%T %q: not known", h, h.Value())
			continue
		}
		if want := rt.reparses(h); ok != want {
			t.Errorf("%T %q: valueRoundTrips = %v, parsing it back = %v", h, h.Value(), ok, want)
		}
	}
	for _, h := range []sip.Header{sip.NewHeader("Call-ID", "x"), &sip.ViaHeader{}, (*sip.CSeqHeader)(nil), (*sip.MaxForwardsHeader)(nil)} {
		if _, known := valueRoundTrips(h); known {
			t.Errorf("%T claimed known", h)
		}
	}
}
