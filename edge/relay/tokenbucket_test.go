package relay

import "testing"

// A bucket starts full with half a second's worth (at least two
// full-size datagrams), refuses what exceeds what is left, and a refused
// datagram costs nothing.
func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(8000) // burst max(4000, 3200) = 4000 bytes
	b.rate = 0                // no refill during the test
	if !b.take(3000) {
		t.Fatal("first 3000 bytes refused from a full bucket of 4000")
	}
	if b.take(1001) {
		t.Error("1001 bytes taken with 1000 left")
	}
	if !b.take(1000) {
		t.Error("the 1000 bytes left refused after a refusal")
	}
	if b.take(1) {
		t.Error("a byte taken from an empty bucket")
	}
	small := newTokenBucket(100)
	if small.burst != 2*1600 {
		t.Errorf("burst at 100 B/s = %v, want two full-size datagrams (3200)", small.burst)
	}
}
