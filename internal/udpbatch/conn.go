package udpbatch

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Defaults for Options.
const (
	DefaultReadBatch   = 32
	DefaultWriteBatch  = 64
	DefaultWriteQueue  = 1024
	DefaultMaxDatagram = 2048
)

// ErrAddress is returned by WriteTo for an address that is not a *net.UDPAddr.
var ErrAddress = errors.New("udpbatch: address is not a *net.UDPAddr")

// Options tune a Conn. The zero value is usable.
type Options struct {
	// ReadBatch is the most datagrams one recvmmsg reads (default 32).
	// The Conn holds ReadBatch × MaxDatagram bytes of read buffers,
	// allocated at the first ReadFrom.
	ReadBatch int
	// WriteBatch is the most datagrams one sendmmsg writes (default 64).
	WriteBatch int
	// WriteQueue is the most datagrams queued for the flusher (default
	// 1024). A WriteTo that finds it full waits for the flusher to take the
	// queue (Stats.WriteWaits), as a plain WriteTo waits for a full socket
	// buffer, unless DropWhenFull is set.
	WriteQueue int
	// DropWhenFull makes a WriteTo that finds the queue full drop its
	// datagram (Stats.WriteDrops) instead of waiting. Measured on 2 CPUs
	// (BenchmarkWrite200Goroutines): with 200 writing goroutines a burst can
	// starve the one flusher, and dropping then lost 14 % of the datagrams
	// at 50,000 per second, so waiting is the default.
	DropWhenFull bool
	// MaxDatagram is the size of each read buffer (default 2048). A longer
	// datagram is truncated, as a short buffer passed to
	// (*net.UDPConn).ReadFrom would truncate it, and counted in
	// Stats.Truncated.
	MaxDatagram int
}

func (o Options) withDefaults() Options {
	if o.ReadBatch <= 0 {
		o.ReadBatch = DefaultReadBatch
	}
	if o.WriteBatch <= 0 {
		o.WriteBatch = DefaultWriteBatch
	}
	if o.WriteQueue <= 0 {
		o.WriteQueue = DefaultWriteQueue
	}
	if o.MaxDatagram <= 0 {
		o.MaxDatagram = DefaultMaxDatagram
	}
	return o
}

// Stats is a snapshot of a Conn's counters, for metrics.
type Stats struct {
	DatagramsRead    uint64 // datagrams handed out by ReadFrom
	ReadSyscalls     uint64 // recvmmsg (or recvfrom) calls that returned datagrams
	DatagramsWritten uint64 // datagrams the kernel accepted
	WriteSyscalls    uint64 // sendmmsg (or sendto) calls that sent at least one
	WriteDrops       uint64 // datagrams dropped because the write queue was full (DropWhenFull)
	WriteWaits       uint64 // WriteTo calls that waited for room in the write queue
	WriteErrors      uint64 // datagrams the kernel refused (unreachable, refused, too big, …) or dropped at Close
	Truncated        uint64 // datagrams longer than MaxDatagram
}

// batchConn is the part of ipv4.PacketConn and ipv6.PacketConn Conn uses.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

type outgoing struct {
	buf  *[]byte
	n    int
	addr *net.UDPAddr
}

// Conn is a net.PacketConn over a *net.UDPConn that batches system calls.
// It is safe for concurrent use.
//
// Concurrency: rmu guards the read side (ms, bufs, next, filled); one
// ReadFrom at a time runs recvmmsg while holding it, the others wait for it
// and then take datagrams already read. wmu guards queue, spare, flushing
// and closed; the goroutine that set flushing owns out and is the only one
// calling WriteBatch. Conn starts no goroutines.
type Conn struct {
	c     *net.UDPConn
	bc    batchConn
	opts  Options
	v6    bool // the socket is AF_INET6
	laddr net.Addr

	rmu    sync.Mutex
	ms     []ipv4.Message
	next   int // next message of ms to hand out
	filled int // messages of ms filled by the last ReadBatch

	wmu      sync.Mutex
	queue    []outgoing
	spare    []outgoing
	flushing bool
	closed   bool
	room     sync.Cond                               // on wmu: signalled when the flusher takes the queue, and at Close
	out      []ipv4.Message                          // owned by the flusher
	onWait   func()                                  // test hook: a writer is about to wait for room
	sendto   func([]byte, *net.UDPAddr) (int, error) // c.c.WriteToUDP; tests wrap it

	pool sync.Pool // *[]byte of cap MaxDatagram

	closeOnce sync.Once
	closeErr  error
	isClosed  atomic.Bool

	datagramsRead, readSyscalls       atomic.Uint64
	datagramsWritten, writeSyscalls   atomic.Uint64
	writeDrops, writeErrors, truncate atomic.Uint64
	writeWaits                        atomic.Uint64
}

var _ net.PacketConn = (*Conn)(nil)

