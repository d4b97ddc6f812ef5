//go:build !linux

package udpbatch

// batching reports whether recvmmsg/sendmmsg are used on this system. Off
// Linux, x/net's ReadBatch/WriteBatch move one message per call anyway, so
// Conn passes reads and writes straight to the *net.UDPConn.
const batching = false

// msgTrunc is unused off Linux.
const msgTrunc = 0
