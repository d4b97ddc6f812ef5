package relay

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// A bucket starts full with half a second's worth (at least two
// full-size datagrams), refuses what exceeds what is left, and a refused
// datagram costs nothing.
func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(8000) // burst max(4000, 3200) = 4000 bytes
	b.rate = 0                // no refill during the test
	if !b.take(3000) {
		t.Fatal("first 3000 bytes refused from a full bucket of 4000")
	}
	if b.take(1001) {
		t.Error("1001 bytes taken with 1000 left")
	}
	if !b.take(1000) {
		t.Error("the 1000 bytes left refused after a refusal")
	}
	if b.take(1) {
		t.Error("a byte taken from an empty bucket")
	}
	small := newTokenBucket(100)
	if small.burst != 2*1600 {
		t.Errorf("burst at 100 B/s = %v, want two full-size datagrams (3200)", small.burst)
	}
}

// turn.max_bitrate bounds what an allocation relays in each direction:
// a burst far over it is mostly dropped. No timing is asserted: the
// bound only needs the burst to be sent within a few seconds.
func TestTURNBitrateLimit(t *testing.T) {
	const rate = 4000 // bytes/s; the bucket holds 3200
	f := startTURN(t, turnFixtureOptions{cfg: func(c *Config) { c.MaxBitrate = rate }})
	relay, _ := f.allocate(t, "udp", "SEP4A")
	peer := udpPeer(t)
	from := relayUntilReceived(t, relay, peer, []byte("warm-up"))

	const sent, size = 300, 400 // 120 kB against a 4 kB/s limit
	payload := bytes.Repeat([]byte{'m'}, size)
	count := func(conn net.PacketConn, done <-chan struct{}) int {
		n := 0
		buf := make([]byte, 2048)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			k, _, err := conn.ReadFrom(buf)
			if err != nil {
				select {
				case <-done:
					return n
				default:
					continue
				}
			}
			if k == size {
				n++
			}
		}
	}
	burst := func(name string, from, to net.PacketConn, dst net.Addr) {
		done := make(chan struct{})
		got := make(chan int, 1)
		go func() { got <- count(to, done) }()
		for i := 0; i < sent; i++ {
			if _, err := from.WriteTo(payload, dst); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		close(done)
		received := <-got
		t.Logf("%s: %d of %d datagrams relayed", name, received, sent)
		if received == 0 || received > sent/4 {
			t.Errorf("%s: %d of %d datagrams relayed; want some, and far fewer than sent", name, received, sent)
		}
	}
	burst("client to peer", relay, peer, peer.LocalAddr())
	burst("peer to client", peer, relay, from)
	if f.srv.DroppedDatagrams() == 0 {
		t.Error("DroppedDatagrams() = 0")
	}
}
