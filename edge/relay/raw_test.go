package relay

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// rawTURN is a TURN client written with pion/stun messages only, so tests
// can send what pion's client never would: IPv4-mapped and NAT64
// spellings of a peer, Connect on a UDP allocation, a Refresh after
// revocation.
type rawTURN struct {
	t           testing.TB
	conn        net.Conn // UDP (connected) or TCP
	stream      bool
	user, realm string
	key         []byte
	nonce       stun.Nonce
}

func dialRaw(t testing.TB, network, addr, user, pass string) *rawTURN {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawTURN{t: t, conn: c, stream: network != "udp" && network != "udp4" && network != "udp6",
		user: user, realm: testRealm, key: stun.NewLongTermIntegrity(user, testRealm, pass)}
}

// send writes m (framed as is: STUN over TCP needs no extra framing).
func (c *rawTURN) send(raw []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(raw); err != nil {
		c.t.Fatalf("raw TURN write: %v", err)
	}
}

// read returns the next STUN message (skipping anything else), or nil
// when none arrives within d or the connection ends.
func (c *rawTURN) read(d time.Duration) *stun.Message {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = c.conn.SetReadDeadline(time.Time{}) }()
	for {
		var raw []byte
		if c.stream {
			hdr := make([]byte, 4)
			if _, err := io.ReadFull(c.conn, hdr); err != nil {
				return nil
			}
			n := int(binary.BigEndian.Uint16(hdr[2:]))
			if hdr[0]&0xC0 == 0 { // STUN: 20-byte header
				n += 16
			} else { // ChannelData, padded over TCP
				n = (n + 3) &^ 3
			}
			rest := make([]byte, n)
			if _, err := io.ReadFull(c.conn, rest); err != nil {
				return nil
			}
			raw = append(hdr, rest...)
		} else {
			buf := make([]byte, 2048)
			n, err := c.conn.Read(buf)
			if err != nil {
				return nil
			}
			raw = buf[:n]
		}
		m := &stun.Message{Raw: raw}
		if m.Decode() == nil {
			return m
		}
	}
}

// roundTrip sends a request and returns the response with its transaction
// ID (nil after 5 s without one).
func (c *rawTURN) roundTrip(setters ...stun.Setter) *stun.Message {
	c.t.Helper()
	req := stun.MustBuild(setters...)
	c.send(req.Raw)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := c.read(time.Until(deadline))
		if m == nil {
			return nil
		}
		if m.TransactionID == req.TransactionID {
			return m
		}
	}
	return nil
}

// authed sends an authenticated request of method (RFC 8489 §9.2), getting
// a nonce first when it has none, and returns the response.
func (c *rawTURN) authed(method stun.Method, id [stun.TransactionIDSize]byte, attrs ...stun.Setter) *stun.Message {
	c.t.Helper()
	for range 2 {
		if len(c.nonce) == 0 {
			ch := c.roundTrip(stun.NewTransactionIDSetter(stun.NewTransactionID()), stun.NewType(method, stun.ClassRequest),
				stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}})
			if ch == nil || !ch.Contains(stun.AttrNonce) {
				c.t.Fatalf("no nonce in the challenge to %v: %v", method, ch)
			}
			_ = c.nonce.GetFrom(ch)
		}
		s := append([]stun.Setter{stun.NewTransactionIDSetter(id), stun.NewType(method, stun.ClassRequest)}, attrs...)
		s = append(s, stun.NewUsername(c.user), stun.NewRealm(c.realm), c.nonce, stun.MessageIntegrity(c.key), stun.Fingerprint)
		res := c.roundTrip(s...)
		if code := errorCode(res); code == stun.CodeStaleNonce {
			c.nonce = nil
			id = stun.NewTransactionID()
			continue
		}
		return res
	}
	return nil
}

func errorCode(m *stun.Message) stun.ErrorCode {
	if m == nil {
		return -1
	}
	var ec stun.ErrorCodeAttribute
	if ec.GetFrom(m) != nil {
		return 0
	}
	return ec.Code
}

// allocate asks for a UDP relay (IPv6 with v6) and returns the response.
func (c *rawTURN) allocate(v6 bool) *stun.Message {
	c.t.Helper()
	attrs := []stun.Setter{stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}}
	if v6 {
		attrs = append(attrs, stun.RawAttribute{Type: stun.AttrRequestedAddressFamily, Value: []byte{2, 0, 0, 0}})
	}
	return c.authed(stun.MethodAllocate, stun.NewTransactionID(), attrs...)
}

func (c *rawTURN) refresh(lifetime uint32) *stun.Message {
	c.t.Helper()
	return c.authed(stun.MethodRefresh, stun.NewTransactionID(), stun.RawAttribute{Type: stun.AttrLifetime, Value: binary.BigEndian.AppendUint32(nil, lifetime)})
}

// peerRequest sends CreatePermission, ChannelBind or Connect for peer,
// spelled as given: an IPv4-mapped address goes out as a 16-byte IPv6
// XOR-PEER-ADDRESS, which pion's own client would shorten to IPv4.
func (c *rawTURN) peerRequest(method stun.Method, peer netip.AddrPort) *stun.Message {
	c.t.Helper()
	id := stun.NewTransactionID()
	attrs := []stun.Setter{xorPeerAddress(peer, id)}
	if method == stun.MethodChannelBind {
		attrs = append(attrs, stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x01, 0, 0}})
	}
	return c.authed(method, id, attrs...)
}

// xorPeerAddress encodes XOR-PEER-ADDRESS (RFC 8489 §14.2) for the
// transaction id: family by the address's length, never unmapped.
func xorPeerAddress(peer netip.AddrPort, id [stun.TransactionIDSize]byte) stun.RawAttribute {
	var key []byte
	key = binary.BigEndian.AppendUint32(key, stunMagicCookie)
	key = append(key, id[:]...)
	v := []byte{0, 1}
	addr := peer.Addr().AsSlice()
	if peer.Addr().Is6() {
		v[1] = 2
	}
	v = binary.BigEndian.AppendUint16(v, peer.Port()^uint16(stunMagicCookie>>16))
	for i, b := range addr {
		v = append(v, b^key[i])
	}
	return stun.RawAttribute{Type: stun.AttrXORPeerAddress, Value: v}
}

func relayedAddr(t testing.TB, m *stun.Message) netip.AddrPort {
	t.Helper()
	var a stun.XORMappedAddress
	if err := a.GetFromAs(m, stun.AttrXORRelayedAddress); err != nil {
		t.Fatalf("no XOR-RELAYED-ADDRESS in %v: %v", m, err)
	}
	ap, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ap.Unmap(), uint16(a.Port))
}

func isSuccess(m *stun.Message) bool { return m != nil && m.Type.Class == stun.ClassSuccessResponse }

const stunMagicCookie = 0x2112A442 // RFC 8489 §5

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
