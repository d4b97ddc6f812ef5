//go:build !unix

package main

import "os"

// lockFile is a no-op where flock is not available: run one process per
// device there.
func lockFile(*os.File) error { return nil }
