//go:build !unix

package main

import (
	"errors"
	"os"
)

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p != nil && pid > 0
}

func terminate(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return errors.Join(p.Kill())
}
