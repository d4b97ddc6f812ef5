package pgtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

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
	assertGone(t, srv.Port, srv.Dir)
}

// assertGone checks that nothing listens on port any more and dir is gone.
func assertGone(t *testing.T, port int, dir string) {
	t.Helper()
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		c.Close()
		t.Fatalf("the server still listens on %d", port)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the cluster directory %s is still there: %v", dir, err)
	}
}

// Database gives each test its own empty database, all on one server:
// what one test writes the next does not see, and a test's database is
// dropped when it ends, even with a connection still open to it.
func TestDatabaseFreshPerTestOnOneServer(t *testing.T) {
	ctx := context.Background()
	var urls []string
	var left *pgx.Conn // a connection the test leaves open
	for i := range 2 {
		t.Run(fmt.Sprint("test", i), func(t *testing.T) {
			u := Database(t)
			urls = append(urls, u)
			conn, err := pgx.Connect(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				left = conn
			} else {
				defer conn.Close(ctx)
			}
			var tables int
			if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
				t.Fatalf("a fresh database has %d tables, %v; want 0", tables, err)
			}
			if _, err := conn.Exec(ctx, `CREATE TABLE t (k text PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
		})
	}
	if len(urls) < 2 {
		t.SkipNow() // not installed, outside CI (Database said so)
	}
	if left != nil {
		defer left.Close(ctx)
	}
	c0, err := pgconn.ParseConfig(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	c1, err := pgconn.ParseConfig(urls[1])
	if err != nil {
		t.Fatal(err)
	}
	if c0.Port != c1.Port || c0.Database == c1.Database {
		t.Fatalf("databases %s:%d/%s and %s:%d/%s: want two databases on one server",
			c0.Host, c0.Port, c0.Database, c1.Host, c1.Port, c1.Database)
	}
	for _, u := range urls {
		conn, err := pgx.Connect(ctx, u)
		var pgErr *pgconn.PgError
		if err == nil {
			conn.Close(ctx)
			t.Fatalf("%s still exists after its test ended", u)
		}
		if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
			t.Fatalf("connecting to %s after its test ended: %v; want 3D000 (no such database)", u, err)
		}
	}
}

// The shared server lives as long as the test binary: Main stops it as
// soon as the tests have run; and a binary that ends without Main (here it
// exits in the middle of a test; a panic, a -timeout or a kill alike)
// leaves it to the watchdog, which stops it and removes its directory.
func TestSharedServerEndsWithTheBinary(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") != "" {
		t.Skip("in a child")
	}
	if _, err := binDir(); err != nil {
		skipOrFail(t, err)
	}
	for _, mode := range []string{"main", "exit"} {
		t.Run(mode, func(t *testing.T) {
			// The child and everything it starts (the server, the
			// watchdog) inherit done's write end; reading it to EOF waits
			// for the last of them to end.
			done, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer done.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildUsesSharedServer$", "-test.v")
			cmd.Env = append(os.Environ(), "PGTEST_CHILD="+mode)
			cmd.ExtraFiles = []*os.File{w}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			err = cmd.Wait()
			port, dir := childServer(t, out.Bytes())
			switch mode {
			case "main":
				if err != nil {
					t.Fatalf("child: %v\n%s", err, out.Bytes())
				}
				assertGone(t, port, dir) // Main stopped it before the child exited
			case "exit":
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 3 {
					t.Fatalf("child: %v, want exit status 3\n%s", err, out.Bytes())
				}
				ended := make(chan struct{})
				go func() { io.Copy(io.Discard, done); close(ended) }()
				select {
				case <-ended:
				case <-time.After(30 * time.Second):
					// Not a minute: a postmaster whose directory is removed
					// shuts itself down when it next checks its lock file,
					// every 60 s; this is to see the watchdog stop it.
					t.Fatalf("the server or its watchdog is still running 30 s after the binary ended (port %d, %s)", port, dir)
				}
				assertGone(t, port, dir)
			}
		})
	}
}

// childServer is the port and directory the child reported.
func childServer(t *testing.T, out []byte) (int, string) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var port int
		var dir string
		if n, _ := fmt.Sscanf(sc.Text(), "PGTEST port=%d dir=%s", &port, &dir); n == 2 {
			return port, dir
		}
	}
	t.Fatalf("the child did not report its server:\n%s", out)
	return 0, ""
}

// TestChildUsesSharedServer is the child of TestSharedServerEndsWithTheBinary.
func TestChildUsesSharedServer(t *testing.T) {
	mode := os.Getenv("PGTEST_CHILD")
	if mode == "" {
		t.Skip("only run as a child of TestSharedServerEndsWithTheBinary")
	}
	u := Database(t)
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	fmt.Printf("PGTEST port=%d dir=%s\n", shared.srv.Port, shared.srv.Dir)
	if mode == "exit" {
		os.Exit(3)
	}
}

// A Template is set up once; each test gets a copy of it of its own: what
// Setup made is there, and what a test writes the next one does not see.
func TestTemplateSetUpOnceCopiedPerTest(t *testing.T) {
	ctx := context.Background()
	setups := 0
	tp := &Template{Setup: func(ctx context.Context, url string) error {
		setups++
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `CREATE TABLE t (k text PRIMARY KEY); INSERT INTO t VALUES ('from setup')`)
		return err
	}}
	ran := 0
	for i := range 2 {
		t.Run(fmt.Sprint("test", i), func(t *testing.T) {
			conn, err := pgx.Connect(ctx, tp.Database(t))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var n int
			if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("the copy has %d rows, %v; want the one Setup wrote", n, err)
			}
			if _, err := conn.Exec(ctx, `INSERT INTO t VALUES ('from the test')`); err != nil {
				t.Fatal(err)
			}
			ran++
		})
	}
	if ran == 0 {
		t.SkipNow() // not installed, outside CI
	}
	if ran != 2 || setups != 1 {
		t.Fatalf("%d tests ran on copies of a template set up %d times; want 2 and once", ran, setups)
	}
}

func TestVersionNum(t *testing.T) {
	for out, want := range map[string]int{
		"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n": 150018,
		"postgres (PostgreSQL) 17.2\n":                           170002,
		"postgres (PostgreSQL) 16beta1\n":                        0,
		"":                                                       0,
	} {
		if got := versionNum(out); got != want {
			t.Errorf("versionNum(%q) = %d, want %d", out, got, want)
		}
	}
}
