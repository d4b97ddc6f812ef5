// Package pgtest starts a throwaway PostgreSQL server for tests: a new
// cluster (initdb) in a temporary directory, served by pg_ctl on a free
// loopback port with its Unix socket in the same directory, stopped and
// removed when the test ends. It is a real server, the Debian `postgresql`
// package's (`.ci/run` installs it); nothing is mocked.
//
// PostgreSQL refuses to run as root, so when the tests run as root the
// cluster belongs to, and the server runs as, the `postgres` user (through
// runuser).
//
// The server runs with fsync off: these are tests of Edgeway's behaviour
// across nodes, not of PostgreSQL's durability.
package pgtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// URL connects as the cluster's superuser "edgeway" (trust
	// authentication, loopback only) to the database "postgres".
	URL  string
	Port int
	Dir  string // the cluster, its socket and its log
}

// Start starts a server for t, stopped and removed at t's cleanup. When
// PostgreSQL's server programs are not installed, t is skipped on a
// developer's machine (so `go test ./...` needs nothing but Go) and fails
// under CI=true, where .ci/run installs them.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "edgeway-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The server's user must reach the directory (MkdirTemp makes it 0700).
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	as, err := runAs(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	run := func(what string, args ...string) {
		t.Helper()
		cmd := exec.Command(as[0], append(as[1:], args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("pgtest: %s: %v\n%s\n%s", what, err, out, log)
		}
	}
	run("initdb", filepath.Join(bin, "initdb"), "-D", data, "-U", "edgeway", "-A", "trust",
		"--no-sync", "-E", "UTF8", "--locale=C")
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", port, dir)
	run("start", filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start")
	t.Cleanup(func() {
		cmd := exec.Command(as[0], append(as[1:], filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("pgtest: stop: %v\n%s", err, out)
		}
	})
	return &Server{URL: fmt.Sprintf("postgres://edgeway@127.0.0.1:%d/postgres?sslmode=disable", port), Port: port, Dir: dir}
}

// binDir finds PostgreSQL's server programs: on PATH, else in Debian's
// /usr/lib/postgresql/VERSION/bin (the newest).
func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgtest: PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql")
}

// version is the VERSION of /usr/lib/postgresql/VERSION/bin.
func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// runAs is the command prefix that runs PostgreSQL's programs: none for an
// ordinary user; as root, runuser to the postgres user, who then owns dir.
func runAs(dir string) ([]string, error) {
	if os.Geteuid() != 0 {
		return []string{"env"}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and there is no postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root without runuser: %w", err)
	}
	return []string{runuser, "-u", "postgres", "--"}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	_, p, _ := strings.Cut(l.Addr().String(), ":")
	return strconv.Atoi(p)
}
