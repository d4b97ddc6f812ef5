package main

import (
	"os"
	"testing"
)

// TestMain sets the process loggers once, before any test starts servers
// whose goroutines read sipgo's default logger (see newLogger).
func TestMain(m *testing.M) {
	if _, err := newLogger("error", "text"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
