package relay

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// An ICMP error on the TURN listener must not stop it. With IP_RECVERR
// on (Go does not set it, some hosts' socket setups do), a Data indication
// to a client whose port has closed queues ECONNREFUSED on the listener,
// and the next recvmmsg reports it; pion's read loop ends on any read
// error, which would leave the relay deaf. The batched listener
// (turn.batch_io, internal/udpbatch) takes the error as the earlier
// datagram's, and a new client still allocates.
func TestTURNListenerSurvivesICMPError(t *testing.T) {
	sock, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sock.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
	}); err != nil || serr != nil {
		t.Skipf("IP_RECVERR: %v %v", err, serr)
	}
	f := startTURN(t, turnFixtureOptions{udp: sock})

	// A client allocates, lets a peer in, and goes away without a Refresh.
	u, p := creds("SEP1C0000001", time.Hour)
	gone := dialRaw(t, "udp", f.udp, u, p)
	res := gone.allocate(false)
	if !isSuccess(res) {
		t.Fatalf("Allocate: %v", res)
	}
	relayed := relayedAddr(t, res)
	peer := udpPeer(t)
	if res := gone.peerRequest(stun.MethodCreatePermission, peer.LocalAddr().(*net.UDPAddr).AddrPort()); !isSuccess(res) {
		t.Fatalf("CreatePermission: %v", res)
	}
	_ = gone.conn.Close()
	// The peer's datagrams go to the closed port as Data indications: ICMP
	// port unreachable comes back to the listener for each.
	for range 5 {
		if _, err := peer.WriteTo([]byte("to nobody"), net.UDPAddrFromAddrPort(relayed)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the peer's datagrams to reach the relay", func() bool { _, from := f.srv.Relayed(); return from >= 5 })

	u2, p2 := creds("SEP1C0000002", time.Hour)
	if res := dialRaw(t, "udp", f.udp, u2, p2).allocate(false); !isSuccess(res) {
		t.Fatalf("Allocate after ICMP errors on the listener: %v, want success", res)
	}
}
