package logx

import (
	"bytes"
	"sync"
)

// Buffer is a log sink that goroutines write to while another reads it —
// a node's slog handler, a child process's stderr — as tests and the
// quickstart's start-up checks do. The zero value is ready to use.
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed at the next Write
}

// Write appends p and wakes whoever waits on Changed.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.b.Write(p)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return n, err
}

// String is everything written so far.
func (b *Buffer) String() string {
	s, _ := b.Snapshot()
	return s
}

// Snapshot is everything written so far and a channel closed at the next
// Write, so a reader can wait for more without polling.
func (b *Buffer) Snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed == nil {
		b.changed = make(chan struct{})
	}
	return b.b.String(), b.changed
}
