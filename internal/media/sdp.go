package media

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// PayloadPCMU is the static RTP payload type of G.711 µ-law at 8 kHz
// (RFC 3551 §6), the only codec the simulated phone sends.
const PayloadPCMU uint8 = 0

// Limits on a remote SDP body, so a peer cannot make us allocate freely.
const (
	maxSDPSize       = 16 << 10
	maxCryptoLines   = 16
	maxCandidateRows = 16
)

// Errors from ParseSDP, Answer and AcceptAnswer; compare with errors.Is.
var (
	// ErrSDP: the body is not a session description this package handles.
	ErrSDP = errors.New("media: malformed or unsupported SDP")
	// ErrNoSRTP: the media line is not RTP/SAVP; plain RTP is refused
	// (S-4: media is always encrypted).
	ErrNoSRTP = errors.New("media: media is not offered as RTP/SAVP (SRTP)")
	// ErrNoCodec: PCMU is not among the offered formats.
	ErrNoCodec = errors.New("media: PCMU (payload type 0) not offered")
	// ErrNoCommonSuite: no a=crypto line with a suite we speak.
	ErrNoCommonSuite = errors.New("media: no supported SDES crypto suite offered")
	// ErrRejected: the answer refused the stream (port 0).
	ErrRejected = errors.New("media: audio stream rejected (port 0)")
)

// Directions of an m-line (RFC 4566 §6).
const (
	SendRecv = "sendrecv"
	SendOnly = "sendonly"
	RecvOnly = "recvonly"
	Inactive = "inactive"
)

// SDP is a session description with one audio stream: RTP/SAVP, PCMU, 20 ms,
// SDES keys. It is what the simulated phone offers and answers in INVITE
// bodies (RFC 3264 offer/answer, RFC 4566 syntax).
type SDP struct {
	// Addr is where the peer must send media: the c= address and the m=
	// port. For a phone behind TURN it is the relayed transport address.
	Addr netip.AddrPort
	// PayloadType is the m= format; ParseSDP sets it to PayloadPCMU, the
	// only one accepted.
	PayloadType uint8
	// Direction is sendrecv (the default when empty), sendonly, recvonly or
	// inactive.
	Direction string
	// Crypto lists the a=crypto lines, in order of preference. ParseSDP
	// keeps only the lines ParseCrypto accepts (other suites and lines with
	// parameters we do not implement are skipped).
	Crypto []Crypto
	// Candidates are optional a=candidate lines (RFC 8839), such as the
	// relay candidate from RelayCandidate.
	Candidates []Candidate
	// SessionID and SessionVersion fill the o= line.
	SessionID, SessionVersion uint64
}

// NewOffer is an offer for local with a fresh key for each suite, tagged
// 1, 2, … in order of preference. With no suites it offers
// AEAD_AES_128_GCM, then AES_CM_128_HMAC_SHA1_80.
func NewOffer(local netip.AddrPort, suiteNames ...string) (SDP, error) {
	if len(suiteNames) == 0 {
		suiteNames = []string{SuiteAEADAES128GCM, SuiteAESCM128HMACSHA1_80}
	}
	o := SDP{Addr: local, PayloadType: PayloadPCMU, Direction: SendRecv, SessionID: randomSessionID()}
	o.SessionVersion = o.SessionID
	for i, name := range suiteNames {
		c, err := NewCrypto(i+1, name)
		if err != nil {
			return SDP{}, err
		}
		o.Crypto = append(o.Crypto, c)
	}
	return o, nil
}

// Answer answers offer for our address local (RFC 3264 §6). It takes the
// first offered suite we speak (the offer lists them in order of
// preference) and makes our own key for it under the same tag (RFC 4568
// §5.1.2). chosen is the offerer's line: we decrypt with it and encrypt with
// answer.Crypto[0], so NewSession(answer.Crypto[0], chosen).
func Answer(offer SDP, local netip.AddrPort) (answer SDP, chosen Crypto, err error) {
	if offer.Addr.Port() == 0 || !offer.Addr.Addr().IsValid() {
		return SDP{}, Crypto{}, fmt.Errorf("%w: offer has no media address", ErrSDP)
	}
	if offer.PayloadType != PayloadPCMU {
		return SDP{}, Crypto{}, fmt.Errorf("%w: offer uses payload type %d", ErrNoCodec, offer.PayloadType)
	}
	found := false
	for _, c := range offer.Crypto {
		if _, err := c.validate(); err == nil {
			chosen, found = c, true
			break
		}
	}
	if !found {
		return SDP{}, Crypto{}, ErrNoCommonSuite
	}
	ours, err := NewCrypto(chosen.Tag, chosen.Suite)
	if err != nil {
		return SDP{}, Crypto{}, err
	}
	answer = SDP{
		Addr:        local,
		PayloadType: PayloadPCMU,
		Direction:   answerDirection(offer.Direction),
		Crypto:      []Crypto{ours},
		SessionID:   randomSessionID(),
	}
	answer.SessionVersion = answer.SessionID
	return answer, chosen, nil
}