// New wraps c. The Conn owns c from now on: Close closes it.
func New(c *net.UDPConn, opts Options) *Conn {
	opts = opts.withDefaults()
	bc := &Conn{c: c, opts: opts, laddr: c.LocalAddr()}
	bc.room.L = &bc.wmu
	bc.sendto = c.WriteToUDP
	if la, ok := bc.laddr.(*net.UDPAddr); ok && la.IP.To4() == nil {
		// "[::]" (also what Go makes of ":port" and "0.0.0.0:port") and IPv6
		// addresses: the socket is AF_INET6.
		bc.v6 = true
	}
	if bc.v6 {
		bc.bc = ipv6.NewPacketConn(c)
	} else {
		bc.bc = ipv4.NewPacketConn(c)
	}
	size := opts.MaxDatagram
	bc.pool.New = func() any { b := make([]byte, size); return &b }
	return bc
}

// Stats returns the counters.
func (c *Conn) Stats() Stats {
	return Stats{
		DatagramsRead:    c.datagramsRead.Load(),
		ReadSyscalls:     c.readSyscalls.Load(),
		DatagramsWritten: c.datagramsWritten.Load(),
		WriteSyscalls:    c.writeSyscalls.Load(),
		WriteDrops:       c.writeDrops.Load(),
		WriteWaits:       c.writeWaits.Load(),
		WriteErrors:      c.writeErrors.Load(),
		Truncated:        c.truncate.Load(),
	}
}

// ReadFrom returns the next datagram: one already read by an earlier
// recvmmsg, or else the first of a new batch. It blocks only while no
// datagram at all is queued in the kernel.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	if c.isClosed.Load() {
		return 0, nil, c.opErr("read", net.ErrClosed)
	}
	if !batching {
		n, addr, err := c.c.ReadFrom(p)
		if err == nil {
			c.datagramsRead.Add(1)
			c.readSyscalls.Add(1)
		}
		return n, addr, err
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for c.next >= c.filled {
		if err := c.fill(); err != nil {
			return 0, nil, err
		}
	}
	m := &c.ms[c.next]
	c.next++
	n := copy(p, m.Buffers[0][:m.N])
	addr := m.Addr
	m.Addr = nil
	c.datagramsRead.Add(1)
	return n, addr, nil
}

// fill runs one recvmmsg. Called with rmu held.
func (c *Conn) fill() error {
	if c.ms == nil {
		c.ms = make([]ipv4.Message, c.opts.ReadBatch)
		backing := make([]byte, c.opts.ReadBatch*c.opts.MaxDatagram)
		for i := range c.ms {
			b := backing[i*c.opts.MaxDatagram : (i+1)*c.opts.MaxDatagram : (i+1)*c.opts.MaxDatagram]
			c.ms[i].Buffers = [][]byte{b}
		}
	}
	c.next, c.filled = 0, 0
	for {
		if c.isClosed.Load() {
			return c.opErr("read", net.ErrClosed)
		}
		n, err := c.bc.ReadBatch(c.ms, 0)
		if n > 0 {
			c.readSyscalls.Add(1)
			for i := range n {
				if c.ms[i].Flags&msgTrunc != 0 {
					c.truncate.Add(1)
				}
			}
			c.filled = n
			return nil
		}
		if err == nil {
			continue
		}
		if transient(err) {
			// An ICMP error queued on the socket (only with IP_RECVERR, or
			// on a connected socket): it concerns an earlier write, not
			// this read, and must not end a reader such as pion's readLoop.
			continue
		}
		if c.isClosed.Load() || errors.Is(err, net.ErrClosed) {
			return c.opErr("read", net.ErrClosed)
		}
		return err
	}
}

// transient reports whether a socket error reports an earlier datagram's
// fate (ICMP unreachable and the like) rather than the socket's.
func transient(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.ECONNRESET)
}

// WriteTo sends p to addr. If no other goroutine is flushing, it sends p
// itself with one sendto (returning its error, as (*net.UDPConn).WriteTo
// would) and then flushes what others queued meanwhile. Otherwise it copies
// p into the queue and returns len(p), nil: the flusher's next sendmmsg,
// microseconds later, sends it, and an error the kernel reports for it is
// only counted in Stats.WriteErrors. addr must be a *net.UDPAddr, and must
// not be modified afterwards (pion/turn's addresses never are).
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, c.opErr("write", ErrAddress)
	}
	if !batching {
		return c.writeDirect(p, ua)
	}
	c.wmu.Lock()
	for !c.closed && len(c.queue) >= c.opts.WriteQueue {
		if c.opts.DropWhenFull {
			c.wmu.Unlock()
			c.writeDrops.Add(1)
			return len(p), nil
		}
		// The queue is only ever non-empty while a flusher runs, so room
		// comes when it next takes the queue.
		c.writeWaits.Add(1)
		if c.onWait != nil {
			c.onWait()
		}
		c.room.Wait()
	}
	if c.closed {
		c.wmu.Unlock()
		return 0, c.opErr("write", net.ErrClosed)
	}
	if !c.flushing {
		// Nothing queued and nobody flushing: send p from here with one
		// sendto, without copying it, then flush whatever other writers
		// queued meanwhile. Holding the flusher role keeps the order.
		c.flushing = true
		c.wmu.Unlock()
		n, err := c.writeOne(p, ua)
		c.flush()
		return n, err
	}
	buf := c.buffer(len(p))
	n := copy(*buf, p)
	c.queue = append(c.queue, outgoing{buf: buf, n: n, addr: ua})
	c.wmu.Unlock()
	return len(p), nil
}

