package sipx

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Problem is what is wrong with a header of a SIP message.
type Problem int

const (
	// Missing: a mandatory header is absent.
	Missing Problem = iota + 1
	// Duplicate: a header that may appear once appears more than once.
	Duplicate
	// Malformed: the header is present but its value is not valid.
	Malformed
)

// HeaderError is a SIP message refused for one of its headers. Its Reason
// is the reason phrase of the 400 that refuses it ("Missing Call-ID",
// "Duplicate To", "Bad CSeq: method does not match request line").
type HeaderError struct {
	Header  string  // canonical header name: "Call-ID"
	Problem Problem // Missing, Duplicate or Malformed
	Detail  string  // for Malformed, what is wrong; may be empty
}

// Reason is the reason phrase of the 400 Bad Request that refuses the
// message: it names the header.
func (e *HeaderError) Reason() string {
	switch e.Problem {
	case Missing:
		return "Missing " + e.Header
	case Duplicate:
		return "Duplicate " + e.Header
	}
	if e.Detail == "" {
		return "Bad " + e.Header
	}
	return "Bad " + e.Header + ": " + e.Detail
}

func (e *HeaderError) Error() string { return "sip: " + e.Reason() }

// single is a header that a request or response must carry exactly once,
// with the typed header sipgo's parser produces when the value is valid.
type single struct {
	name  string
	typed func(sip.Header) bool
}

var (
	fromHdr   = single{"From", func(h sip.Header) bool { _, ok := h.(*sip.FromHeader); return ok }}
	toHdr     = single{"To", func(h sip.Header) bool { _, ok := h.(*sip.ToHeader); return ok }}
	callIDHdr = single{"Call-ID", func(h sip.Header) bool { _, ok := h.(*sip.CallIDHeader); return ok }}
	cseqHdr   = single{"CSeq", func(h sip.Header) bool { _, ok := h.(*sip.CSeqHeader); return ok }}
	maxFwdHdr = single{"Max-Forwards", func(h sip.Header) bool { _, ok := h.(*sip.MaxForwardsHeader); return ok }}
)

// check reports whether m carries s exactly once and well formed. A value
// sipgo's parser could not read arrives as a generic header (see
// NewParser), which is Malformed here.
func (s single) check(m sip.Message) *HeaderError {
	first, n := findHeaders(m, s.name)
	switch {
	case n == 0:
		return &HeaderError{Header: s.name, Problem: Missing}
	case n > 1:
		return &HeaderError{Header: s.name, Problem: Duplicate}
	case !s.typed(first):
		return &HeaderError{Header: s.name, Problem: Malformed}
	}
	return nil
}

// maxMaxForwards is the largest Max-Forwards (RFC 3261 §20.22: 0-255).
const maxMaxForwards = 255

// ValidateRequest checks the headers every SIP request must carry before
// any tier acts on it (RFC 3261 §8.2 and §16.3 step 1): at least one Via,
// each well formed; exactly one From, To, Call-ID and CSeq; a CSeq whose
// method matches the request line (§8.1.1.5); exactly one Max-Forwards of
// 0-255 (§8.1.1.6: a UAC MUST insert it; Edgeway refuses a request
// without one rather than inventing a hop count); on a stream, one
// Content-Length that matches the body (§18.3, §20.14); SIP/2.0 on the
// request line; and the Request-URI and every header sipgo parses written
// so that they parse again when forwarded (checkRoundTrip). The first problem
// found is returned as a *HeaderError; nil means the request may be acted
// on. It never panics, whatever the request holds.
func ValidateRequest(req *sip.Request) error {
	if req == nil {
		return &HeaderError{Header: "Request-Line", Problem: Missing}
	}
	if !strings.EqualFold(req.SipVersion, "SIP/2.0") {
		return &HeaderError{Header: "Request-Line", Problem: Malformed, Detail: "version is not SIP/2.0"}
	}
	if !uriRoundTrips(&req.Recipient) {
		return &HeaderError{Header: "Request-URI", Problem: Malformed, Detail: "does not survive forwarding"}
	}
	if err := checkCommon(req); err != nil {
		return err
	}
	if cseq := req.CSeq(); cseq.MethodName != req.Method {
		return &HeaderError{Header: "CSeq", Problem: Malformed, Detail: "method does not match request line"}
	}
	if err := maxFwdHdr.check(req); err != nil {
		return err
	}
	if req.MaxForwards().Val() > maxMaxForwards {
		return &HeaderError{Header: "Max-Forwards", Problem: Malformed, Detail: "above " + strconv.Itoa(maxMaxForwards)}
	}
	if err := checkLength(req); err != nil {
		return err
	}
	return checkRoundTrip(req)
}

