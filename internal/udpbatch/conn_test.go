package udpbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// wait bounds every blocking step of a test; nothing here sleeps.
const wait = 10 * time.Second

func listen(t testing.TB, network, addr string) *net.UDPConn {
	t.Helper()
	la, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, la)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newConn(t testing.TB, network, addr string, opts Options) *Conn {
	t.Helper()
	c := New(listen(t, network, addr), opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// payload builds datagram seq of writer w: a header and a pattern, with a
// length that varies from 5 to 604 bytes.
func payload(w byte, seq uint32) []byte {
	n := 5 + int((seq*7+uint32(w)*13)%600)
	p := make([]byte, n)
	p[0] = w
	binary.BigEndian.PutUint32(p[1:5], seq)
	for i := 5; i < n; i++ {
		p[i] = byte(int(w) + int(seq) + i)
	}
	return p
}

// TestConcurrentWritersKeepOrderAndContent: 8 goroutines write 2000
// datagrams each through one Conn; a reader, itself a Conn, checks every
// datagram's bytes and that each writer's datagrams arrive in order. A
// window of 64 datagrams in flight keeps the receiver's socket buffer from
// overflowing, so any loss is the Conn's.
func TestConcurrentWritersKeepOrderAndContent(t *testing.T) {
	const writers, each, window = 8, 2000, 64
	rx := newConn(t, "udp4", "127.0.0.1:0", Options{})
	tx := newConn(t, "udp4", "127.0.0.1:0", Options{})
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	done := make(chan error, 1)
	go func() {
		next := make([]uint32, writers)
		buf := make([]byte, 2048)
		rx.SetReadDeadline(time.Now().Add(wait))
		for range writers * each {
			n, addr, err := rx.ReadFrom(buf)
			if err != nil {
				done <- err
				return
			}
			if addr.String() != tx.LocalAddr().String() {
				done <- errors.New("source " + addr.String() + ", want " + tx.LocalAddr().String())
				return
			}
			w := buf[0]
			seq := binary.BigEndian.Uint32(buf[1:5])
			if int(w) >= writers || seq != next[w] {
				done <- errors.New("out of order or unknown writer")
				return
			}
			if !bytes.Equal(buf[:n], payload(w, seq)) {
				done <- errors.New("content differs")
				return
			}
			next[w]++
			credits <- struct{}{}
		}
		done <- nil
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for seq := range uint32(each) {
				select {
				case <-credits:
				case <-time.After(wait):
					t.Error("no credit: datagrams lost")
					return
				}
				if _, err := tx.WriteTo(payload(byte(w), seq), rx.LocalAddr()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ts, rs := tx.Stats(), rx.Stats()
	if ts.DatagramsWritten != writers*each || ts.WriteDrops != 0 || ts.WriteErrors != 0 {
		t.Fatalf("writer stats %+v", ts)
	}
	if rs.DatagramsRead != writers*each || rs.ReadSyscalls == 0 || rs.ReadSyscalls > rs.DatagramsRead {
		t.Fatalf("reader stats %+v", rs)
	}
	t.Logf("datagrams per sendmmsg %.2f, per recvmmsg %.2f",
		float64(ts.DatagramsWritten)/float64(ts.WriteSyscalls), float64(rs.DatagramsRead)/float64(rs.ReadSyscalls))
}

// TestReadFromReportsEachSender: 50 sockets send 20 datagrams each, every one
// naming its sender's port; ReadFrom must pair each datagram with its own
// source address, including datagrams handed out from one batch.
func TestReadFromReportsEachSender(t *testing.T) {
	const senders, each, window = 50, 20, 64
	rx := newConn(t, "udp4", "127.0.0.1:0", Options{ReadBatch: 16})
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	var wg sync.WaitGroup
	for range senders {
		s := listen(t, "udp4", "127.0.0.1:0")
		port := uint16(s.LocalAddr().(*net.UDPAddr).Port)
		wg.Go(func() {
			for range each {
				select {
				case <-credits:
				case <-time.After(wait):
					t.Error("no credit: datagrams lost")
					return
				}
				if _, err := s.WriteTo(binary.BigEndian.AppendUint16(nil, port), rx.LocalAddr()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := map[int]int{}
	buf := make([]byte, 64)
	rx.SetReadDeadline(time.Now().Add(wait))
	for range senders * each {
		n, addr, err := rx.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		ua := addr.(*net.UDPAddr)
		if n != 2 || int(binary.BigEndian.Uint16(buf)) != ua.Port || !ua.IP.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Fatalf("datagram %x from %v", buf[:n], addr)
		}
		got[ua.Port]++
		credits <- struct{}{}
	}
	wg.Wait()
	if len(got) != senders {
		t.Fatalf("%d senders seen, want %d", len(got), senders)
	}
	for port, n := range got {
		if n != each {
			t.Fatalf("port %d: %d datagrams, want %d", port, n, each)
		}
	}
}

// TestLoneDatagramIsNotHeldBack: one WriteTo with no traffic after it
// reaches the peer, and one datagram sent to a Conn is returned by ReadFrom
// without a batch to fill (issue 13: "send what is there").
func TestLoneDatagramIsNotHeldBack(t *testing.T) {
	c := newConn(t, "udp4", "127.0.0.1:0", Options{ReadBatch: 64, WriteBatch: 64})
	peer := listen(t, "udp4", "127.0.0.1:0")

	if _, err := c.WriteTo([]byte("lone"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64)
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "lone" || from.String() != c.LocalAddr().String() {
		t.Fatalf("peer got %q from %v, err %v", buf[:n], from, err)
	}

	if _, err := peer.WriteTo([]byte("back"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	n, from, err = c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "back" || from.String() != peer.LocalAddr().String() {
		t.Fatalf("conn got %q from %v, err %v", buf[:n], from, err)
	}
}

// TestCloseUnblocksReadFrom: Close ends a ReadFrom blocked on an idle
// socket with net.ErrClosed, and later calls fail the same way.
func TestCloseUnblocksReadFrom(t *testing.T) {
	c := New(listen(t, "udp4", "127.0.0.1:0"), Options{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 64))
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("ReadFrom still blocked after Close")
	}
	if _, _, err := c.ReadFrom(make([]byte, 64)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom: %v", err)
	}
	if _, err := c.WriteTo([]byte("x"), c.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo: %v", err)
	}
}

// gate holds the first flusher inside its sendto until released, so a test
// can fill the queue behind it.
type gate struct {
	sendto  func([]byte, *net.UDPAddr) (int, error)
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gate) send(p []byte, addr *net.UDPAddr) (int, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.sendto(p, addr)
}

// holdFlusher wraps c's sendto so that the first flusher stops in it, and starts a goroutine whose WriteTo becomes that flusher
// (datagram 0 to peer). It returns once the flusher is held, with the
// function that releases it and returns what its WriteTo returned.
func holdFlusher(t *testing.T, c *Conn, peer net.Addr) (release func() error) {
	t.Helper()
	g := &gate{sendto: c.sendto, entered: make(chan struct{}), release: make(chan struct{})}
	c.sendto = g.send
	flushed := make(chan error, 1)
	go func() {
		_, err := c.WriteTo([]byte{0}, peer)
		flushed <- err
	}()
	select {
	case <-g.entered:
	case <-time.After(wait):
		t.Fatal("no flusher")
	}
	return func() error {
		close(g.release)
		return <-flushed
	}
}

// expectBytes reads datagrams of one byte from peer and checks their values.
func expectBytes(t *testing.T, peer *net.UDPConn, want ...byte) {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 8)
	for _, w := range want {
		n, _, err := peer.ReadFrom(buf)
		if err != nil || n != 1 || buf[0] != w {
			t.Fatalf("got %x, %v; want %d", buf[:n], err, w)
		}
	}
}

// TestFullQueueWaits: while the flusher is held in sendmmsg, a queue of 4
// takes 4 datagrams; the next WriteTo waits (it has not returned) until the
// flusher takes the queue, and then every datagram arrives, in order.
func TestFullQueueWaits(t *testing.T) {
	if !batching {
		t.Skip("no write queue without batching")
	}
	c := newConn(t, "udp4", "127.0.0.1:0", Options{WriteQueue: 4})
	peer := listen(t, "udp4", "127.0.0.1:0")
	waiting := make(chan struct{})
	c.onWait = func() { close(waiting) }
	release := holdFlusher(t, c, peer.LocalAddr())
	for i := byte(1); i <= 4; i++ {
		if n, err := c.WriteTo([]byte{i}, peer.LocalAddr()); n != 1 || err != nil {
			t.Fatalf("WriteTo %d: %d, %v", i, n, err)
		}
	}
	fifth := make(chan error, 1)
	go func() {
		_, err := c.WriteTo([]byte{5}, peer.LocalAddr())
		fifth <- err
	}()
	select {
	case <-waiting:
	case err := <-fifth:
		t.Fatalf("WriteTo on a full queue returned (%v) instead of waiting", err)
	case <-time.After(wait):
		t.Fatal("fifth WriteTo neither waited nor returned")
	}
	select {
	case err := <-fifth:
		t.Fatalf("WriteTo returned (%v) while the queue was full", err)
	default:
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := <-fifth; err != nil {
		t.Fatal(err)
	}
	expectBytes(t, peer, 0, 1, 2, 3, 4, 5)
	if s := c.Stats(); s.DatagramsWritten != 6 || s.WriteWaits != 1 || s.WriteDrops != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestFullQueueDropsAndCounts: with DropWhenFull, a queue of 4 behind a
// held flusher takes 4 datagrams and drops the next 2, counting them; the 5
// accepted datagrams arrive, in order.
func TestFullQueueDropsAndCounts(t *testing.T) {
	if !batching {
		t.Skip("no write queue without batching")
	}
	c := newConn(t, "udp4", "127.0.0.1:0", Options{WriteQueue: 4, DropWhenFull: true})
	peer := listen(t, "udp4", "127.0.0.1:0")
	release := holdFlusher(t, c, peer.LocalAddr())
	for i := byte(1); i <= 6; i++ {
		if n, err := c.WriteTo([]byte{i}, peer.LocalAddr()); n != 1 || err != nil {
			t.Fatalf("WriteTo %d: %d, %v", i, n, err)
		}
	}
	if s := c.Stats(); s.WriteDrops != 2 {
		t.Fatalf("WriteDrops %d, want 2", s.WriteDrops)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	expectBytes(t, peer, 0, 1, 2, 3, 4)
	if s := c.Stats(); s.DatagramsWritten != 5 {
		t.Fatalf("DatagramsWritten %d, want 5", s.DatagramsWritten)
	}
}

// TestCloseReleasesWaitingWriter: a WriteTo waiting for room behind a held
// flusher returns net.ErrClosed when the Conn is closed.
func TestCloseReleasesWaitingWriter(t *testing.T) {
	if !batching {
		t.Skip("no write queue without batching")
	}
	c := newConn(t, "udp4", "127.0.0.1:0", Options{WriteQueue: 1})
	peer := listen(t, "udp4", "127.0.0.1:0")
	waiting := make(chan struct{})
	c.onWait = func() { close(waiting) }
	release := holdFlusher(t, c, peer.LocalAddr())
	c.WriteTo([]byte{1}, peer.LocalAddr())
	second := make(chan error, 1)
	go func() {
		_, err := c.WriteTo([]byte{2}, peer.LocalAddr())
		second <- err
	}()
	select {
	case <-waiting:
	case <-time.After(wait):
		t.Fatal("second WriteTo did not wait")
	}
	c.Close()
	select {
	case err := <-second:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("waiting WriteTo: %v, want net.ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("waiting WriteTo still blocked after Close")
	}
	if err := release(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("held flusher's WriteTo: %v, want net.ErrClosed", err)
	}
	if s := c.Stats(); s.WriteErrors != 2 {
		t.Fatalf("WriteErrors %d, want 2 (datagram 0 sent on the closed socket, 1 dropped from the queue)", s.WriteErrors)
	}
}

// TestIPv6Loopback: both directions over ::1.
func TestIPv6Loopback(t *testing.T) {
	l, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no ::1: %v", err)
	}
	c := New(l, Options{})
	defer c.Close()
	peer := listen(t, "udp6", "[::1]:0")
	roundTrip(t, c, peer)
}

// TestDualStackSocketReachesIPv4: a Conn on ":0" (an AF_INET6 dual-stack
// socket, which is what edge.yaml's turn.listen ":3478" opens) writes to and
// reads from an IPv4 peer: x/net hands sendmmsg an AF_INET address, which
// Linux accepts on a socket that is not IPV6_V6ONLY, and recvmmsg reports the
// peer as ::ffff:127.0.0.1.
func TestDualStackSocketReachesIPv4(t *testing.T) {
	c := newConn(t, "udp", ":0", Options{})
	peer := listen(t, "udp4", "127.0.0.1:0")
	roundTrip(t, c, peer)
}

func roundTrip(t *testing.T, c *Conn, peer *net.UDPConn) {
	t.Helper()
	port := c.LocalAddr().(*net.UDPAddr).Port
	peerAddr := peer.LocalAddr().(*net.UDPAddr)
	to := &net.UDPAddr{IP: peerAddr.IP, Port: port}
	if _, err := peer.WriteTo([]byte("ping"), to); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64)
	n, from, err := c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("conn got %q, %v", buf[:n], err)
	}
	if ua := from.(*net.UDPAddr); ua.Port != peerAddr.Port || !ua.IP.Equal(peerAddr.IP) {
		t.Fatalf("source %v, want %v", from, peerAddr)
	}
	if _, err := c.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(wait))
	n, _, err = peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("peer got %q, %v", buf[:n], err)
	}
	if s := c.Stats(); s.DatagramsRead != 1 || s.DatagramsWritten != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestConcurrentReadersShareBatches: 4 goroutines call ReadFrom on one Conn;
// together they receive each of 2000 datagrams exactly once, with its bytes.
func TestConcurrentReadersShareBatches(t *testing.T) {
	const total, readers, window = 2000, 4, 64
	rx := newConn(t, "udp4", "127.0.0.1:0", Options{ReadBatch: 8})
	tx := listen(t, "udp4", "127.0.0.1:0")
	credits := make(chan struct{}, window)
	for range window {
		credits <- struct{}{}
	}
	var mu sync.Mutex
	seen := make(map[uint32]int)
	var wg sync.WaitGroup
	rx.SetReadDeadline(time.Now().Add(wait))
	for range readers {
		wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := rx.ReadFrom(buf)
				if err != nil {
					return // closed at the end
				}
				seq := binary.BigEndian.Uint32(buf[1:5])
				if !bytes.Equal(buf[:n], payload(9, seq)) {
					t.Errorf("datagram %d: content differs", seq)
				}
				mu.Lock()
				seen[seq]++
				mu.Unlock()
				credits <- struct{}{}
			}
		})
	}
	for seq := range uint32(total) {
		select {
		case <-credits:
		case <-time.After(wait):
			t.Fatal("no credit: datagrams lost")
		}
		if _, err := tx.WriteTo(payload(9, seq), rx.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	for range window { // every datagram read
		select {
		case <-credits:
		case <-time.After(wait):
			t.Fatal("datagrams not read")
		}
	}
	rx.Close()
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("%d distinct datagrams, want %d", len(seen), total)
	}
	for seq, n := range seen {
		if n != 1 {
			t.Fatalf("datagram %d read %d times", seq, n)
		}
	}
}
