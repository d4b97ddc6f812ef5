//go:build !unix

package fdlimit

// Raise does nothing where there is no RLIMIT_NOFILE.
func Raise() (Limit, error) { return Limit{}, nil }

// Current is Assumed where there is no limit to read.
func Current() int { return Assumed }