// ValidateResponse checks the headers every SIP response must carry
// (RFC 3261 §8.1.3.3 and §16.7: a proxy relays only responses it can
// match and forward): at least one Via, each well formed; exactly one
// From, To, Call-ID and CSeq; on a stream, one Content-Length that matches
// the body. A response that fails is dropped, never relayed.
func ValidateResponse(res *sip.Response) error {
	if res == nil {
		return &HeaderError{Header: "Status-Line", Problem: Missing}
	}
	if !strings.EqualFold(res.SipVersion, "SIP/2.0") {
		return &HeaderError{Header: "Status-Line", Problem: Malformed, Detail: "version is not SIP/2.0"}
	}
	if err := checkCommon(res); err != nil {
		return err
	}
	if err := checkLength(res); err != nil {
		return err
	}
	return checkRoundTrip(res)
}

func checkCommon(m sip.Message) error {
	vias := 0
	for _, h := range headersOf(m) {
		if !nameIs(h, "Via") {
			continue
		}
		vias++
		// RFC 3261 §20.42: SIP/2.0/transport sent-by.
		v, ok := h.(*sip.ViaHeader)
		if !ok || v.Host == "" || !strings.EqualFold(v.ProtocolName, "SIP") || v.ProtocolVersion != "2.0" || v.Transport == "" {
			return &HeaderError{Header: "Via", Problem: Malformed}
		}
	}
	if vias == 0 {
		return &HeaderError{Header: "Via", Problem: Missing}
	}
	for _, s := range commonSingles {
		if err := s.check(m); err != nil {
			return err
		}
	}
	if m.CSeq().MethodName == "" {
		return &HeaderError{Header: "CSeq", Problem: Malformed, Detail: "no method"}
	}
	return nil
}

// commonSingles are the headers every request and response carries once.
var commonSingles = [...]single{fromHdr, toHdr, callIDHdr, cseqHdr}

// wireParsers are sipgo's own header parsers: what the next hop reads.
var wireParsers = sip.HeadersParser(sip.DefaultHeadersParser())

// roundTrip is the scratch space of one round-trip check: the header line
// (or Request-URI) as sipgo writes it, and what parsing it back yields.
// Checks run on every message both tiers relay; the space is reused
// through roundTrips rather than allocated per header.
type roundTrip struct {
	line bytes.Buffer
	out  []sip.Header
	uri  sip.Uri
}

var roundTrips = sync.Pool{New: func() any { return new(roundTrip) }}

func getRoundTrip() *roundTrip { return roundTrips.Get().(*roundTrip) }

func (rt *roundTrip) put() {
	rt.line.Reset()
	clear(rt.out)
	rt.out = rt.out[:0]
	rt.uri = sip.Uri{}
	if rt.line.Cap() <= 4096 { // an outsize line is not kept for every later check
		roundTrips.Put(rt)
	}
}

// uriRoundTrips reports whether u, written as sipgo writes a
// Request-URI, parses again.
func uriRoundTrips(u *sip.Uri) bool {
	rt := getRoundTrip()
	defer rt.put()
	u.StringWrite(&rt.line)
	return sip.ParseUri(rt.line.String(), &rt.uri) == nil
}

