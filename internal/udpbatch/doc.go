// Package udpbatch wraps a *net.UDPConn in a net.PacketConn that reads and
// writes several datagrams per system call (recvmmsg/sendmmsg through
// golang.org/x/net/ipv4 and ipv6 ReadBatch/WriteBatch), so that code written
// against net.PacketConn, such as pion/turn's server, pays fewer system calls
// per datagram without being changed (issue 13 §2).
//
// Reads: one ReadBatch fills up to Options.ReadBatch buffers with whatever
// the kernel has queued (it never waits for a full batch: on the
// non-blocking socket recvmmsg returns as soon as the queue is empty, and
// Go's netpoller parks the caller only while nothing at all is queued);
// ReadFrom hands them out one per call.
//
// Writes: flat combining. If no goroutine is flushing, WriteTo becomes the
// flusher: it sends its own datagram with one sendto, then sends whatever
// other writers queued meanwhile with WriteBatch, until the queue is empty.
// A caller that finds a flusher at work copies its datagram into the queue
// and returns at once; it leaves in the flusher's next sendmmsg. No datagram
// waits for more traffic (issue 13: "send what is there"). When the queue is
// full, WriteTo waits for the flusher to take it (or, with DropWhenFull,
// drops the datagram and counts it).
//
// Batching is used on Linux only. On other systems (batch_other.go) Conn
// passes ReadFrom and WriteTo straight to the *net.UDPConn.
//
// The relay (edge/relay) is the intended caller: the TURN listener's
// PacketConn (turn.ServerConfig.PacketConnConfigs) and, optionally, the
// relay sockets its RelayAddressGenerator allocates.
package udpbatch
