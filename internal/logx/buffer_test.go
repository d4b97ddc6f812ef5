package logx

import (
	"sync"
	"testing"
	"time"
)

func TestBufferConcurrentWritesAndWake(t *testing.T) {
	var b Buffer
	s, changed := b.Snapshot()
	if s != "" {
		t.Fatalf("empty buffer reads %q", s)
	}
	select {
	case <-changed:
		t.Fatal("Changed closed before any write")
	default:
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
			}
		}()
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("a write did not wake the reader")
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Fatalf("%d bytes after 800 one-byte writes", got)
	}
}
