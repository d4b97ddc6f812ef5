//go:build unix

package fdlimit

import (
	"fmt"
	"math"
	"syscall"
)

// Raise sets the soft RLIMIT_NOFILE to the hard limit. (Go's runtime
// already does so at start on Linux since Go 1.19; doing it here makes it
// explicit, covers platforms where it does not, and tells the caller what
// the limit is.) Where the hard limit is unlimited it raises to the
// largest value the kernel accepts among a few candidates.
func Raise() (Limit, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return Limit{}, fmt.Errorf("fdlimit: getrlimit: %w", err)
	}
	l := Limit{SoftBefore: rl.Cur, Soft: rl.Cur, Hard: rl.Max}
	if rl.Cur >= rl.Max {
		return l, nil
	}
	targets := []uint64{rl.Max}
	if rl.Max == math.MaxUint64 || rl.Max > 1<<30 { // RLIM_INFINITY: the kernel caps at nr_open / OPEN_MAX
		targets = []uint64{1 << 20, 1 << 16, 10240}
	}
	var err error
	for _, want := range targets {
		if want <= rl.Cur {
			break
		}
		set := syscall.Rlimit{Cur: want, Max: rl.Max}
		if err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &set); err == nil {
			l.Soft = want
			return l, nil
		}
	}
	return l, fmt.Errorf("fdlimit: setrlimit: %w", err)
}

// Current is the soft RLIMIT_NOFILE (Assumed if it cannot be read or is
// unlimited).
func Current() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt32 {
		return Assumed
	}
	return int(rl.Cur)
}
