package media

import (
	"math"
	"testing"
	"time"
)

func TestReceiveStatsSequences(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		seqs                  []uint16
		lost, reordered, dups int
		played                int
	}{
		{"in order", []uint16{1, 2, 3, 4, 5}, 0, 0, 0, 5},
		{"two gaps", []uint16{1, 2, 4, 5, 7}, 2, 0, 0, 5},
		{"one late", []uint16{1, 3, 2, 4}, 0, 1, 0, 4},
		{"late and lost", []uint16{1, 4, 2, 6}, 2, 1, 0, 4},
		{"duplicate", []uint16{1, 2, 2, 3}, 0, 0, 1, 3},
		{"late duplicate", []uint16{1, 2, 3, 2, 4}, 0, 0, 1, 4},
		{"reordered then duplicated", []uint16{1, 3, 2, 2}, 0, 1, 1, 3},
		{"wrap", []uint16{65534, 65535, 0, 1}, 0, 0, 0, 4},
		{"reordered across wrap", []uint16{65535, 1, 0, 2}, 0, 1, 0, 4},
		{"lost across wrap", []uint16{65534, 1}, 2, 0, 0, 2},
		{"earlier than the first", []uint16{10, 9, 11}, 0, 1, 0, 3},
		{"jump", []uint16{1, 5001}, 4999, 0, 0, 2},
		{"too old for the window", []uint16{1, 2, 2000, 3}, 1997, 0, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r receiveStats
			at := time.Unix(0, 0)
			played := 0
			for i, seq := range tc.seqs {
				if r.observe(seq, uint32(seq)*SamplesPerPacket, at.Add(time.Duration(i)*Ptime)) {
					played++
				}
			}
			if r.lost() != tc.lost || r.reordered != tc.reordered || r.dups != tc.dups || played != tc.played {
				t.Errorf("%v: lost %d reordered %d dups %d played %d; want %d %d %d %d",
					tc.seqs, r.lost(), r.reordered, r.dups, played, tc.lost, tc.reordered, tc.dups, tc.played)
			}
		})
	}
}

// Jitter (RFC 3550 §A.8) on synthetic arrivals whose transit-time
// differences |D| are all the same value d: after k differences,
// J = d·(1 − (15/16)^k).
func TestReceiveStatsJitter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		offset func(i int) time.Duration // arrival i − 20 ms·i
		d      float64                   // |D| in ms
		ts0    uint32
	}{
		{"perfect spacing", func(int) time.Duration { return 0 }, 0, 0},
		{"alternating 5 ms late", func(i int) time.Duration { return time.Duration(i%2) * 5 * time.Millisecond }, 5, 1000},
		{"drifting 1 ms per packet", func(i int) time.Duration { return time.Duration(i) * time.Millisecond }, 1, 0},
		{"timestamp wraps", func(i int) time.Duration { return time.Duration(i%2) * 2 * time.Millisecond }, 2, math.MaxUint32 - 5*SamplesPerPacket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r receiveStats
			for i := range 50 {
				arrival := start.Add(time.Duration(i)*Ptime + tc.offset(i))
				r.observe(uint16(i), tc.ts0+uint32(i)*SamplesPerPacket, arrival)
				want := tc.d * (1 - math.Pow(15.0/16, float64(i)))
				if got := r.jitterMs(); math.Abs(got-want) > 1e-6 {
					t.Fatalf("after packet %d: jitter %.9f ms, want %.9f", i, got, want)
				}
			}
		})
	}

	// A hand-computed sequence: transit times (in 8 kHz units) 0, 80, 40, 40.
	var r receiveStats
	r.observe(0, 0, start)
	r.observe(1, 160, start.Add(30*time.Millisecond)) // D = 80: J = 80/16 = 5
	r.observe(2, 320, start.Add(45*time.Millisecond)) // D = -40: J = 5 + (40-5)/16 = 7.1875
	r.observe(3, 480, start.Add(65*time.Millisecond)) // D = 0: J = 7.1875 - 7.1875/16 = 6.73828125
	if got, want := r.jitterMs(), 6.73828125/8; math.Abs(got-want) > 1e-9 {
		t.Errorf("jitter %.9f ms, want %.9f", got, want)
	}
}