// AcceptAnswer pairs answer with the offer it answers: local is our offered
// line under the tag the answer chose (we encrypt with it), remote the
// answer's line (we decrypt with it), so NewSession(local, remote).
func AcceptAnswer(offer, answer SDP) (local, remote Crypto, err error) {
	if answer.Addr.Port() == 0 {
		return Crypto{}, Crypto{}, ErrRejected
	}
	if answer.PayloadType != PayloadPCMU {
		return Crypto{}, Crypto{}, fmt.Errorf("%w: answer uses payload type %d", ErrNoCodec, answer.PayloadType)
	}
	if len(answer.Crypto) != 1 {
		return Crypto{}, Crypto{}, fmt.Errorf("%w: answer must carry exactly one a=crypto line, has %d", ErrSDP, len(answer.Crypto))
	}
	remote = answer.Crypto[0]
	for _, c := range offer.Crypto {
		if c.Tag == remote.Tag {
			if c.Suite != remote.Suite {
				return Crypto{}, Crypto{}, fmt.Errorf("%w: answer tag %d names %s, offer %s", ErrSDP, c.Tag, remote.Suite, c.Suite)
			}
			return c, remote, nil
		}
	}
	return Crypto{}, Crypto{}, fmt.Errorf("%w: answer tag %d was not offered", ErrSDP, remote.Tag)
}

func answerDirection(offered string) string {
	switch offered {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	case Inactive:
		return Inactive
	}
	return SendRecv
}

func randomSessionID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])                    // crypto/rand.Read never fails (Go 1.24+)
	return binary.BigEndian.Uint64(b[:]) >> 2 // stays within int64 for picky parsers
}

// Marshal writes the body (RFC 4566), lines ending in CRLF; s.Addr must be
// a valid address:
//
//	v=0
//	o=- <id> <version> IN IP4 <addr>
//	s=-
//	c=IN IP4 <addr>
//	t=0 0
//	m=audio <port> RTP/SAVP 0
//	a=rtpmap:0 PCMU/8000
//	a=ptime:20
//	a=sendrecv
//	a=crypto:1 AEAD_AES_128_GCM inline:…
//	a=candidate:…
func (s SDP) Marshal() []byte {
	var b bytes.Buffer
	addr := s.Addr.Addr().Unmap().WithZone("")
	family := "IP4"
	if addr.Is6() {
		family = "IP6"
	}
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\r\n")
	}
	line("v=0")
	line("o=- %d %d IN %s %s", s.SessionID, s.SessionVersion, family, addr)
	line("s=-")
	line("c=IN %s %s", family, addr)
	line("t=0 0")
	line("m=audio %d RTP/SAVP %d", s.Addr.Port(), s.PayloadType)
	if name, ok := staticRTPMap[s.PayloadType]; ok {
		line("a=rtpmap:%d %s", s.PayloadType, name)
	}
	line("a=ptime:20")
	dir := s.Direction
	if dir == "" {
		dir = SendRecv
	}
	line("a=%s", dir)
	for _, c := range s.Crypto {
		line("%s", c.Attribute())
	}
	for _, c := range s.Candidates {
		line("a=%s", c)
	}
	return b.Bytes()
}

var staticRTPMap = map[uint8]string{0: "PCMU/8000", 8: "PCMA/8000"}

