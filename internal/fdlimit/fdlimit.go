// Package fdlimit raises the process's open-file limit at start and turns
// it into connection caps: each listener gets a share of the descriptors
// left after a reserve for everything that is not an accepted connection
// (the edge→core links, the admin API, the store, logs), so a flood of
// connections is refused at a listener's cap before the process runs out
// of descriptors (issue 9 item 11). cmd/edgeway calls Raise; the tiers'
// config defaults call Current.
package fdlimit

// Assumed is the limit Current reports where the platform has none to
// read.
const Assumed = 100000

// MinReserve is the fewest descriptors DefaultReserve keeps back.
const MinReserve = 512

// DefaultReserve is the descriptors kept out of every listener's share:
// a tenth of limit, at least MinReserve, at most half of limit.
func DefaultReserve(limit int) int {
	r := max(MinReserve, limit/10)
	return min(r, limit/2)
}

// Share is num/den of what limit leaves after reserve and other (for
// example the TURN relay's sockets), at least floor: a listener's cap.
func Share(limit, reserve, other, num, den, floor int) int {
	usable := limit - reserve - other
	return max(floor, usable*num/den)
}

// Limit is the open-file limit before and after Raise.
type Limit struct {
	SoftBefore, Soft, Hard uint64
}