// checkRoundTrip makes sure every header sipgo read into a typed value
// (an address, a Via, a Route...) parses again from the form sipgo writes
// it in when the message is forwarded. sipgo reads some values leniently
// and writes them canonically ("<::0A>" comes back as "<sip::0A>", which
// it cannot read); forwarded, such a message would fail the next hop's
// parser, and sipgo closes a stream whose message fails: one phone could
// cut the edge's shared connection to the core. Headers sipgo has no
// parser for are written back byte for byte and need no check.
func checkRoundTrip(m sip.Message) error {
	var rt *roundTrip // taken at the first header that needs parsing back
	defer func() {
		if rt != nil {
			rt.put()
		}
	}()
	for _, h := range headersOf(m) {
		var lower [32]byte
		name := h.Name()
		if len(name) > len(lower) {
			continue // longer than any header sipgo parses: written back as read
		}
		if _, typed := wireParsers[string(asciiLower(lower[:0], name))]; !typed {
			continue
		}
		ok, known := valueRoundTrips(h)
		if !known {
			if rt == nil {
				rt = getRoundTrip()
			}
			ok = rt.reparses(h)
		}
		if !ok {
			return &HeaderError{Header: name, Problem: Malformed, Detail: "does not survive forwarding"}
		}
	}
	return nil
}

// reparses writes h as it goes on the wire (name, ": ", value) and
// reports whether sipgo's parsers read it back.
func (rt *roundTrip) reparses(h sip.Header) bool {
	rt.line.Reset()
	h.StringWrite(&rt.line)
	var err error
	rt.out, err = wireParsers.ParseHeader(rt.out[:0], rt.line.Bytes())
	clear(rt.out)
	return err == nil
}

// maxCSeq is the largest CSeq number sipgo reads (RFC 3261 §8.1.1.5:
// less than 2^31).
const maxCSeq = 1<<31 - 1

// valueRoundTrips answers reparses from the value alone for the typed
// headers whose written form is simple enough (known false otherwise):
// sipgo writes Max-Forwards and Content-Length as decimal uint32, which
// it always reads; a Call-ID as is, which it reads when not blank after
// trimming; a CSeq as "number method", which it reads when the number is
// below 2^31 and the method not blank. TestValueRoundTripsAgrees holds
// this to sipgo's parsers.
func valueRoundTrips(h sip.Header) (ok, known bool) {
	switch h := h.(type) {
	case *sip.MaxForwardsHeader:
		return true, h != nil
	case *sip.ContentLengthHeader:
		return true, h != nil
	case *sip.CallIDHeader:
		if h == nil {
			return false, false
		}
		return strings.TrimSpace(string(*h)) != "", true
	case *sip.CSeqHeader:
		if h == nil {
			return false, false
		}
		return h.SeqNo <= maxCSeq && strings.TrimSpace(string(h.MethodName)) != "", true
	}
	return false, false
}

// asciiLower appends s to b with A-Z lowered, as sipgo lowers header
// names to look up their parser.
func asciiLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// headersOf is every header of m in order. sip.Message has an unexported
// method, so its only implementations are sipgo's Request and Response
// (or types embedding them), which all have Headers.
func headersOf(m sip.Message) []sip.Header {
	if hm, ok := m.(interface{ Headers() []sip.Header }); ok {
		return hm.Headers()
	}
	return nil
}

