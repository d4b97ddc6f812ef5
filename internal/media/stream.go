package media

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// Packetisation of the simulated phone's G.711 stream (RFC 3551 §4.5.14).
const (
	// Ptime is the packet interval.
	Ptime = 20 * time.Millisecond
	// SamplesPerPacket is the payload size in bytes and the timestamp step:
	// 20 ms at 8000 one-byte samples a second.
	SamplesPerPacket = 160
)

// PlaintextMarker fills every payload the Stream sends, so a test can look
// for it in the bytes a relay handled: finding it means plaintext crossed
// the wire.
const PlaintextMarker = "EDGEWAY-PLAINTEXT"

// DefaultDrain is how long Wait keeps receiving after the last packet was
// sent, for the peer's packets still in flight.
const DefaultDrain = 300 * time.Millisecond

// ErrStreamStarted: Start was called twice on one Stream.
var ErrStreamStarted = errors.New("media: stream already started")

// Stream sends and receives one call's audio as SRTP over a packet
// connection, normally a TURN relayed connection (Relay.PacketConn).
//
// Concurrency: Start launches two goroutines. The sender owns the RTP
// sequence number, timestamp and SSRC; it stops after the duration, when
// ctx ends, or at Stop. The receiver owns the read buffer; it stops when ctx
// ends or at Stop (Wait calls Stop after the drain), which it notices
// because Stop sets a past read deadline on conn. Stats and the first error
// are under mu. Stop and Wait return only after both goroutines have ended.
// The Stream does not close conn: its owner (the Relay) does. A Stream is
// used once.
//
// Datagrams are accepted from any source: the TURN server already drops
// what comes from addresses without a permission, and SRTP authentication
// decides what is played.
type Stream struct {
	// Play, if set before Start, is called from the receiving goroutine
	// with each new, authenticated PCMU payload; it must not keep payload.
	Play func(seq uint16, payload []byte)
	// Drain, if set before Start, overrides DefaultDrain for Wait.
	Drain time.Duration

	mu       sync.Mutex
	started  bool
	stats    Stats
	rx       receiveStats
	err      error // first I/O error of either goroutine
	cancel   context.CancelFunc
	sendDone chan struct{}
	recvDone chan struct{}
}

// Start begins sending PCMU packets (payload type 0, 160-byte payloads,
// timestamp +160 and sequence +1 per packet, random SSRC and initial
// sequence and timestamp) every Ptime to peer, protected by sess, for
// duration (rounded up to whole packets), and receiving and unprotecting
// the peer's packets until Stop. ctx bounds both.
func (s *Stream) Start(ctx context.Context, conn net.PacketConn, peer net.Addr, sess *Session, duration time.Duration) error {
	if conn == nil || peer == nil || sess == nil {
		return errors.New("media: Start needs a connection, a peer and a session")
	}
	if duration <= 0 {
		return fmt.Errorf("media: stream duration %v must be positive", duration)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return ErrStreamStarted
	}
	// A previous Stream on the same conn may have left a past deadline.
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("media: clearing read deadline: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s.started, s.cancel = true, cancel
	s.sendDone, s.recvDone = make(chan struct{}), make(chan struct{})
	packets := int((duration + Ptime - 1) / Ptime)
	unblock := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	go func() {
		defer close(s.sendDone)
		s.send(ctx, conn, peer, sess, packets)
	}()
	go func() {
		defer close(s.recvDone)
		defer unblock()
		s.receive(ctx, conn, sess)
	}()
	return nil
}

// SendDone is closed when the sender has finished. It is nil before Start.
func (s *Stream) SendDone() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendDone
}

// Stop ends sending and receiving at once and waits for both goroutines.
// It is safe to call more than once, and before Start.
func (s *Stream) Stop() {
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return
	}
	cancel, sendDone, recvDone := s.cancel, s.sendDone, s.recvDone
	s.mu.Unlock()
	cancel()
	<-sendDone
	<-recvDone
}

// Wait lets the sender finish its duration, keeps receiving for the drain
// time, then stops and returns the final Stats and the first I/O error.
func (s *Stream) Wait() (Stats, error) {
	s.mu.Lock()
	started, sendDone, recvDone := s.started, s.sendDone, s.recvDone
	drain := s.Drain
	s.mu.Unlock()
	if !started {
		return Stats{}, nil
	}
	if drain <= 0 {
		drain = DefaultDrain
	}
	<-sendDone
	t := time.NewTimer(drain)
	select {
	case <-t.C:
	case <-recvDone:
	}
	t.Stop()
	s.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot(), s.err
}

// Stats is a snapshot of the counters so far.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshot()
}

func (s *Stream) snapshot() Stats {
	st := s.stats
	st.Lost = s.rx.lost()
	st.Reordered = s.rx.reordered
	st.Duplicates += s.rx.dups
	st.JitterMs = s.rx.jitterMs()
	return st
}

func (s *Stream) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// payload is one packet of the marker pattern.
func payload() []byte {
	p := make([]byte, SamplesPerPacket)
	for i := range p {
		p[i] = PlaintextMarker[i%len(PlaintextMarker)]
	}
	return p
}

func (s *Stream) send(ctx context.Context, conn net.PacketConn, peer net.Addr, sess *Session, packets int) {
	pkt := rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			PayloadType:    PayloadPCMU,
			SequenceNumber: uint16(rand.Uint32()),
			Timestamp:      rand.Uint32(),
			SSRC:           rand.Uint32(),
			Marker:         true, // the first packet starts a talkspurt
		},
		Payload: payload(),
	}
	ticker := time.NewTicker(Ptime)
	defer ticker.Stop()
	for i := range packets {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
		raw, err := pkt.Marshal()
		if err == nil {
			raw, err = sess.Protect(raw)
		}
		if err == nil {
			_, err = conn.WriteTo(raw, peer)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.setErr(fmt.Errorf("media: sending packet %d to %s: %w", i, peer, err))
			}
			return
		}
		s.mu.Lock()
		s.stats.Sent++
		s.mu.Unlock()
		pkt.Marker = false
		pkt.SequenceNumber++
		pkt.Timestamp += SamplesPerPacket
	}
}

func (s *Stream) receive(ctx context.Context, conn net.PacketConn, sess *Session) {
	buf := make([]byte, 1500)
	var hdr rtp.Header
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.setErr(fmt.Errorf("media: receiving: %w", err))
			return
		}
		arrival := time.Now()
		plain, err := sess.Unprotect(buf[:n])
		var hdrLen int
		if err == nil {
			hdrLen, err = hdr.Unmarshal(plain)
			if err == nil && hdr.PayloadType != PayloadPCMU {
				err = fmt.Errorf("%w: payload type %d", ErrMalformed, hdr.PayloadType)
			}
		}
		s.mu.Lock()
		s.stats.Received++
		play := false
		switch {
		case errors.Is(err, ErrAuth):
			s.stats.AuthFailures++
		case errors.Is(err, ErrReplay):
			s.stats.Duplicates++
		case err != nil:
			s.stats.Malformed++
		case !s.rx.observe(hdr.SequenceNumber, hdr.Timestamp, arrival):
			// a repeat the replay check let through: counted in rx.dups
		default:
			play = true
			s.stats.PlayedOut++
		}
		s.mu.Unlock()
		if play && s.Play != nil {
			s.Play(hdr.SequenceNumber, plain[hdrLen:])
		}
	}
}