// ParseSDP reads a body with exactly one m-line, which must be
// "m=audio <port> RTP/SAVP …" listing format 0 (PCMU). It needs v=, o=, s=,
// t= and a c= at session or media level with an IP literal (no FQDN, no
// multicast). a=crypto lines are media-level only; lines with suites or
// parameters we do not implement are skipped (Answer then reports
// ErrNoCommonSuite if none is left), malformed ones fail the parse. Other
// attributes are ignored.
func ParseSDP(body []byte) (SDP, error) {
	if len(body) > maxSDPSize {
		return SDP{}, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrSDP, len(body), maxSDPSize)
	}
	var (
		out                     SDP
		sessionAddr, mediaAddr  netip.Addr
		sessionDir, mediaDir    string
		seen                    = map[byte]bool{}
		inMedia, pcmu           bool
		port                    uint16
		tags                    = map[int]bool{}
		cryptoLines, candidates int
	)
	lines := strings.Split(strings.TrimRight(string(body), "\r\n"), "\n")
	for i, raw := range lines {
		l := strings.TrimSuffix(raw, "\r")
		if len(l) < 2 || l[1] != '=' {
			return SDP{}, fmt.Errorf("%w: line %d is not <type>=<value>", ErrSDP, i+1)
		}
		typ, val := l[0], l[2:]
		if i == 0 && (typ != 'v' || val != "0") {
			return SDP{}, fmt.Errorf("%w: first line must be v=0", ErrSDP)
		}
		if !inMedia {
			seen[typ] = true
		}
		switch typ {
		case 'o':
			f := strings.Fields(val)
			if len(f) != 6 {
				return SDP{}, fmt.Errorf("%w: o= needs 6 fields", ErrSDP)
			}
			// sess-id and sess-version are digit strings that may exceed
			// 64 bits in other implementations; keep them only if they fit.
			out.SessionID, _ = strconv.ParseUint(f[1], 10, 64)
			out.SessionVersion, _ = strconv.ParseUint(f[2], 10, 64)
		case 'c':
			a, err := parseConnection(val)
			if err != nil {
				return SDP{}, err
			}
			if inMedia {
				mediaAddr = a
			} else {
				sessionAddr = a
			}
		case 'm':
			if inMedia {
				return SDP{}, fmt.Errorf("%w: more than one m= line (only one audio stream is supported)", ErrSDP)
			}
			inMedia = true
			var err error
			if port, pcmu, err = parseMediaLine(val); err != nil {
				return SDP{}, err
			}
		case 'a':
			name, value, _ := strings.Cut(val, ":")
			switch name {
			case SendRecv, SendOnly, RecvOnly, Inactive:
				if inMedia {
					mediaDir = name
				} else {
					sessionDir = name
				}
			case "rtpmap":
				if inMedia && strings.HasPrefix(value, "0 ") && !strings.EqualFold(value, "0 PCMU/8000") {
					return SDP{}, fmt.Errorf("%w: payload type 0 mapped to %q", ErrSDP, value[2:])
				}
			case "crypto":
				if !inMedia {
					return SDP{}, fmt.Errorf("%w: a=crypto at session level (RFC 4568 allows it per media only)", ErrSDP)
				}
				if cryptoLines++; cryptoLines > maxCryptoLines {
					return SDP{}, fmt.Errorf("%w: more than %d a=crypto lines", ErrSDP, maxCryptoLines)
				}
				c, err := ParseCrypto(val)
				if errors.Is(err, ErrUnknownSuite) || errors.Is(err, ErrCryptoParam) {
					continue
				}
				if err != nil {
					return SDP{}, err
				}
				if tags[c.Tag] {
					return SDP{}, fmt.Errorf("%w: a=crypto tag %d used twice", ErrSDP, c.Tag)
				}
				tags[c.Tag] = true
				out.Crypto = append(out.Crypto, c)
			case "candidate":
				if candidates++; candidates > maxCandidateRows {
					return SDP{}, fmt.Errorf("%w: more than %d a=candidate lines", ErrSDP, maxCandidateRows)
				}
				c, err := ParseCandidate(val)
				if err != nil {
					return SDP{}, err
				}
				out.Candidates = append(out.Candidates, c)
			}
		}
	}
	for _, t := range []byte{'o', 's', 't'} {
		if !seen[t] {
			return SDP{}, fmt.Errorf("%w: no %c= line", ErrSDP, t)
		}
	}
	if !inMedia {
		return SDP{}, fmt.Errorf("%w: no m= line", ErrSDP)
	}
	if !pcmu {
		return SDP{}, ErrNoCodec
	}
	addr := mediaAddr
	if !addr.IsValid() {
		addr = sessionAddr
	}
	if !addr.IsValid() {
		return SDP{}, fmt.Errorf("%w: no c= line", ErrSDP)
	}
	out.Addr = netip.AddrPortFrom(addr, port)
	out.PayloadType = PayloadPCMU
	out.Direction = SendRecv
	if sessionDir != "" {
		out.Direction = sessionDir
	}
	if mediaDir != "" {
		out.Direction = mediaDir
	}
	return out, nil
}

// parseConnection reads "IN IP4 <addr>" or "IN IP6 <addr>".
func parseConnection(val string) (netip.Addr, error) {
	f := strings.Fields(val)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return netip.Addr{}, fmt.Errorf("%w: c=%s", ErrSDP, val)
	}
	a, err := netip.ParseAddr(f[2])
	if err != nil || a.Zone() != "" || a.IsMulticast() || (f[1] == "IP4") != a.Is4() {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q is not a unicast %s literal", ErrSDP, f[2], f[1])
	}
	return a.Unmap(), nil
}

