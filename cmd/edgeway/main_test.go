package main

import (
	"os"
	"strings"
	"testing"
)

// mainArgsEnv, when set in a test binary's environment, makes the binary
// run as `edgeway` with these arguments (separated by the unit separator, 0x1f) instead of running
// tests: the crash tests start real edgeway processes this way and kill
// them.
const mainArgsEnv = "EDGEWAY_TEST_MAIN_ARGS"

// TestMain sets the process loggers once, before any test starts servers
// whose goroutines read sipgo's default logger (see newLogger).
func TestMain(m *testing.M) {
	if args := os.Getenv(mainArgsEnv); args != "" {
		os.Args = append([]string{"edgeway"}, strings.Split(args, "\x1f")...)
		main()
		os.Exit(0)
	}
	if _, err := newLogger("error", "text"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
