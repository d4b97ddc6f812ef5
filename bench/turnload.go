package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/edgeway/internal/media"
)

// TURNLoad drives a TURN server's relay: Streams allocations, each sending
// a G.711-sized packet every Interval through its relay to an echo peer on
// loopback, which sends it back through the same relay. Every packet thus
// crosses the relay twice; its round trip is the latency recorded.
type TURNLoad struct {
	Server     string // host:port, TURN over UDP
	Realm      string // "" takes the server's
	Streams    int
	Duration   time.Duration
	PacketSize int           // bytes of payload (default 172: RTP header and 160 bytes of G.711)
	Interval   time.Duration // default 20 ms
	// Credentials gives stream i its TURN username and password.
	Credentials func(i int) (user, pass string)
	Progress    io.Writer
	// Allocated, when set, is called once every allocation has been
	// tried and before the streams start, with the number held: the
	// moment to sample the server's memory and descriptors per
	// allocation.
	Allocated func(n int)
}

// TURNStats counts a TURN load's packets.
type TURNStats struct {
	Allocated int    `json:"allocated"`
	Sent      uint64 `json:"sent"`
	Received  uint64 `json:"received"` // back at the stream after two relay crossings
}

// Relayed is the number of datagrams the relay forwarded: each received
// packet crossed it twice.
func (s TURNStats) Relayed() uint64 { return 2 * s.Received }

// Lost is the share of sent packets that never came back, in percent.
func (s TURNStats) Lost() float64 {
	if s.Sent == 0 {
		return 0
	}
	return 100 * float64(s.Sent-min(s.Received, s.Sent)) / float64(s.Sent)
}

const turnLoadHeader = 16 // stream sequence number and send time

// Run allocates, streams for Duration, waits a second for the last
// packets and releases every allocation. Allocation failures are recorded
// by class ("TURN 486", ErrorClass); the run goes on with the others.
func (l TURNLoad) Run(ctx context.Context) (*Recorder, TURNStats, error) {
	if l.Streams <= 0 || l.Duration <= 0 || l.Credentials == nil {
		return nil, TURNStats{}, errors.New("bench: TURN load needs streams, a duration and credentials")
	}
	if l.PacketSize == 0 {
		l.PacketSize = 172
	}
	if l.PacketSize < turnLoadHeader {
		return nil, TURNStats{}, fmt.Errorf("bench: packets of at least %d bytes", turnLoadHeader)
	}
	if l.Interval == 0 {
		l.Interval = 20 * time.Millisecond
	}
	echo, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, TURNStats{}, err
	}
	defer echo.Close()
	_ = echo.SetReadBuffer(4 << 20)
	_ = echo.SetWriteBuffer(4 << 20)
	// The peer: every datagram back where it came from, read by a few
	// goroutines at once so it is never the bottleneck.
	for range echoReaders {
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := echo.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				_, _ = echo.WriteToUDPAddrPort(buf[:n], from)
			}
		}()
	}
	peer := echo.LocalAddr().(*net.UDPAddr)

	// Allocate, a few at a time.
	streams := make([]*chanStream, l.Streams)
	start := time.Now()
	rec := NewRecorder(start)
	if err := Parallel(ctx, 16, l.Streams, func(ctx context.Context, i int) error {
		user, pass := l.Credentials(i)
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		t0 := time.Now()
		cs, err := dialChanStream(actx, l.Server, peer, user, pass, l.Realm)
		if err != nil {
			var te *media.TURNError
			class := ErrorClass(err)
			if errors.As(err, &te) {
				class = fmt.Sprintf("TURN %d", te.Code)
			}
			rec.Record(time.Now(), time.Since(t0), "allocate: "+class)
			return nil // counted; the run goes on with the others
		}
		streams[i] = cs // each index written once, read after Parallel returns
		return nil
	}); err != nil {
		return nil, TURNStats{}, err
	}
	var st TURNStats
	var live []*chanStream
	for _, cs := range streams {
		if cs != nil {
			live = append(live, cs)
		}
	}
	st.Allocated = len(live)
	var wg sync.WaitGroup
	defer func() {
		for _, cs := range live {
			cs.close() // ends its receiver
		}
		wg.Wait()
	}()
	if st.Allocated == 0 {
		return rec, st, errors.New("bench: no TURN allocation succeeded")
	}
	if l.Allocated != nil {
		l.Allocated(st.Allocated)
	}

	// Stream: the recorder's clock starts now.
	rec = NewRecorder(time.Now())
	var sent, received atomic.Uint64
	sctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	for _, cs := range live {
		wg.Add(1)
		go func() { // receiver: until the stream's socket closes
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				data, err := cs.recv(buf)
				if err != nil {
					return
				}
				if len(data) < turnLoadHeader {
					continue
				}
				at := time.Now()
				sentAt := time.Unix(0, int64(binary.BigEndian.Uint64(data[8:])))
				received.Add(1)
				rec.Record(at, at.Sub(sentAt), "")
			}
		}()
	}
	// Senders: a few pacers, each sending for its share of the streams
	// when each is due; the streams' first packets are spread evenly over
	// the interval, as independent phones' would be.
	base := time.Now()
	shards := min(len(live), pacers())
	var senders sync.WaitGroup
	for sh := range shards {
		senders.Add(1)
		go func() {
			defer senders.Done()
			type due struct {
				cs  *chanStream
				at  time.Time
				seq uint64
			}
			var mine []due
			for i := sh; i < len(live); i += shards {
				mine = append(mine, due{cs: live[i], at: base.Add(time.Duration(i) * l.Interval / time.Duration(len(live)))})
			}
			pkt := make([]byte, l.PacketSize)
			frame := make([]byte, 4+l.PacketSize)
			timer := time.NewTimer(0)
			defer timer.Stop()
			for {
				now := time.Now()
				next := now.Add(l.Interval)
				for j := range mine {
					d := &mine[j]
					if !d.at.After(now) {
						binary.BigEndian.PutUint64(pkt[0:], d.seq)
						binary.BigEndian.PutUint64(pkt[8:], uint64(time.Now().UnixNano()))
						if d.cs.send(frame, pkt) == nil {
							sent.Add(1)
						}
						d.seq++
						d.at = d.at.Add(l.Interval)
						if d.at.Before(now) { // behind by a whole interval: skip, do not burst
							d.at = now.Add(l.Interval)
						}
					}
					if d.at.Before(next) {
						next = d.at
					}
				}
				timer.Reset(time.Until(next))
				select {
				case <-sctx.Done():
					return
				case <-timer.C:
				}
			}
		}()
	}
	if l.Progress != nil {
		done := make(chan struct{})
		defer close(done)
		go Load{Progress: l.Progress, What: "relay"}.progress(rec, done)
	}
	<-sctx.Done()
	senders.Wait()
	time.Sleep(time.Second) // the last packets in flight
	st.Sent, st.Received = sent.Load(), received.Load()
	if l.Progress != nil {
		fmt.Fprintf(l.Progress, "\r%s\n", progressLine("relay", rec.Summary(time.Now()), 0))
	}
	return rec, st, nil
}

// echoReaders is the number of goroutines the echo peer reads with.
const echoReaders = 4

// pacers is the number of sender goroutines of a TURN load: a few per
// CPU, so a thousand streams cost a few wake-ups per millisecond, not a
// thousand.
func pacers() int { return 4 * runtime.GOMAXPROCS(0) }

// Parallel runs fn for 0..n-1 on up to workers goroutines; the first error
// stops the rest and is returned (as is the end of ctx).
func Parallel(ctx context.Context, workers, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}
