package relay

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// Issue 9, item 12: TURN TCP and TLS connections that hold no allocation
// are closed after turn.tcp_idle_timeout — silent ones, ones that only
// ask for a Binding, and ones whose allocation ended — while one holding
// an allocation stays open.
func TestTURNIdleTCPClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	f := startTURN(t, turnFixtureOptions{cfg: func(c *Config) { c.TCPIdleTimeout = idle }})
	// closedWithin waits for EOF (or a reset) on c, at most 10 s.
	closedWithin := func(t *testing.T, c net.Conn) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("connection still open after 10 s")
			}
			return // io.EOF or a reset: closed by the server
		}
	}
	t.Run("silent tcp", func(t *testing.T) {
		c, err := net.Dial("tcp4", f.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		closedWithin(t, c)
	})
	t.Run("silent tls", func(t *testing.T) {
		c, err := tls.Dial("tcp4", f.tls, &tls.Config{RootCAs: f.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		closedWithin(t, c)
	})
	t.Run("binding only", func(t *testing.T) {
		c := dialRaw(t, "tcp4", f.tcp, "", "")
		if res := c.roundTrip(stun.TransactionID, stun.BindingRequest, stun.Fingerprint); !isSuccess(res) {
			t.Fatalf("Binding: %v", res)
		}
		closedWithin(t, c.conn)
	})
	t.Run("allocated, then released", func(t *testing.T) {
		u, p := creds("SEP00AABBCC03", time.Hour)
		c := dialRaw(t, "tcp4", f.tcp, u, p)
		if res := c.allocate(false); !isSuccess(res) {
			t.Fatalf("Allocate: %v (code %d)", res, errorCode(res))
		}
		// Held open well past the timeout while the allocation lives: a
		// Binding answered after 3 idle periods.
		_ = c.conn.SetReadDeadline(time.Now().Add(3 * idle))
		if n, err := c.conn.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read on an allocated connection: %d bytes, %v; want nothing", n, err)
		}
		if res := c.roundTrip(stun.TransactionID, stun.BindingRequest, stun.Fingerprint); !isSuccess(res) {
			t.Fatalf("allocated connection closed: Binding got %v", res)
		}
		if res := c.refresh(0); !isSuccess(res) {
			t.Fatalf("Refresh 0: %v (code %d)", res, errorCode(res))
		}
		closedWithin(t, c.conn)
	})
}
