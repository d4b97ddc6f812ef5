package relay

import (
	"sync"
	"time"
)

// tokenBucket meters bytes: rate per second, bursts up to half a
// second's worth (at least two full-size datagrams).
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate int) *tokenBucket {
	burst := max(float64(rate)/2, 2*1600)
	return &tokenBucket{rate: float64(rate), burst: burst, tokens: burst, last: time.Now()}
}

func (b *tokenBucket) take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}
