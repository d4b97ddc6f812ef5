package media

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// leg is one phone's side of a call set up by offer/answer over two TURN
// allocations on srv.
type leg struct {
	relay   *Relay
	sess    *Session
	peer    net.Addr // the relayed address from the other side's SDP
	stream  *Stream
	played  atomic.Int64
	garbled atomic.Int64 // played payloads that are not what was sent
}

// setupCall runs the SDES offer/answer through Marshal/ParseSDP as the
// INVITE and 200 OK bodies would carry it, and installs permissions.
func setupCall(t *testing.T, srv *testTURN, callerTransport, calleeTransport, suite string) (caller, callee *leg) {
	t.Helper()
	caller = &leg{relay: srv.allocate(t, callerTransport, "alice")}
	callee = &leg{relay: srv.allocate(t, calleeTransport, "bob")}

	offer, err := NewOffer(caller.relay.Addr(), suite)
	if err != nil {
		t.Fatal(err)
	}
	offer.Candidates = []Candidate{RelayCandidate(caller.relay.Addr())}
	gotOffer, err := ParseSDP(offer.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	answer, chosen, err := Answer(gotOffer, callee.relay.Addr())
	if err != nil {
		t.Fatal(err)
	}
	gotAnswer, err := ParseSDP(answer.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	local, remote, err := AcceptAnswer(offer, gotAnswer)
	if err != nil {
		t.Fatal(err)
	}
	if caller.sess, err = NewSession(local, remote); err != nil {
		t.Fatal(err)
	}
	if callee.sess, err = NewSession(answer.Crypto[0], chosen); err != nil {
		t.Fatal(err)
	}
	caller.peer, callee.peer = udpAddr(gotAnswer.Addr), udpAddr(gotOffer.Addr)
	if err := caller.relay.Permit(caller.peer); err != nil {
		t.Fatal(err)
	}
	if err := callee.relay.Permit(callee.peer); err != nil {
		t.Fatal(err)
	}
	return caller, callee
}

// run streams both legs for d and returns their final stats.
func run(t *testing.T, d time.Duration, legs ...*leg) []Stats {
	t.Helper()
	want := payload()
	for _, l := range legs {
		l.stream = &Stream{Play: func(_ uint16, p []byte) {
			l.played.Add(1)
			if !bytes.Equal(p, want) {
				l.garbled.Add(1)
			}
		}}
		if err := l.stream.Start(t.Context(), l.relay.PacketConn(), l.peer, l.sess, d); err != nil {
			t.Fatal(err)
		}
	}
	stats := make([]Stats, len(legs))
	var wg sync.WaitGroup
	for i, l := range legs {
		wg.Go(func() {
			var err error
			if stats[i], err = l.stream.Wait(); err != nil {
				t.Errorf("leg %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	return stats
}

// Acceptance 1 in small: two phones exchange SRTP both ways through two
// TURN allocations; nothing is lost, everything authenticates, and the
// relay never handles the plaintext payload.
func TestMediaThroughTURN(t *testing.T) {
	for _, tc := range []struct {
		name           string
		caller, callee string // transports to the TURN server
		suite          string
	}{
		{"udp/" + SuiteAESCM128HMACSHA1_80, "udp", "udp", SuiteAESCM128HMACSHA1_80},
		{"tcp+tls/" + SuiteAEADAES128GCM, "tcp", "tls", SuiteAEADAES128GCM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startTURN(t)
			caller, callee := setupCall(t, srv, tc.caller, tc.callee, tc.suite)

			// Control: the captures do see payloads that cross the relay.
			if _, err := caller.relay.PacketConn().WriteTo([]byte(PlaintextMarker), caller.peer); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = callee.relay.PacketConn().SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := callee.relay.PacketConn().ReadFrom(buf); err != nil {
				t.Fatal(err)
			}
			if !srv.wire.contains(PlaintextMarker) || !srv.relayed.contains(PlaintextMarker) {
				t.Fatal("control: the captures missed a plaintext datagram")
			}
			srv.wire.reset()
			srv.relayed.reset()

			const packets = 100
			stats := run(t, packets*Ptime, caller, callee)
			for i, st := range stats {
				peerSent := stats[1-i].Sent
				t.Logf("leg %d: %+v", i, st)
				if st.Sent != packets {
					t.Errorf("leg %d sent %d packets, want %d", i, st.Sent, packets)
				}
				if st.Received != peerSent || st.PlayedOut != peerSent || st.Lost != 0 ||
					st.AuthFailures != 0 || st.Malformed != 0 || st.Duplicates != 0 {
					t.Errorf("leg %d: %+v; want all %d of the peer's packets received, authenticated and played", i, st, peerSent)
				}
				if st.JitterMs < 0 || st.JitterMs > 20 {
					t.Errorf("leg %d: jitter %.2f ms on loopback", i, st.JitterMs)
				}
			}
			for i, l := range []*leg{caller, callee} {
				if l.garbled.Load() != 0 || l.played.Load() != int64(stats[i].PlayedOut) {
					t.Errorf("leg %d: %d played, %d garbled", i, l.played.Load(), l.garbled.Load())
				}
			}

			wireBytes, wirePackets := srv.wire.stats()
			relayBytes, relayPackets := srv.relayed.stats()
			t.Logf("server handled %d bytes in %d reads/writes from clients, relayed %d bytes in %d datagrams",
				wireBytes, wirePackets, relayBytes, relayPackets)
			// Every SRTP packet is written by one relay socket and read by the other.
			minSRTP := 12 + SamplesPerPacket + 10
			if relayPackets < 4*packets || relayBytes < 4*packets*minSRTP || wireBytes < 4*packets*minSRTP {
				t.Errorf("the captures saw too little traffic: %d/%d bytes", wireBytes, relayBytes)
			}
			if srv.wire.contains(PlaintextMarker) || srv.relayed.contains(PlaintextMarker) {
				t.Error("the plaintext payload crossed the relay")
			}

			_ = caller.relay.Close()
			_ = callee.relay.Close()
			srv.waitAllocations(t, 0)
		})
	}
}

// Acceptance 6 in small: the callee decrypts with a key that is not the
// caller's; every packet fails authentication and nothing is played.
func TestWrongKey(t *testing.T) {
	srv := startTURN(t)
	caller, callee := setupCall(t, srv, "udp", "udp", SuiteAEADAES128GCM)
	// The callee keeps its own sending key but expects the wrong one.
	mine, _ := NewCrypto(1, SuiteAEADAES128GCM)
	wrong, _ := NewCrypto(1, SuiteAEADAES128GCM)
	callerKey, _ := NewCrypto(1, SuiteAEADAES128GCM)
	var err error
	if callee.sess, err = NewSession(mine, wrong); err != nil {
		t.Fatal(err)
	}
	if caller.sess, err = NewSession(callerKey, mine); err != nil {
		t.Fatal(err)
	}

	stats := run(t, 30*Ptime, caller, callee)
	cs, ee := stats[0], stats[1]
	t.Logf("caller %+v", cs)
	t.Logf("callee %+v", ee)
	if ee.Received != cs.Sent || ee.AuthFailures != ee.Received || ee.PlayedOut != 0 || callee.played.Load() != 0 {
		t.Errorf("callee with the wrong key: %+v (caller sent %d); want every packet an auth failure, none played", ee, cs.Sent)
	}
	if cs.Received != ee.Sent || cs.PlayedOut != ee.Sent || cs.AuthFailures != 0 || caller.garbled.Load() != 0 {
		t.Errorf("caller with the right key: %+v (callee sent %d)", cs, ee.Sent)
	}
}

// Stop, context cancellation and misuse, over plain loopback UDP.
func TestStreamLifecycle(t *testing.T) {
	a, b := listenUDP(t), listenUDP(t)
	sa, sb := sessionPair(t, SuiteAESCM128HMACSHA1_80)
	before := runtime.NumGoroutine()

	var s Stream
	s.Stop() // before Start: no-op
	if st, err := s.Wait(); err != nil || st != (Stats{}) {
		t.Fatalf("Wait before Start: %+v, %v", st, err)
	}
	if err := s.Start(t.Context(), a, b.LocalAddr(), sa, 0); err == nil {
		t.Fatal("Start with a zero duration succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	if err := s.Start(ctx, a, b.LocalAddr(), sa, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, a, b.LocalAddr(), sa, time.Hour); !errors.Is(err, ErrStreamStarted) {
		t.Fatalf("second Start: %v, want ErrStreamStarted", err)
	}
	var r Stream
	if err := r.Start(t.Context(), b, a.LocalAddr(), sb, 5*Ptime); err != nil {
		t.Fatal(err)
	}
	<-r.SendDone()
	waitFor(t, func() bool { return s.Stats().Received == 5 })

	// Cancelling the context ends a one-hour stream at once.
	start := time.Now()
	cancel()
	st, err := s.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Wait after cancel took %v", d)
	}
	if st.Sent == 0 || st.Received != 5 || st.PlayedOut != 5 {
		t.Errorf("stats %+v", st)
	}
	r.Stop()
	r.Stop() // twice is harmless
	if rs := r.Stats(); rs.Sent != 5 || rs.Received != st.Sent {
		t.Errorf("receiver stats %+v, sender sent %d", rs, st.Sent)
	}

	// Both streams' goroutines are gone (the conns stay open: their owner closes them).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Stop, %d before Start", n, before)
	}

	// The conn can carry a new Stream after the old one left a past deadline.
	var again Stream
	if err := again.Start(t.Context(), b, a.LocalAddr(), sb, Ptime); err != nil {
		t.Fatal(err)
	}
	if st, err := again.Wait(); err != nil || st.Sent != 1 {
		t.Errorf("restarted on the same conn: %+v, %v", st, err)
	}
}

func listenUDP(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		<-tick.C
	}
}
