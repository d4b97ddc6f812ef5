package pgtest

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A started server takes connections and keeps what is written; once its
// test ends the server is stopped (its port refuses connections) and its
// directory is gone.
func TestStartServesAndStops(t *testing.T) {
	var srv *Server
	t.Run("serve", func(t *testing.T) {
		srv = Start(t)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `CREATE TABLE t (k text PRIMARY KEY, v int)`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO t VALUES ('a', 42)`); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := conn.QueryRow(ctx, `SELECT v FROM t WHERE k = 'a'`).Scan(&v); err != nil || v != 42 {
			t.Fatalf("read back %d, %v; want 42", v, err)
		}
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port)); err != nil {
			t.Fatalf("the server's port refuses connections while it runs: %v", err)
		} else {
			c.Close()
		}
	})
	if srv == nil {
		t.SkipNow() // not installed, outside CI (Start said so)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port)); err == nil {
		c.Close()
		t.Fatalf("the server still listens on %d after its test ended", srv.Port)
	}
	if _, err := os.Stat(srv.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cluster directory %s is still there: %v", srv.Dir, err)
	}
}
