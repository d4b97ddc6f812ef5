//go:build linux

package udpbatch

import "syscall"

// batching reports whether recvmmsg/sendmmsg are used on this system.
const batching = true

// msgTrunc is the recvmmsg flag for a datagram longer than its buffer.
const msgTrunc = syscall.MSG_TRUNC
