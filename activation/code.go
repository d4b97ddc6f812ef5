package activation

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Code is an activation code: exactly 16 ASCII digits. Obtain one from
// Generate or Parse.
type Code string

// codeSpace is the number of distinct codes, 10^16.
const codeSpace = 10_000_000_000_000_000

// acceptBelow is the largest multiple of codeSpace that fits in 2^64: random
// 64-bit values at or above it are rejected, so v % codeSpace is uniform.
const acceptBelow = math.MaxUint64 - math.MaxUint64%codeSpace

// Generate returns a new code drawn uniformly from the 10^16 possible ones
// using crypto/rand.
func Generate() (Code, error) { return generate(rand.Reader) }

func generate(r io.Reader) (Code, error) {
	var b [8]byte
	// Rejection happens with probability ~2.4e-5, so this loop almost never
	// runs twice; the bound only guards against a broken reader.
	for range 64 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("activation: generate code: %w", err)
		}
		v := binary.BigEndian.Uint64(b[:])
		if v < acceptBelow {
			return Code(fmt.Sprintf("%016d", v%codeSpace)), nil
		}
	}
	return "", fmt.Errorf("activation: generate code: random source keeps returning out-of-range values")
}

// Parse reads a code as a person or a phone may type it:
// "1234-5678-9012-3456", "1234 5678 9012 3456" or "1234567890123456".
// Anything else, including mixed separators, misplaced groups, surrounding
// spaces and non-ASCII digits, gives an error wrapping ErrMalformed. The input
// is never echoed in the error.
func Parse(s string) (Code, error) {
	switch len(s) {
	case 16:
		for i := 0; i < len(s); i++ {
			if !isDigit(s[i]) {
				return "", fmt.Errorf("%w: character %d is not a digit 0-9", ErrMalformed, i+1)
			}
		}
		return Code(s), nil
	case 19:
		sep := s[4]
		if sep != '-' && sep != ' ' {
			return "", fmt.Errorf("%w: groups of four digits must be separated by '-' or ' '", ErrMalformed)
		}
		digits := make([]byte, 0, 16)
		for i := 0; i < len(s); i++ {
			if i%5 == 4 {
				if s[i] != sep {
					return "", fmt.Errorf("%w: groups must be four digits each, all separated by the same '-' or ' '", ErrMalformed)
				}
				continue
			}
			if !isDigit(s[i]) {
				return "", fmt.Errorf("%w: character %d is not a digit 0-9", ErrMalformed, i+1)
			}
			digits = append(digits, s[i])
		}
		return Code(digits), nil
	default:
		return "", fmt.Errorf("%w: want 16 digits, bare or as four groups of four separated by '-' or ' '", ErrMalformed)
	}
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// String returns the code grouped for display, "1234-5678-9012-3456".
func (c Code) String() string {
	s := string(c)
	if len(s) != 16 {
		return s
	}
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// Digits returns the 16 digits without separators.
func (c Code) Digits() string {
	if p, err := Parse(string(c)); err == nil {
		return string(p)
	}
	return string(c)
}

// Hash returns HMAC-SHA256(secret, digits): the only form of a code that is
// stored. A Code built by conversion from a grouped string is normalized to
// its digits first, so every accepted spelling hashes alike.
func Hash(secret []byte, c Code) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(c.Digits()))
	return m.Sum(nil)
}
