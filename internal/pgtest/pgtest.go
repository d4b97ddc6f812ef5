// Package pgtest runs throwaway PostgreSQL servers for tests: a new
// cluster (initdb) in a temporary directory, served by pg_ctl on a free
// loopback port with its Unix socket in the same directory. It is a real
// server, the Debian `postgresql` package's (`.ci/run` installs it);
// nothing is mocked.
//
// Two ways to get one:
//
//   - Database(t) gives t a fresh, empty database of its own on the test
//     binary's one shared server, started on first use and stopped when
//     the binary ends. This is the cheap path (a CREATE DATABASE, some
//     tens of milliseconds, instead of an initdb, one to two seconds):
//     use it unless the test needs a server to itself.
//   - A Template's Database(t) is the same with t's database a copy of a
//     database set up once per binary (a migrated schema, say).
//   - Start(t) starts a server for t alone, stopped at t's cleanup (a test
//     that stops or restarts the server, or inspects cluster-wide state).
//
// The shared server is stopped by Main, when the package's TestMain calls
// it, as soon as the tests have run. Every server also has a watchdog (a
// shell holding a pipe from the test binary) that stops it and removes
// its directory once the binary is gone, however it ended: without Main,
// on a panic, a -timeout, or a kill, no postmaster is left behind.
//
// PostgreSQL refuses to run as root, so when the tests run as root the
// cluster belongs to, and the server runs as, the `postgres` user (through
// runuser).
//
// The servers run with fsync off: these are tests of Edgeway's behaviour
// across nodes, not of PostgreSQL's durability.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// URL connects as the cluster's superuser "edgeway" (trust
	// authentication, loopback only) to the database "postgres".
	URL  string
	Port int
	Dir  string // the cluster, its socket and its log

	stopOnce sync.Once
	stopErr  error
	bin      string
	as       []string
	watchdog *exec.Cmd
	wpipe    io.Closer

	version   int // server_version_num
	adminMu   sync.Mutex
	adminPool *pgxpool.Pool // see admin
}

// Start starts a server for t alone, stopped and removed at t's cleanup.
// When PostgreSQL's server programs are not installed, t is skipped on a
// developer's machine (so `go test ./...` needs nothing but Go) and fails
// under CI=true, where .ci/run installs them.
func Start(t testing.TB) *Server {
	t.Helper()
	srv, err := launch()
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return srv
}

// errNotInstalled is launch's error when there is no server to run.
var errNotInstalled = errors.New("pgtest: PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql")

func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, errNotInstalled) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	t.Fatal(err)
}

// shared is the test binary's one server for Database, started by the
// first call.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error // launch's, kept: every later call fails (or skips) alike
}

// Database creates a fresh, empty database for t on the test binary's
// shared server (started by the first call) and returns a postgres:// URL
// that connects to it as the superuser "edgeway". The database is dropped
// at t's cleanup, closing any connection still open to it; register the
// cleanups that close t's connections after calling Database, so they run
// first. Tests on different databases do not see each other's tables,
// NOTIFY channels or advisory locks: PostgreSQL scopes all three to a
// database. Without PostgreSQL, t is skipped (fails under CI=true), as
// with Start.
func Database(t testing.TB) string {
	t.Helper()
	srv, err := sharedServer()
	if err != nil {
		skipOrFail(t, err)
	}
	return srv.database(t, "")
}

// database creates a database for t, a copy of template ("" for an empty
// one), dropped at t's cleanup, and returns its URL.
func (s *Server) database(t testing.TB, template string) string {
	t.Helper()
	name := randomName("t_")
	stmt := `CREATE DATABASE ` + name
	if template != "" {
		stmt += ` TEMPLATE ` + template
	}
	if s.version >= 150000 {
		// Copying the files (and a checkpoint, cheap with fsync off)
		// beats writing every page to the WAL, the default since 15.
		stmt += ` STRATEGY FILE_COPY`
	}
	if err := s.admin(stmt); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.admin(`DROP DATABASE ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.databaseURL(name)
}

// databaseURL is the URL of the database name on s.
func (s *Server) databaseURL(name string) string {
	u, err := url.Parse(s.URL)
	if err != nil {
		panic(err) // s.URL is ours
	}
	u.Path = "/" + name
	return u.String()
}

func randomName(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// A Template is a database that Database copies for each test instead of
// an empty one: Setup prepares it (creates a schema, say) once per test
// binary, on the shared server, so that each test does not pay for it
// again. A CREATE DATABASE costs the same either way. The zero Template's
// Database is pgtest.Database.
type Template struct {
	// Setup prepares the template database at url. The template takes no
	// connections afterwards (and any Setup left open are closed).
	Setup func(ctx context.Context, url string) error

	mu   sync.Mutex
	srv  *Server // the server the template was made on
	name string
	err  error
}

// Database creates a database for t that is a copy of the template (made
// by the first call), dropped at t's cleanup, and returns its URL, as
// pgtest.Database does.
func (tp *Template) Database(t testing.TB) string {
	t.Helper()
	srv, err := sharedServer()
	if err != nil {
		skipOrFail(t, err)
	}
	if tp.Setup == nil {
		return srv.database(t, "")
	}
	name, err := tp.make(srv)
	if err != nil {
		t.Fatal(err)
	}
	return srv.database(t, name)
}

// make makes the template on srv, once.
func (tp *Template) make(srv *Server) (string, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.srv == srv {
		return tp.name, tp.err
	}
	tp.srv, tp.name = srv, randomName("template_")
	tp.err = func() error {
		if err := srv.admin(`CREATE DATABASE ` + tp.name); err != nil {
			return fmt.Errorf("pgtest: create template: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := tp.Setup(ctx, srv.databaseURL(tp.name)); err != nil {
			return fmt.Errorf("pgtest: set up template: %w", err)
		}
		// CREATE DATABASE … TEMPLATE refuses a template anyone is
		// connected to.
		if err := srv.admin(`ALTER DATABASE ` + tp.name + ` WITH ALLOW_CONNECTIONS false`); err != nil {
			return fmt.Errorf("pgtest: template: %w", err)
		}
		if err := srv.admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + tp.name + `'`); err != nil {
			return fmt.Errorf("pgtest: template: %w", err)
		}
		return nil
	}()
	return tp.name, tp.err
}

