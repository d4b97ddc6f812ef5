package relay

import (
	"testing"
	"time"
)

// One device cannot exceed its quota (486); the whole server cannot
// exceed its own (508); a released allocation no longer counts.
func TestTURNQuotas(t *testing.T) {
	t.Run("per device 486", func(t *testing.T) {
		f := startTURN(t, turnFixtureOptions{cfg: func(c *Config) { c.MaxAllocationsPerDevice = 2 }})
		first, _ := f.allocate(t, "udp", "SEP0A")
		f.allocate(t, "tcp", "SEP0A")
		u, p := creds("SEP0A", time.Hour)
		c := f.dial(t, "udp", u, p)
		if relay, err := c.c.Allocate(); turnCode(err) != 486 {
			if err == nil {
				relay.Close()
			}
			t.Fatalf("third allocation of one device: %v, want 486 Allocation Quota Reached", err)
		}
		// Another device is not affected.
		f.allocate(t, "udp", "SEP0B")
		if a, b := f.srv.DeviceAllocations("SEP0A"), f.srv.DeviceAllocations("SEP0B"); a != 2 || b != 1 {
			t.Errorf("DeviceAllocations = %d, %d; want 2, 1", a, b)
		}

		// Released (Refresh with lifetime 0): the device may allocate again.
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the released allocation to be uncounted", func() bool { return f.srv.DeviceAllocations("SEP0A") == 1 })
		if n := f.srv.Allocations(); n != 2 {
			t.Errorf("Allocations() = %d, want 2", n)
		}
		f.allocate(t, "udp", "SEP0A")
	})

	t.Run("total 508", func(t *testing.T) {
		f := startTURN(t, turnFixtureOptions{cfg: func(c *Config) { c.MaxAllocations = 2 }})
		f.allocate(t, "udp", "SEP1A")
		_, tcpClient := f.allocate(t, "tcp", "SEP1B")
		u, p := creds("SEP1C", time.Hour)
		c := f.dial(t, "udp", u, p)
		if relay, err := c.c.Allocate(); turnCode(err) != 508 {
			if err == nil {
				relay.Close()
			}
			t.Fatalf("allocation past turn.max_allocations: %v, want 508 Insufficient Capacity", err)
		}
		// Closing a TCP connection releases its allocation.
		tcpClient.close()
		waitFor(t, "the TCP allocation to be released", func() bool { return f.srv.Allocations() == 1 })
		f.allocate(t, "udp", "SEP1C")
	})

	t.Run("expiry", func(t *testing.T) {
		f := startTURN(t, turnFixtureOptions{lifetime: time.Second})
		_, c := f.allocate(t, "udp", "SEP2A")
		if n := f.srv.Allocations(); n != 1 {
			t.Fatalf("Allocations() = %d, want 1", n)
		}
		// The client goes away without a word: its allocation expires.
		_ = c.conn.Close()
		waitFor(t, "the allocation to expire", func() bool { return f.srv.Allocations() == 0 })
	})
}