// parseMediaLine reads "audio <port> RTP/SAVP <fmt> …".
func parseMediaLine(val string) (port uint16, pcmu bool, err error) {
	f := strings.Fields(val)
	if len(f) < 4 {
		return 0, false, fmt.Errorf("%w: m=%s", ErrSDP, val)
	}
	if f[0] != "audio" {
		return 0, false, fmt.Errorf("%w: m=%s stream (audio only)", ErrSDP, f[0])
	}
	p, err := strconv.ParseUint(f[1], 10, 16)
	if err != nil {
		return 0, false, fmt.Errorf("%w: m= port %q", ErrSDP, f[1])
	}
	if f[2] != "RTP/SAVP" {
		if f[2] == "RTP/AVP" {
			return 0, false, ErrNoSRTP
		}
		return 0, false, fmt.Errorf("%w: transport %q (want RTP/SAVP)", ErrNoSRTP, f[2])
	}
	for _, fm := range f[3:] {
		n, err := strconv.ParseUint(fm, 10, 8)
		if err != nil || n > 127 {
			return 0, false, fmt.Errorf("%w: format %q", ErrSDP, fm)
		}
		if uint8(n) == PayloadPCMU {
			pcmu = true
		}
	}
	return uint16(p), pcmu, nil
}

// Candidate is an ICE candidate attribute (RFC 8839 §5.1). The phone
// offers only its TURN relayed address; it does not run ICE checks.
type Candidate struct {
	Foundation string
	Component  int    // 1 = RTP
	Transport  string // "UDP"
	Priority   uint32
	Addr       netip.AddrPort
	Type       string         // host, srflx, prflx, relay
	Related    netip.AddrPort // raddr/rport; zero when absent
}

// RelayCandidate is the relay candidate for a TURN relayed address, with
// the RFC 8445 §5.1.2.1 priority for type preference 0 and local
// preference 65535.
func RelayCandidate(relayed netip.AddrPort) Candidate {
	return Candidate{
		Foundation: "1",
		Component:  1,
		Transport:  "UDP",
		Priority:   65535<<8 | (256 - 1),
		Addr:       relayed,
		Type:       "relay",
	}
}

// String is the attribute value "candidate:…" (without "a=").
func (c Candidate) String() string {
	s := fmt.Sprintf("candidate:%s %d %s %d %s %d typ %s", c.Foundation, c.Component, c.Transport,
		c.Priority, c.Addr.Addr().Unmap(), c.Addr.Port(), c.Type)
	if c.Related.IsValid() {
		s += fmt.Sprintf(" raddr %s rport %d", c.Related.Addr().Unmap(), c.Related.Port())
	}
	return s
}

// ParseCandidate reads a candidate attribute value, with or without the
// "candidate:" prefix. The address must be an IP literal. Extension
// attributes after raddr/rport are ignored, as RFC 8839 §5.1 says.
func ParseCandidate(val string) (Candidate, error) {
	val = strings.TrimPrefix(val, "candidate:")
	f := strings.Fields(val)
	bad := func(what string) (Candidate, error) {
		return Candidate{}, fmt.Errorf("%w: a=candidate %s", ErrSDP, what)
	}
	if len(f) < 8 || f[6] != "typ" || len(f)%2 != 0 {
		return bad("needs <foundation> <component> <transport> <priority> <address> <port> typ <type>")
	}
	comp, err := strconv.ParseUint(f[1], 10, 8)
	if err != nil || comp == 0 {
		return bad("component " + f[1])
	}
	prio, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil {
		return bad("priority " + f[3])
	}
	ap, err := parseAddrPort(f[4], f[5])
	if err != nil {
		return bad(err.Error())
	}
	c := Candidate{Foundation: f[0], Component: int(comp), Transport: f[2], Priority: uint32(prio), Addr: ap, Type: f[7]}
	var raddr, rport string
	for i := 8; i+1 < len(f); i += 2 {
		switch f[i] {
		case "raddr":
			raddr = f[i+1]
		case "rport":
			rport = f[i+1]
		}
	}
	if raddr != "" && rport != "" {
		if c.Related, err = parseAddrPort(raddr, rport); err != nil {
			return bad("related " + err.Error())
		}
	}
	return c, nil
}

func parseAddrPort(addr, port string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q is not an IP literal", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q", port)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}
