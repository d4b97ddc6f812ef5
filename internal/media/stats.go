package media

import "time"

// clockRate is the RTP clock of PCMU (RFC 3551 §4.5.14): 8000 units a second.
const clockRate = 8000

// Stats are one Stream's counters, as the phone reports them at hang-up.
type Stats struct {
	// Sent is how many SRTP packets were written.
	Sent int
	// Received is how many datagrams were read from the connection,
	// whatever became of them.
	Received int
	// Lost is expected minus received-and-authenticated (RFC 3550 §A.3,
	// counting each sequence number once), expected being the span from the
	// lowest to the highest sequence number that authenticated.
	Lost int
	// Reordered is how many authenticated packets arrived after one with a
	// higher sequence number.
	Reordered int
	// Duplicates is how many packets were refused as repeats by the SRTP
	// replay check (or the sequence window behind it). Packets more than
	// ReplayWindow behind the newest are refused and counted here too: the
	// check cannot tell them from repeats.
	Duplicates int
	// AuthFailures is how many packets failed SRTP authentication (wrong
	// key or tampering). None of them is played.
	AuthFailures int
	// Malformed is how many datagrams were not SRTP, or decrypted to RTP
	// that is not PCMU.
	Malformed int
	// JitterMs is the RFC 3550 §A.8 interarrival jitter estimate, in
	// milliseconds (the 8 kHz timestamp units divided by 8).
	JitterMs float64
	// PlayedOut is how many packets authenticated, were new, and were handed
	// to the player.
	PlayedOut int
}

// receiveStats keeps the RFC 3550 §A.3 and §A.8 receiver statistics for one
// SSRC: extended highest sequence number, the sequence numbers seen in a
// window behind it, and the interarrival jitter. Not safe for concurrent
// use; Stream guards it.
type receiveStats struct {
	started   bool
	base, max int64                     // extended sequence numbers
	seen      [ReplayWindow / 64]uint64 // bit (ext % ReplayWindow) set if ext was received
	received  int                       // distinct sequence numbers received
	reordered int
	dups      int

	jitter      float64 // RFC 3550 J, in timestamp units
	lastArrival time.Time
	lastTS      uint32
}

// observe records an authenticated packet and reports whether it is new
// (not a duplicate, not behind the window), that is whether to play it.
func (r *receiveStats) observe(seq uint16, ts uint32, arrival time.Time) bool {
	if !r.started {
		r.started = true
		r.base, r.max = int64(seq), int64(seq)
		r.mark(r.max)
		r.received = 1
		r.lastArrival, r.lastTS = arrival, ts
		return true
	}
	// The extended sequence number closest to the highest one so far.
	ext := r.max + int64(int16(seq-uint16(r.max)))
	switch {
	case ext > r.max:
		if ext-r.max >= ReplayWindow {
			r.seen = [ReplayWindow / 64]uint64{}
		} else {
			for e := r.max + 1; e <= ext; e++ {
				r.unmark(e)
			}
		}
		r.max = ext
	case r.max-ext >= ReplayWindow || r.isMarked(ext):
		r.dups++
		return false
	default:
		r.reordered++
		if ext < r.base {
			r.base = ext
		}
	}
	r.mark(ext)
	r.received++
	r.updateJitter(ts, arrival)
	return true
}

// updateJitter is RFC 3550 §A.8: D is the difference of transit times of
// consecutive arrivals, J += (|D| - J)/16.
func (r *receiveStats) updateJitter(ts uint32, arrival time.Time) {
	arrivalUnits := float64(arrival.Sub(r.lastArrival)) * clockRate / float64(time.Second)
	sentUnits := float64(int32(ts - r.lastTS)) // wraps like the 32-bit clock
	d := arrivalUnits - sentUnits
	if d < 0 {
		d = -d
	}
	r.jitter += (d - r.jitter) / 16
	r.lastArrival, r.lastTS = arrival, ts
}

func (r *receiveStats) mark(ext int64) {
	i := uint64(ext) % ReplayWindow
	r.seen[i/64] |= 1 << (i % 64)
}

func (r *receiveStats) unmark(ext int64) {
	i := uint64(ext) % ReplayWindow
	r.seen[i/64] &^= 1 << (i % 64)
}

func (r *receiveStats) isMarked(ext int64) bool {
	i := uint64(ext) % ReplayWindow
	return r.seen[i/64]&(1<<(i%64)) != 0
}

// lost is expected minus received (RFC 3550 §A.3), never negative.
func (r *receiveStats) lost() int {
	if !r.started {
		return 0
	}
	if l := int(r.max-r.base+1) - r.received; l > 0 {
		return l
	}
	return 0
}

// jitterMs is the jitter in milliseconds at the 8 kHz clock.
func (r *receiveStats) jitterMs() float64 { return r.jitter * 1000 / clockRate }
