//go:build unix

package udpbatch

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/media"
	"github.com/pion/turn/v5"
)

// BenchmarkPionRelay is the experiment of issue 13 §2: a pion/turn server
// whose listener PacketConn is a plain *net.UDPConn or a udpbatch.Conn
// (relay sockets unchanged), 200 allocations made by Edgeway's own TURN
// client (internal/media, as `edgeway bench turn` does), each echoing
// G.711-sized datagrams off one peer socket, one datagram in flight per
// stream. One op is one round trip: the server relays 2 datagrams.
// cpu-ms/1000relayed is the whole process's CPU (server, the 200 clients
// and the echo peer) per 1000 datagrams the server relayed.
func BenchmarkPionRelay(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) { benchPionRelay(b, v.wrap, variants[0].wrap) })
	}
}

// BenchmarkPionRelaySockets is issue 13 §2's question for the relay
// sockets (one per allocation): with the listener batched, does wrapping
// each relay socket in a udpbatch.Conn too (in the RelayAddressGenerator's
// AllocatePacketConn) save anything? pion writes a relay socket from the
// listener's one read loop and reads it from the allocation's one
// goroutine, so there is rarely more than one datagram to batch.
// relay-reads/syscall and relay-writes/syscall are the relay sockets'
// datagrams per system call (1 for plain sockets).
func BenchmarkPionRelaySockets(b *testing.B) {
	for _, v := range variants {
		b.Run("relay="+v.name, func(b *testing.B) { benchPionRelay(b, variants[1].wrap, v.wrap) })
	}
}

// wrappingGenerator is pion's static relay address generator with every
// relay socket passed through wrap; it keeps what it made for Stats.
type wrappingGenerator struct {
	turn.RelayAddressGeneratorStatic
	wrap  func(*net.UDPConn) net.PacketConn
	mu    sync.Mutex
	conns []net.PacketConn
}

func (g *wrappingGenerator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, addr, err := g.RelayAddressGeneratorStatic.AllocatePacketConn(c)
	if err != nil {
		return nil, nil, err
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		pc = g.wrap(uc)
	}
	g.mu.Lock()
	g.conns = append(g.conns, pc)
	g.mu.Unlock()
	return pc, addr, nil
}

// perSyscallAll is perSyscall over all of conns together.
func perSyscallAll(conns []net.PacketConn, read bool) float64 {
	var d, s uint64
	for _, pc := range conns {
		c, ok := pc.(*Conn)
		if !ok {
			return 1
		}
		st := c.Stats()
		if read {
			d, s = d+st.DatagramsRead, s+st.ReadSyscalls
		} else {
			d, s = d+st.DatagramsWritten, s+st.WriteSyscalls
		}
	}
	return float64(d) / float64(max(s, 1))
}

// benchPionRelay runs the experiment with the listener and each relay
// socket wrapped by wrapListener and wrapRelay.
func benchPionRelay(b *testing.B, wrapListener, wrapRelay func(*net.UDPConn) net.PacketConn) {
	const streams = 200
	lc := listen(b, "udp4", "127.0.0.1:0")
	listener := wrapListener(lc)
	gen := &wrappingGenerator{wrap: wrapRelay, RelayAddressGeneratorStatic: turn.RelayAddressGeneratorStatic{
		RelayAddress: net.ParseIP("127.0.0.1"),
		Address:      "127.0.0.1",
	}}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm: "bench",
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, "pw"), true
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            listener,
			RelayAddressGenerator: gen,
		}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()

	echo := listen(b, "udp4", "127.0.0.1:0")
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()

	relays := make([]*media.Relay, streams)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range relays {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := media.AllocateRelay(ctx, lc.LocalAddr().String(), "udp", fmt.Sprintf("u%d", i), "pw", "bench")
			if err == nil {
				err = r.Permit(echo.LocalAddr())
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			relays[i] = r
		})
	}
	wg.Wait()
	defer func() {
		for _, r := range relays {
			if r != nil {
				r.Close()
			}
		}
	}()
	if firstErr != nil {
		b.Fatal(firstErr)
	}

	var left atomic.Int64
	left.Store(int64(b.N))
	var lost atomic.Int64
	payload := make([]byte, 172)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for _, r := range relays {
		wg.Go(func() {
			pc := r.PacketConn()
			buf := make([]byte, 2048)
			for left.Add(-1) >= 0 {
				if _, err := pc.WriteTo(payload, echo.LocalAddr()); err != nil {
					b.Error(err)
					return
				}
				pc.SetReadDeadline(time.Now().Add(time.Second))
				if _, _, err := pc.ReadFrom(buf); err != nil {
					lost.Add(1) // a lost datagram: go on with the next
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(2*b.N)*1000, "cpu-ms/1000relayed")
	b.ReportMetric(float64(lost.Load())/float64(b.N), "lost/op")
	b.ReportMetric(perSyscall(listener, true), "reads/syscall")
	b.ReportMetric(perSyscall(listener, false), "writes/syscall")
	gen.mu.Lock()
	defer gen.mu.Unlock()
	b.ReportMetric(perSyscallAll(gen.conns, true), "relay-reads/syscall")
	b.ReportMetric(perSyscallAll(gen.conns, false), "relay-writes/syscall")
}
