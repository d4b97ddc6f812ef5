package relay

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// memPacketConn is the TURN server's UDP socket in memory: the fuzz
// target writes datagrams into it and reads what the server answers,
// without a kernel socket in between (relay sockets stay real).
type memPacketConn struct {
	local  net.Addr
	in     chan memDatagram
	out    chan memDatagram
	closed chan struct{}
	once   sync.Once
}

type memDatagram struct {
	b    []byte
	addr net.Addr
}

func newMemPacketConn() *memPacketConn {
	return &memPacketConn{local: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3478},
		in: make(chan memDatagram), out: make(chan memDatagram, 256), closed: make(chan struct{})}
}

func (m *memPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case d := <-m.in:
		return copy(p, d.b), d.addr, nil
	case <-m.closed:
		return 0, nil, net.ErrClosed
	}
}

func (m *memPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	select {
	case m.out <- memDatagram{append([]byte(nil), p...), addr}:
	default: // a full queue drops, as UDP would
	}
	return len(p), nil
}

func (m *memPacketConn) Close() error                     { m.once.Do(func() { close(m.closed) }); return nil }
func (m *memPacketConn) LocalAddr() net.Addr              { return m.local }
func (m *memPacketConn) SetDeadline(time.Time) error      { return nil }
func (m *memPacketConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memPacketConn) SetWriteDeadline(time.Time) error { return nil }

// memClient is one client address on a memPacketConn, as a net.Conn for
// rawTURN.
type memClient struct {
	m        *memPacketConn
	addr     net.Addr
	deadline time.Time
}

func (c *memClient) Write(p []byte) (int, error) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case c.m.in <- memDatagram{append([]byte(nil), p...), c.addr}:
		return len(p), nil
	case <-c.m.closed:
		return 0, net.ErrClosed
	case <-t.C: // the server's read loop is stuck
		buf := make([]byte, 1<<20)
		return 0, fmt.Errorf("the TURN server stopped reading its socket:\n%s", buf[:runtime.Stack(buf, true)])
	}
}

func (c *memClient) Read(p []byte) (int, error) {
	var timeout <-chan time.Time
	if !c.deadline.IsZero() {
		t := time.NewTimer(time.Until(c.deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case d := <-c.m.out:
		return copy(p, d.b), nil
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	}
}

func (c *memClient) Close() error                       { return nil }
func (c *memClient) LocalAddr() net.Addr                { return c.addr }
func (c *memClient) RemoteAddr() net.Addr               { return c.m.local }
func (c *memClient) SetDeadline(t time.Time) error      { c.deadline = t; return nil }
func (c *memClient) SetReadDeadline(t time.Time) error  { c.deadline = t; return nil }
func (c *memClient) SetWriteDeadline(t time.Time) error { return nil }

// FuzzTURNInput feeds arbitrary datagrams to the edge's TURN server — as
// STUN, TURN or ChannelData from a client that holds an allocation with a
// permission and a channel to a loopback peer — and checks that it never
// panics, that everything it answers is a STUN response or indication
// (never a request) or ChannelData, and that it still answers a Binding
// request from that client with the client's address afterwards.
func FuzzTURNInput(f *testing.F) {
	for _, seed := range turnFuzzSeeds() {
		f.Add(seed)
	}
	mem := newMemPacketConn()
	cfg := testConfig()
	cfg.MaxBitrate, cfg.AllocationLifetime = 1<<30, time.Hour
	srv, err := New(cfg, Deps{Listeners: Listeners{UDP: mem}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { peer.Close() })
	go func() { // drain what the relay sends the peer
		buf := make([]byte, 2048)
		for {
			if _, _, err := peer.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	client := &memClient{m: mem, addr: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}}
	u, p := creds("SEPFUZZ00001", 24*time.Hour)
	c := &rawTURN{t: f, conn: client, user: u, realm: testRealm, key: stun.NewLongTermIntegrity(u, testRealm, p)}
	if res := c.allocate(false); !isSuccess(res) {
		f.Fatalf("Allocate: %v", res)
	}
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if res := c.peerRequest(stun.MethodChannelBind, peerAddr); !isSuccess(res) { // channel 0x4001, and a permission
		f.Fatalf("ChannelBind: %v", res)
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		c.t = t
		c.send(in)
		id := stun.NewTransactionID()
		c.send(stun.MustBuild(stun.NewTransactionIDSetter(id), stun.BindingRequest, stun.Fingerprint).Raw)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if time.Now().After(deadline) {
				t.Fatal("no Binding response after the input: the server stopped answering")
			}
			raw := make([]byte, 2048)
			_ = client.SetReadDeadline(deadline)
			n, err := client.Read(raw)
			if err != nil {
				t.Fatal("no Binding response after the input: the server stopped answering")
			}
			raw = raw[:n]
			if n >= 4 && raw[0]&0xC0 == 0x40 { // ChannelData (a peer's datagram)
				continue
			}
			m := &stun.Message{Raw: raw}
			if err := m.Decode(); err != nil {
				t.Fatalf("the server sent %d bytes that are neither STUN nor ChannelData: %v", n, err)
			}
			if m.Type.Class == stun.ClassRequest {
				t.Fatalf("the server sent a request: %v", m)
			}
			if m.TransactionID != id {
				continue // the answer to the input itself
			}
			var xor stun.XORMappedAddress
			if m.Type != stun.BindingSuccess || xor.GetFrom(m) != nil || xor.String() != client.addr.String() {
				t.Fatalf("Binding answered %v (mapped %v), want success naming %v", m, xor, client.addr)
			}
			return
		}
	})
}

// turnFuzzSeeds are the f.Add seeds; testdata/fuzz/FuzzTURNInput holds
// the same kinds as committed files.
func turnFuzzSeeds() [][]byte {
	id := [stun.TransactionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	peer := xorPeerAddress(netipMust("127.0.0.1:9"), id)
	return [][]byte{
		stun.MustBuild(stun.NewTransactionIDSetter(id), stun.BindingRequest, stun.Fingerprint).Raw,
		stun.MustBuild(stun.NewTransactionIDSetter(id), stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}).Raw,
		stun.MustBuild(stun.NewTransactionIDSetter(id), stun.NewType(stun.MethodCreatePermission, stun.ClassRequest), peer).Raw,
		stun.MustBuild(stun.NewTransactionIDSetter(id), stun.NewType(stun.MethodChannelBind, stun.ClassRequest), peer,
			stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x02, 0, 0}}).Raw,
		stun.MustBuild(stun.NewTransactionIDSetter(id), stun.NewType(stun.MethodSend, stun.ClassIndication), peer,
			stun.RawAttribute{Type: stun.AttrData, Value: []byte("hello")}).Raw,
		stun.MustBuild(stun.NewTransactionIDSetter(id), stun.NewType(stun.MethodRefresh, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}}).Raw,
		channelData(0x4001, 5, 3),
		{0x40, 0x01, 0xff, 0xff, 1, 2, 3},    // ChannelData longer than the datagram
		{0x7f, 0xff, 0x00, 0x04, 1, 2, 3, 4}, // channel beyond the range
		{0x00, 0x01, 0x00, 0x08, 0x21, 0x12}, // truncated STUN header
		{0x00, 0x01, 0xff, 0xfc, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, // length past the end
		{},
	}
}