// Main runs the tests and then stops the shared server (if a test started
// it), and exits with the tests' status; a server that would not stop
// fails the run. Call it from the package's TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := stopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func sharedServer() (*Server, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = launch()
	}
	return shared.srv, shared.err
}

// stopShared stops the shared server; a later Database starts another.
func stopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	srv := shared.srv
	shared.srv = nil
	if srv == nil {
		return nil
	}
	return srv.stop()
}

// admin runs one statement on the server's "postgres" database, through
// a pool of connections kept until the server stops.
func (s *Server) admin(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s.adminMu.Lock()
	if s.adminPool == nil {
		pool, err := pgxpool.New(ctx, s.URL)
		if err != nil {
			s.adminMu.Unlock()
			return err
		}
		s.adminPool = pool
	}
	pool := s.adminPool
	s.adminMu.Unlock()
	_, err := pool.Exec(ctx, stmt)
	return err
}

// launch creates a cluster in a new temporary directory and starts its
// server, with a watchdog that stops it if this process ends first.
func launch() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "edgeway-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	// The server's user must reach the directory (MkdirTemp makes it 0700).
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	as, err := runAs(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin, as: as}
	// The watchdog first, so that no moment exists where a server runs
	// without one.
	if err := s.startWatchdog(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := s.run("initdb", filepath.Join(bin, "initdb"), "-D", data, "-U", "edgeway", "-A", "trust",
		"--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		s.stop()
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", port, dir)
	if err := s.run("start", filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		s.stop()
		return nil, err
	}
	s.Port = port
	s.URL = fmt.Sprintf("postgres://edgeway@127.0.0.1:%d/postgres?sslmode=disable", port)
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("pgtest: postgres --version: %w", err)
	}
	s.version = versionNum(string(out))
	return s, nil
}

// run runs one of PostgreSQL's programs as the server's user, in its
// directory; a failure carries the program's output and the server log.
func (s *Server) run(what string, args ...string) error {
	cmd := exec.Command(s.as[0], append(s.as[1:], args...)...)
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
		return fmt.Errorf("pgtest: %s: %v\n%s\n%s", what, err, out, log)
	}
	return nil
}

// watchdogScript waits for its stdin (a pipe whose only writer is the test
// binary) to end, then stops the server and removes its directory. Its
// arguments are the command that stops the server.
const watchdogScript = `read _ ; "$@" ; rm -rf "$PGTEST_DIR"`

// startWatchdog starts the shell that stops the server when the test
// binary ends without doing so: it reads a pipe only this process writes
// to, and the kernel closes that when the process exits in any way. It
// runs in its own process group, so a Ctrl-C meant for the tests does not
// end it before the binary, and with no output of the binary's: `go test`
// would wait for it to close them.
func (s *Server) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pgtest: watchdog: %w", err)
	}
	stop := append(slices.Clone(s.as), filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdogScript, "pgtest-watchdog"}, stop...)...)
	cmd.Env = append(os.Environ(), "PGTEST_DIR="+s.Dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("pgtest: watchdog: %w", err)
	}
	r.Close() // the watchdog's copy is the only reader left
	s.watchdog, s.wpipe = cmd, w
	return nil
}

// stop stops the server at once (no client is owed a clean shutdown),
// removes its directory and ends its watchdog. It is idempotent.
func (s *Server) stop() error {
	s.stopOnce.Do(func() {
		s.adminMu.Lock()
		if s.adminPool != nil {
			s.adminPool.Close()
		}
		s.adminMu.Unlock()
		data := filepath.Join(s.Dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			s.stopErr = s.run("stop", filepath.Join(s.bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		}
		if err := os.RemoveAll(s.Dir); err != nil && s.stopErr == nil {
			s.stopErr = fmt.Errorf("pgtest: %w", err)
		}
		// Nothing is left for the watchdog to do: end it (our own child,
		// by its pid) and reap it.
		if s.watchdog != nil {
			s.watchdog.Process.Kill()
			s.watchdog.Wait()
			s.wpipe.Close()
		}
	})
	return s.stopErr
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
	return "", errNotInstalled
}

// versionNum is server_version_num (150004 for 15.4) from the output of
// `postgres --version` ("postgres (PostgreSQL) 15.4 (Debian 15.4-1)"); 0
// when it cannot be read.
func versionNum(out string) int {
	f := strings.Fields(out)
	if len(f) < 3 {
		return 0
	}
	major, minor, _ := strings.Cut(f[2], ".")
	ma, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	mi, _ := strconv.Atoi(minor)
	return ma*10000 + mi
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
