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
	const streams = 200
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			lc := listen(b, "udp4", "127.0.0.1:0")
			listener := v.wrap(lc)
			srv, err := turn.NewServer(turn.ServerConfig{
				Realm: "bench",
				AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
					return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, "pw"), true
				},
				PacketConnConfigs: []turn.PacketConnConfig{{
					PacketConn: listener,
					RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
						RelayAddress: net.ParseIP("127.0.0.1"),
						Address:      "127.0.0.1",
					},
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
		})
	}
}
