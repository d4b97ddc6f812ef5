package fdlimit

import "testing"

func TestDefaultReserve(t *testing.T) {
	for _, tc := range []struct{ limit, want int }{
		{20000, 2000}, // the box: a tenth
		{1024, 512},   // small limits keep MinReserve ...
		{600, 300},    // ... but never more than half
		{1 << 20, 1 << 20 / 10},
	} {
		if got := DefaultReserve(tc.limit); got != tc.want {
			t.Errorf("DefaultReserve(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}

// The numbers: 20,000 descriptors, 21 flooding addresses. The
// per-listener caps leave the reserve free, and 21 sources at the default
// per-source cap (200) fill less than the edge's SIP share, even with TURN
// on at its default 10,000 allocations.
func TestShareKeepsReserve(t *testing.T) {
	limit := 20000
	res := DefaultReserve(limit)
	for _, turn := range []int{0, min(10000, limit/4)} { // the edge keeps at most a quarter for TURN
		sip := Share(limit, res, turn, 2, 3, 64)
		https := Share(limit, res, turn, 1, 6, 64)
		if sip+2*https+res+turn > limit {
			t.Fatalf("TURN %d: sip %d + 2×https %d + reserve %d > limit %d", turn, sip, https, res, limit)
		}
		if 21*200 >= sip {
			t.Fatalf("TURN %d: 21 sources × 200 = %d fill the SIP cap %d", turn, 21*200, sip)
		}
	}
	if got := Share(1000, 900, 0, 1, 2, 64); got != 64 {
		t.Errorf("Share below the floor = %d, want the floor 64", got)
	}
}

func TestRaiseReachesHard(t *testing.T) {
	l, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	if l.Hard != 0 && l.Soft != l.Hard && l.Hard < 1<<30 {
		t.Fatalf("soft %d after Raise, hard %d", l.Soft, l.Hard)
	}
	if l.Soft != 0 && l.Soft < 1<<31 && Current() != int(l.Soft) {
		t.Fatalf("Current() = %d, soft %d", Current(), l.Soft)
	}
}
