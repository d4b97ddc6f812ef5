package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkConcurrentWrites: many goroutines each starting a refresh-token
// family (one write transaction), as concurrent onboarding requests do.
// Without the write gate the losers of SQLite's write lock sleep in its busy
// handler (1, 2, 5 … 100 ms) instead of starting when the lock is free.
func BenchmarkConcurrentWrites(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := fmt.Sprint(i)
			if err := s.PutRefreshToken(ctx, RefreshToken{Hash: []byte("h" + id), Family: "f" + id, Device: "SEP" + id,
				Origin: "activation_code", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