// nameIs reports whether h is named name, ignoring ASCII case: what
// sipgo's GetHeaders matches (it lowers both names), without the string
// it allocates per header whose name it does not know.
func nameIs(h sip.Header, name string) bool {
	n := h.Name()
	if len(n) != len(name) {
		return false
	}
	for i := 0; i < len(n); i++ {
		a, b := n[i], name[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// findHeaders returns the first header of m named name (ASCII case
// ignored) and how many there are: m.GetHeaders(name)[0] and its length,
// without building the slice.
func findHeaders(m sip.Message, name string) (first sip.Header, n int) {
	for _, h := range headersOf(m) {
		if nameIs(h, name) {
			if n == 0 {
				first = h
			}
			n++
		}
	}
	return first, n
}

// FindHeader is m's first header named name, ignoring ASCII case, or nil:
// m.GetHeader(name) without the allocation sipgo makes for each header
// before it whose name it does not know.
func FindHeader(m sip.Message, name string) sip.Header {
	h, _ := findHeaders(m, name)
	return h
}

// checkLength applies RFC 3261 §18.3: on a stream the one Content-Length
// frames the message, so it must be there, once, and equal the body.
// sipgo's stream parser frames by the last Content-Length it reads; a
// second one, whatever its value, is refused so no two hops can frame the
// message differently.
func checkLength(m sip.Message) error {
	first, n := findHeaders(m, "Content-Length")
	switch {
	case n > 1:
		return &HeaderError{Header: "Content-Length", Problem: Duplicate}
	case n == 0:
		if isStream(m.Transport()) {
			return &HeaderError{Header: "Content-Length", Problem: Missing}
		}
		return nil
	}
	cl, ok := first.(*sip.ContentLengthHeader)
	if !ok || int(*cl) != len(m.Body()) {
		return &HeaderError{Header: "Content-Length", Problem: Malformed, Detail: "does not match the body"}
	}
	return nil
}

func isStream(transport string) bool {
	switch sip.NetworkToLower(transport) {
	case "tcp", "tls", "ws", "wss":
		return true
	}
	return false
}

// lenientHeaders are the headers whose unreadable values NewParser keeps
// as generic headers, keyed by sipgo's parser keys (long and compact
// forms), with the canonical name the generic header gets.
var lenientHeaders = map[string]string{
	"via": "Via", "v": "Via",
	"from": "From", "f": "From",
	"to": "To", "t": "To",
	"call-id": "Call-ID", "i": "Call-ID",
	"cseq":         "CSeq",
	"max-forwards": "Max-Forwards",
}

// NewParser is sipgo's parser, except that a From, To, Call-ID, CSeq,
// Via or Max-Forwards value it cannot read is kept as a generic header
// instead of failing the message. sipgo closes a stream whose message
// fails to parse, so without this a phone that sends one bad header would
// get no answer and lose its connection; with it, ValidateRequest sees the
// header and the phone gets "400 Bad CSeq" on a connection that stays
// usable. Content-Length stays strict: it frames the stream (RFC 3261
// §18.3), and a stream with an unreadable length has no next message to
// resynchronise on.
func NewParser() *sip.Parser {
	parsers := sip.HeadersParser{}
	for k, p := range sip.DefaultHeadersParser() { // a copy: sipgo's map is process-wide
		parsers[k] = p
		if name, ok := lenientHeaders[k]; ok {
			parsers[k] = lenient(name, p)
		}
	}
	return sip.NewParser(sip.WithHeadersParsers(parsers))
}

func lenient(name string, parse sip.HeaderParser) sip.HeaderParser {
	return func(key []byte, value string) (h sip.Header, err error) {
		defer func() {
			// The parsers are sipgo's; a value that makes one panic is
			// as unreadable as one it refuses.
			if recover() != nil {
				h, err = sip.NewHeader(name, value), nil
			}
		}()
		h, err = parse(key, value)
		if err == nil || isListContinuation(err) {
			return h, err
		}
		return sip.NewHeader(name, value), nil
	}
}

// isListContinuation reports sipgo's signal that a header value holds a
// comma-separated list (a Via with several hops): its parsers return the
// first value with an error of an unexported integer type holding the
// comma's offset, and the parser loop continues after it. That error must
// pass through, or a valid multi-hop Via would be mistaken for a bad one.
func isListContinuation(err error) bool {
	t := reflect.TypeOf(err)
	return t.Kind() == reflect.Int && t.PkgPath() == reflect.TypeOf(sip.Request{}).PkgPath()
}

var _ fmt.Stringer = Problem(0)

// String names the problem for logs.
func (p Problem) String() string {
	switch p {
	case Missing:
		return "missing"
	case Duplicate:
		return "duplicate"
	case Malformed:
		return "malformed"
	}
	return "Problem(" + strconv.Itoa(int(p)) + ")"
}
