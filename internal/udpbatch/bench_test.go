//go:build unix

package udpbatch

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A G.711 20 ms frame in RTP (172 bytes) behind a 4-byte ChannelData header.
const g711ChannelData = 172 + 4

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pace runs send(i) for i = 0.. while take() allows, at rate datagrams per
// second (0: as fast as credits allow), each after taking a credit.
func pace(rate int, take func() bool, credits <-chan struct{}, stop <-chan struct{}, send func(i int)) {
	start := time.Now()
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Millisecond)
		defer tick.Stop()
	}
	for i := 0; ; {
		due := 1 << 30
		if rate > 0 {
			select {
			case <-tick.C:
			case <-stop:
				return
			}
			due = int(time.Since(start).Seconds()*float64(rate)) - i
		}
		for ; due > 0; due-- {
			if !take() {
				return
			}
			select {
			case <-credits:
			case <-stop:
				return
			}
			send(i)
			i++
		}
	}
}

// rates are the offered loads: unpaced, then 200 and 1,000 G.711 streams
// (50 datagrams per second each) in one direction.
var rates = []struct {
	name string
	pps  int
}{{"max", 0}, {"200streams", 200 * 50}, {"1000streams", 1000 * 50}}

// variant names the two ways of using one socket that the benchmarks compare.
type variant struct {
	name string
	wrap func(*net.UDPConn) net.PacketConn
}

var variants = []variant{
	{"plain", func(c *net.UDPConn) net.PacketConn { return c }},
	{"udpbatch", func(c *net.UDPConn) net.PacketConn { return New(c, Options{}) }},
}

// perSyscall reports datagrams per system call for a udpbatch.Conn; a plain
// *net.UDPConn makes one call per datagram.
func perSyscall(pc net.PacketConn, read bool) float64 {
	c, ok := pc.(*Conn)
	if !ok {
		return 1
	}
	s := c.Stats()
	if read {
		return float64(s.DatagramsRead) / float64(max(s.ReadSyscalls, 1))
	}
	return float64(s.DatagramsWritten) / float64(max(s.WriteSyscalls, 1))
}

// BenchmarkRead200Senders: one goroutine reads G.711-sized datagrams that
// 200 sockets send to one socket, like pion/turn's listener read loop
// receiving 200 phones' media. 4 feeder goroutines send, unpaced or at a
// fixed rate, with at most 128 datagrams in flight so the receive buffer
// never overflows. cpu-ns/op is the whole process's CPU per datagram,
// senders included (the same work in both variants).
func BenchmarkRead200Senders(b *testing.B) {
	const senders, window, feeders = 200, 128, 4
	for _, r := range rates {
		for _, v := range variants {
			b.Run(r.name+"/"+v.name, func(b *testing.B) {
				rxc := listen(b, "udp4", "127.0.0.1:0")
				rxc.SetReadBuffer(4 << 20)
				rx := v.wrap(rxc)
				defer rx.Close()
				socks := make([]*net.UDPConn, senders)
				for i := range socks {
					socks[i] = listen(b, "udp4", "127.0.0.1:0")
				}
				credits := make(chan struct{}, window)
				for range window {
					credits <- struct{}{}
				}
				var left atomic.Int64
				left.Store(int64(b.N))
				take := func() bool { return left.Add(-1) >= 0 }
				stop := make(chan struct{})
				var wg sync.WaitGroup
				payload := make([]byte, g711ChannelData)
				to := rx.LocalAddr()
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime(b)
				for f := range feeders {
					wg.Go(func() {
						pace(r.pps/feeders, take, credits, stop, func(i int) {
							socks[(i*feeders+f)%senders].WriteTo(payload, to)
						})
					})
				}
				buf := make([]byte, 1600)
				rx.SetReadDeadline(time.Now().Add(time.Minute))
				for range b.N {
					if _, _, err := rx.ReadFrom(buf); err != nil {
						b.Fatal(err)
					}
					credits <- struct{}{}
				}
				b.StopTimer()
				cpu := cpuTime(b) - cpu0
				close(stop)
				wg.Wait()
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(perSyscall(rx, true), "datagrams/syscall")
			})
		}
	}
}

// BenchmarkWrite200Goroutines: as in pion/turn, each of 200 allocations has
// a goroutine that reads its relay socket and writes what it read, as
// ChannelData, through the one listener socket. 4 feeder goroutines play the
// peers at a fixed rate (with at most 128 datagrams in flight between them
// and the relay goroutines); the listener's 8 destinations are never read
// (the kernel drops what their small buffers cannot hold). Only the
// listener's writes differ between the variants; cpu-ns/op is the whole
// process's CPU per datagram, peers' sends and relay reads included.
// There is no unpaced case: a udpbatch WriteTo returns before its datagram
// leaves, so an unpaced feeder would only measure how fast the queue fills.
func BenchmarkWrite200Goroutines(b *testing.B) {
	const allocations, sinks, window, feeders = 200, 8, 128, 4
	for _, r := range rates[1:] {
		for _, v := range variants {
			b.Run(r.name+"/"+v.name, func(b *testing.B) {
				tx := v.wrap(listen(b, "udp4", "127.0.0.1:0"))
				defer tx.Close()
				dst := make([]net.Addr, sinks)
				for i := range dst {
					s := listen(b, "udp4", "127.0.0.1:0")
					s.SetReadBuffer(4096)
					dst[i] = s.LocalAddr()
				}
				relays := make([]*net.UDPConn, allocations)
				peers := make([]*net.UDPConn, feeders)
				for i := range relays {
					relays[i] = listen(b, "udp4", "127.0.0.1:0")
				}
				for i := range peers {
					peers[i] = listen(b, "udp4", "127.0.0.1:0")
				}
				credits := make(chan struct{}, window)
				for range window {
					credits <- struct{}{}
				}
				var toSend, toWrite atomic.Int64
				toSend.Store(int64(b.N))
				toWrite.Store(int64(b.N))
				take := func() bool { return toSend.Add(-1) >= 0 }
				allWritten := make(chan struct{})
				stop := make(chan struct{})
				var wg sync.WaitGroup
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cpuTime(b)
				for a, relay := range relays {
					wg.Go(func() {
						buf := make([]byte, 1600)
						for {
							n, _, err := relay.ReadFrom(buf)
							if err != nil {
								return // closed at the end
							}
							if _, err := tx.WriteTo(buf[:n], dst[a%sinks]); err != nil {
								b.Error(err)
							}
							credits <- struct{}{}
							if toWrite.Add(-1) == 0 {
								close(allWritten)
							}
						}
					})
				}
				var feed sync.WaitGroup
				for f, peer := range peers {
					feed.Go(func() {
						payload := make([]byte, g711ChannelData)
						pace(r.pps/feeders, take, credits, stop, func(i int) {
							peer.WriteTo(payload, relays[(i*feeders+f)%allocations].LocalAddr())
						})
					})
				}
				select {
				case <-allWritten:
				case <-time.After(time.Minute):
					b.Fatal("datagrams lost between peers and relays")
				}
				b.StopTimer()
				cpu := cpuTime(b) - cpu0
				close(stop)
				feed.Wait()
				for _, r := range relays {
					r.Close()
				}
				wg.Wait()
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(perSyscall(tx, false), "datagrams/syscall")
				if c, ok := tx.(*Conn); ok {
					b.ReportMetric(float64(c.Stats().WriteDrops)/float64(b.N), "drops/op")
				}
			})
		}
	}
}