// writeOne sends p with one sendto. Called by the flusher only.
func (c *Conn) writeOne(p []byte, addr *net.UDPAddr) (int, error) {
	n, err := c.sendto(p, addr)
	if err != nil && transient(err) {
		n, err = c.sendto(p, addr) // see send: a pending ICMP error of an earlier datagram
	}
	if err != nil {
		c.writeErrors.Add(1)
		return n, err
	}
	c.datagramsWritten.Add(1)
	c.writeSyscalls.Add(1)
	return n, nil
}

// buffer returns a buffer for an n-byte datagram: a pooled one, or for a
// datagram longer than MaxDatagram (rare) a new one of its own.
func (c *Conn) buffer(n int) *[]byte {
	if n > c.opts.MaxDatagram {
		b := make([]byte, n)
		return &b
	}
	return c.pool.Get().(*[]byte)
}

// release returns a buffer from buffer to the pool.
func (c *Conn) release(b *[]byte) {
	if cap(*b) == c.opts.MaxDatagram {
		c.pool.Put(b)
	}
}

func (c *Conn) writeDirect(p []byte, addr *net.UDPAddr) (int, error) {
	if c.isClosed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	n, err := c.c.WriteTo(p, addr)
	if err != nil {
		c.writeErrors.Add(1)
		return n, err
	}
	c.datagramsWritten.Add(1)
	c.writeSyscalls.Add(1)
	return n, nil
}

// flush sends everything queued until the queue is empty. Only the goroutine
// that set c.flushing calls it.
func (c *Conn) flush() {
	for {
		c.wmu.Lock()
		if c.closed {
			c.dropQueueLocked()
		}
		if len(c.queue) == 0 {
			c.flushing = false
			c.wmu.Unlock()
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.room.Broadcast()
		c.wmu.Unlock()

		c.send(batch)
		for i := range batch {
			c.release(batch[i].buf)
			batch[i] = outgoing{}
		}

		c.wmu.Lock()
		c.spare = batch[:0]
		c.wmu.Unlock()
	}
}

// send writes batch with as few sendmmsg calls as the kernel allows. A
// datagram the kernel refuses is counted and skipped; the rest still go.
func (c *Conn) send(batch []outgoing) {
	retried := false
	for len(batch) > 0 {
		k := min(len(batch), c.opts.WriteBatch)
		if cap(c.out) < k {
			c.out = make([]ipv4.Message, k)
			for i := range c.out {
				c.out[i].Buffers = make([][]byte, 1)
			}
		}
		out := c.out[:k]
		for i := range out {
			out[i].Buffers[0] = (*batch[i].buf)[:batch[i].n]
			out[i].Addr = batch[i].addr
		}
		n, err := c.bc.WriteBatch(out, 0)
		for i := range out {
			out[i].Buffers[0] = nil
			out[i].Addr = nil
		}
		if n > 0 {
			c.writeSyscalls.Add(1)
			c.datagramsWritten.Add(uint64(n))
			batch = batch[n:]
			retried = false
			continue
		}
		if c.isClosed.Load() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
			// Nothing more can leave: drop the rest.
			c.writeErrors.Add(uint64(len(batch)))
			return
		}
		if transient(err) && !retried {
			// A pending ICMP error of an earlier datagram (reported only
			// with IP_RECVERR or to a connected socket) fails the next
			// send and is consumed by it: this datagram was not at fault.
			retried = true
			continue
		}
		// sendmmsg reports an error only for its first datagram (EMSGSIZE,
		// a firewall's EPERM, …): skip it and send the others.
		retried = false
		c.writeErrors.Add(1)
		batch = batch[1:]
	}
}

// Close closes the socket. A blocked ReadFrom returns net.ErrClosed, and
// datagrams still queued are dropped (counted in Stats.WriteErrors).
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.isClosed.Store(true)
		c.wmu.Lock()
		c.closed = true
		c.room.Broadcast()
		if !c.flushing {
			c.dropQueueLocked()
		}
		c.wmu.Unlock()
		c.closeErr = c.c.Close()
	})
	return c.closeErr
}

// dropQueueLocked drops the queued datagrams of a closed Conn. Called with
// wmu held, by Close or, if a flush is running, by the flusher.
func (c *Conn) dropQueueLocked() {
	for i := range c.queue {
		c.release(c.queue[i].buf)
		c.queue[i] = outgoing{}
	}
	c.writeErrors.Add(uint64(len(c.queue)))
	c.queue = c.queue[:0]
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Err: err}
}

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// SetDeadline sets the socket's read and write deadlines. A write deadline
// applies to the flusher's sendmmsg, so to other goroutines' queued
// datagrams too.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// SetReadDeadline sets the socket's read deadline. Datagrams already read
// into the batch are still returned after it.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// SetWriteDeadline sets the socket's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.c.SetWriteDeadline(t) }
