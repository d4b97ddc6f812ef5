package udpbatch

import (
	"syscall"
	"testing"
	"time"
)

// TestICMPRefusedKeepsConnWorking: with IP_RECVERR on, a datagram to a
// closed port queues ECONNREFUSED on the socket, which the next recvmmsg or
// sendmmsg reports. It must neither end ReadFrom (pion's read loop exits on
// any error) nor cost the next datagram.
func TestICMPRefusedKeepsConnWorking(t *testing.T) {
	if !batching {
		t.Skip("Linux only")
	}
	l := listen(t, "udp4", "127.0.0.1:0")
	raw, err := l.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
	})
	if serr != nil {
		t.Skipf("IP_RECVERR: %v", serr)
	}
	c := New(l, Options{})
	defer c.Close()
	dead := listen(t, "udp4", "127.0.0.1:0")
	deadAddr := dead.LocalAddr()
	dead.Close()
	peer := listen(t, "udp4", "127.0.0.1:0")
	buf := make([]byte, 64)

	for i := range 3 {
		// To the closed port: the ICMP error is queued on c's socket.
		if _, err := c.WriteTo([]byte("void"), deadAddr); err != nil {
			t.Fatal(err)
		}
		// The next read meets it first.
		if _, err := peer.WriteTo([]byte("in"), c.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(wait))
		if n, _, err := c.ReadFrom(buf); err != nil || string(buf[:n]) != "in" {
			t.Fatalf("round %d: ReadFrom %q, %v", i, buf[:n], err)
		}
		// Once more to the closed port; the next write meets its error.
		if _, err := c.WriteTo([]byte("void"), deadAddr); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo([]byte("out"), peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		peer.SetReadDeadline(time.Now().Add(wait))
		if n, _, err := peer.ReadFrom(buf); err != nil || string(buf[:n]) != "out" {
			t.Fatalf("round %d: peer got %q, %v", i, buf[:n], err)
		}
	}
}
