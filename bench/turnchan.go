package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pion/stun/v4"

	"github.com/edgeway/edgeway/internal/media"
)

// chanStream is one stream of a TURN load as a phone's media stack runs
// it: a UDP socket of its own, connected to the server, holding an
// allocation with one channel bound to the echo peer (RFC 8656 §12), and
// the media sent as ChannelData. It is written with pion/stun messages
// alone, not pion's TURN client, whose read loop and per-datagram
// hand-offs cost the generator more than the server it measures: with it
// a thousand streams saturated two CPUs on the generator's side.
type chanStream struct {
	conn  *net.UDPConn
	user  string
	realm string
	key   stun.MessageIntegrity
	nonce stun.Nonce
}

// turnChannel is the channel number each stream binds (the first valid
// one, RFC 8656 §12: 0x4000-0x4FFF).
const turnChannel = 0x4000

// dialChanStream allocates a relay on server (UDP) and binds a channel to
// peer, with the long-term credential user/pass (TURN REST API). realm
// "" takes the server's.
func dialChanStream(ctx context.Context, server string, peer *net.UDPAddr, user, pass, realm string) (*chanStream, error) {
	raddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, err
	}
	s := &chanStream{conn: conn, user: user}
	// An unauthenticated Allocate learns the realm and nonce (401).
	res, err := s.do(ctx, stun.NewType(stun.MethodAllocate, stun.ClassRequest), false, reqTransportUDP)
	if err != nil {
		conn.Close()
		return nil, err
	}
	var r stun.Realm
	if err := r.GetFrom(res); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: TURN allocate: no realm in the challenge: %w", err)
	}
	if realm == "" {
		realm = r.String()
	}
	s.realm = realm
	s.key = stun.NewLongTermIntegrity(user, realm, pass)
	if err := s.nonce.GetFrom(res); err != nil {
		conn.Close()
		return nil, fmt.Errorf("bench: TURN allocate: no nonce in the challenge: %w", err)
	}
	if _, err := s.do(ctx, stun.NewType(stun.MethodAllocate, stun.ClassRequest), true, reqTransportUDP); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := s.do(ctx, stun.NewType(stun.MethodChannelBind, stun.ClassRequest), true,
		channelNumber(turnChannel), &stun.XORMappedAddress{IP: peer.IP, Port: peer.Port}); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// reqTransportUDP is REQUESTED-TRANSPORT: UDP (RFC 8656 §18.7).
var reqTransportUDP = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}

// channelNumber is the CHANNEL-NUMBER attribute (RFC 8656 §18.1).
func channelNumber(n uint16) stun.RawAttribute {
	return stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{byte(n >> 8), byte(n), 0, 0}}
}

// do sends one request and waits for its answer (retransmitting over UDP,
// RFC 5389 §7.2.1, bounded by ctx). A 438 Stale Nonce is retried once
// with the new nonce. Without auth, a 401 is the answer wanted (the
// challenge); with it, any error response is an error (*media.TURNError).
func (s *chanStream) do(ctx context.Context, t stun.MessageType, auth bool, attrs ...stun.Setter) (*stun.Message, error) {
	for attempt := 0; ; attempt++ {
		setters := []stun.Setter{stun.TransactionID, t}
		for _, a := range attrs {
			if x, ok := a.(*stun.XORMappedAddress); ok {
				a = xorPeer{x}
			}
			setters = append(setters, a)
		}
		if auth {
			setters = append(setters, stun.NewUsername(s.user), stun.NewRealm(s.realm), s.nonce, s.key)
		}
		setters = append(setters, stun.Fingerprint)
		req, err := stun.Build(setters...)
		if err != nil {
			return nil, err
		}
		res, err := s.roundTrip(ctx, req)
		if err != nil {
			return nil, err
		}
		if res.Type.Class == stun.ClassSuccessResponse {
			return res, nil
		}
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(res)
		switch {
		case !auth && code.Code == stun.CodeUnauthorized:
			return res, nil
		case auth && code.Code == stun.CodeStaleNonce && attempt == 0:
			if err := s.nonce.GetFrom(res); err != nil {
				return nil, err
			}
			continue
		}
		return nil, &media.TURNError{Op: strings.ToLower(t.Method.String()), Code: int(code.Code), Reason: string(code.Reason)}
	}
}

// xorPeer writes an XORMappedAddress as XOR-PEER-ADDRESS.
type xorPeer struct{ a *stun.XORMappedAddress }

func (p xorPeer) AddTo(m *stun.Message) error { return p.a.AddToAs(m, stun.AttrXORPeerAddress) }

// roundTrip sends req until a response with its transaction ID arrives:
// after 100 ms, then doubling, up to ctx's end.
func (s *chanStream) roundTrip(ctx context.Context, req *stun.Message) (*stun.Message, error) {
	buf := make([]byte, 1500)
	rto := 100 * time.Millisecond
	for {
		if _, err := s.conn.Write(req.Raw); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(rto)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = s.conn.SetReadDeadline(deadline)
		for {
			n, err := s.conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, err
			}
			if !stun.IsMessage(buf[:n]) {
				continue // a late datagram
			}
			res := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if res.Decode() != nil || res.TransactionID != req.TransactionID {
				continue
			}
			_ = s.conn.SetReadDeadline(time.Time{})
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bench: TURN %s: no answer: %w", req.Type.Method, ctx.Err())
		}
		rto = min(2*rto, 1600*time.Millisecond)
	}
}

// send writes payload as ChannelData on the stream's channel; frame is
// scratch space of at least 4+len(payload) bytes (RFC 8656 §12.4).
func (s *chanStream) send(frame, payload []byte) error {
	binary.BigEndian.PutUint16(frame[0:], turnChannel)
	binary.BigEndian.PutUint16(frame[2:], uint16(len(payload)))
	n := copy(frame[4:], payload)
	_, err := s.conn.Write(frame[:4+n])
	return err
}

// recv reads the next ChannelData on the stream's channel into buf and
// returns its data; STUN and anything else is skipped.
func (s *chanStream) recv(buf []byte) ([]byte, error) {
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return nil, err
		}
		if n < 4 || binary.BigEndian.Uint16(buf) != turnChannel {
			continue
		}
		l := int(binary.BigEndian.Uint16(buf[2:]))
		if 4+l > n {
			continue
		}
		return buf[4 : 4+l], nil
	}
}

// close releases the allocation — a Refresh with LIFETIME 0 (RFC 8656
// §7.2), sent once and not waited for: a thousand streams end at once, and
// the server's allocation lifetime covers a lost one — and closes the
// socket, which ends a recv.
func (s *chanStream) close() {
	if req, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}},
		stun.NewUsername(s.user), stun.NewRealm(s.realm), s.nonce, s.key, stun.Fingerprint); err == nil {
		_, _ = s.conn.Write(req.Raw)
	}
	s.conn.Close()
}
