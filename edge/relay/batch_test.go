package relay

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Issue 13 §2: with BatchIO (turn.batch_io, the edge's default) the UDP
// listener is served through internal/udpbatch, whose counters show every
// datagram pion read and wrote on it; without, pion gets the socket
// itself. Either way media is relayed both ways.
func TestTURNBatchIO(t *testing.T) {
	const n = 20
	for _, batch := range []bool{true, false} {
		t.Run(fmt.Sprintf("batch_io=%v", batch), func(t *testing.T) {
			f := startTURN(t, turnFixtureOptions{cfg: func(c *Config) { c.BatchIO = batch }})
			relay, _ := f.allocate(t, "udp", "SEPBA7C0000")
			peer := udpPeer(t)
			pkt := []byte("G.711 sized, or near enough")
			from := relayUntilReceived(t, relay, peer, pkt)
			relayBoth(t, relay, peer, from, pkt, n)

			st, ok := f.srv.UDPStats()
			if ok != batch {
				t.Fatalf("UDPStats ok = %v with BatchIO %v", ok, batch)
			}
			if !batch {
				return
			}
			// The client sent ≥ n+2 datagrams to the listener (Allocate,
			// CreatePermission, n+ Send indications or ChannelData), and the
			// listener sent it ≥ n+2 (answers, n Data indications or
			// ChannelData). A datagram is counted just after the system
			// call that sent it, so the client may have the last one first.
			waitFor(t, "the datagrams written to be counted", func() bool {
				st, _ = f.srv.UDPStats()
				return st.DatagramsWritten >= n+2
			})
			if st.DatagramsRead < n+2 || st.ReadSyscalls == 0 || st.ReadSyscalls > st.DatagramsRead {
				t.Errorf("read: %d datagrams in %d system calls; want ≥ %d in 1..datagrams", st.DatagramsRead, st.ReadSyscalls, n+2)
			}
			if st.DatagramsWritten < n+2 || st.WriteSyscalls == 0 || st.WriteSyscalls > st.DatagramsWritten {
				t.Errorf("write: %d datagrams in %d system calls; want ≥ %d in 1..datagrams", st.DatagramsWritten, st.WriteSyscalls, n+2)
			}
			if st.WriteDrops != 0 || st.WriteErrors != 0 || st.Truncated != 0 {
				t.Errorf("drops %d, write errors %d, truncated %d; want none", st.WriteDrops, st.WriteErrors, st.Truncated)
			}

			// Close ends pion's read loop on the batched listener (its
			// recvmmsg returns net.ErrClosed): the goroutine is gone.
			if !udpReadLoopRuns() {
				t.Fatal("no pion read loop on the UDP listener while the relay runs")
			}
			if err := f.srv.Close(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "pion's read loop on the batched listener to end", func() bool { return !udpReadLoopRuns() })
		})
	}
}

// relayBoth sends n datagrams from the client through relay to peer and n
// from peer back through the relayed address from, each answered before
// the next is sent, and fails unless all arrive.
func relayBoth(t testing.TB, relay, peer net.PacketConn, from net.Addr, pkt []byte, n int) {
	t.Helper()
	buf := make([]byte, 2048)
	for i := range n {
		if _, err := relay.WriteTo(pkt, peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if m, _, err := peer.ReadFrom(buf); err != nil || string(buf[:m]) != string(pkt) {
			t.Fatalf("datagram %d to the peer: %q, %v", i, buf[:m], err)
		}
		if _, err := peer.WriteTo(pkt, from); err != nil {
			t.Fatal(err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
		if m, _, err := relay.ReadFrom(buf); err != nil || string(buf[:m]) != string(pkt) {
			t.Fatalf("datagram %d from the peer: %q, %v", i, buf[:m], err)
		}
	}
	_ = peer.SetReadDeadline(time.Time{})
	_ = relay.SetReadDeadline(time.Time{})
}

// udpReadLoopRuns reports whether a pion TURN server's read loop on a UDP
// listener runs: a goroutine in (*Server).readLoop started by NewServer
// (the loops of TCP and TLS connections are started by readListener).
func udpReadLoopRuns() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "turn/v5.(*Server).readLoop") && strings.Contains(g, "created by github.com/pion/turn/v5.NewServer") {
				return true
			}
		}
		return false
	}
}
