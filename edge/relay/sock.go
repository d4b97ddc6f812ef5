package relay

// The UDP socket pion's TURN server reads and writes through
// (turnSocket), and the answer rewriting it shares with the TCP/TLS
// connections (limiter.go). What it adds to pion:
//   - ChannelData over UDP without padding (unpaddedUDP);
//   - a ChannelBind refused by the peer policy answered 403 Forbidden, as
//     RFC 8656 §12.2 says, where pion answers 401 (channelBindRefusal);
//   - 300 Try Alternate where pion answers 486 (tryAlternate, alternate.go).

import (
	"encoding/binary"
	"net"

	"github.com/pion/stun/v4"
)

// turnSocket is the TURN UDP socket as pion sees it.
type turnSocket struct {
	net.PacketConn
	t *Server
}

func (s *turnSocket) WriteTo(p []byte, addr net.Addr) (int, error) {
	fixed, ok := s.t.channelBindRefusal(p, addr)
	if !ok {
		fixed, ok = s.t.tryAlternate(p, addr)
	}
	if ok {
		if _, err := s.PacketConn.WriteTo(fixed, addr); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return unpaddedUDP{s.PacketConn}.WriteTo(p, addr)
}

var channelBindError = stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse).Value()

// channelBindRefusal rewrites pion's answer to a ChannelBind whose peer
// the PermissionHandler refused — 401 Unauthorized with MESSAGE-INTEGRITY,
// which no other ChannelBind path sends (a 401 challenge carries none) —
// into 403 Forbidden signed with the same key (RFC 8656 §12.2: "the server
// rejects the request with a 403 (Forbidden) error"). A 401 tells a client
// its credential is wrong and invites it to retry; the peer is the
// problem. ok is false for anything else, which is written unchanged.
func (t *Server) channelBindRefusal(p []byte, to net.Addr) ([]byte, bool) {
	if len(p) < 20 || binary.BigEndian.Uint16(p) != channelBindError || to == nil {
		return nil, false
	}
	m := &stun.Message{Raw: append([]byte(nil), p...)}
	var code stun.ErrorCodeAttribute
	if m.Decode() != nil || code.GetFrom(m) != nil || code.Code != stun.CodeUnauthorized || !m.Contains(stun.AttrMessageIntegrity) {
		return nil, false
	}
	key, ok := t.chanBindKeys.Get(to.String())
	if !ok {
		return nil, false
	}
	out, err := stun.Build(&stun.Message{TransactionID: m.TransactionID}, stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeForbidden, Reason: []byte("Forbidden")}, stun.MessageIntegrity(key))
	if err != nil {
		return nil, false
	}
	return out.Raw, true
}

// unpaddedUDP sends ChannelData messages over UDP without the padding
// pion/turn adds to a multiple of 4 bytes. RFC 8656 section 12.5 makes
// that padding optional over UDP, and clients that take the datagram's
// length for the data's (libre, hence baresip) then see two stray bytes
// on every G.711 SRTP packet (12 + 160 + 10 = 182) and fail its
// authentication. coturn does not pad over UDP either.
type unpaddedUDP struct{ net.PacketConn }

func (u unpaddedUDP) WriteTo(p []byte, addr net.Addr) (int, error) {
	if n := channelDataLen(p); n < len(p) {
		if _, err := u.PacketConn.WriteTo(p[:n], addr); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return u.PacketConn.WriteTo(p, addr)
}

// channelDataLen is the length of the ChannelData message in p without its
// padding (RFC 8656 section 12.4: channel numbers 0x4000-0x4FFF, the
// 16-bit length counts the application data only), or len(p) when p is
// not ChannelData or its padding is not 1 to 3 bytes.
func channelDataLen(p []byte) int {
	if len(p) < 4 || p[0]&0xF0 != 0x40 {
		return len(p)
	}
	n := 4 + int(binary.BigEndian.Uint16(p[2:4]))
	if n < len(p) && len(p)-n < 4 {
		return n
	}
	return len(p)
}
