package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/internal/pgtest"
)

// The store's tests are one suite run against both engines: every test of
// the Store interface's behaviour runs through forEachEngine, once on
// SQLite and once on PostgreSQL, with the same assertions. The few tests
// that stay SQLite-only (they test the SQLite file itself: its pragmas,
// path, upgrade history, write gate, locking between processes) say why.

// TestMain stops the shared PostgreSQL server (pgtest.Database) once the
// tests have run.
func TestMain(m *testing.M) { pgtest.Main(m) }

// testDB is one test's fresh, empty database on one engine.
type testDB struct {
	engine string // "sqlite" or "postgres"
	// dsn is what OpenURL opens: the SQLite file's path, or the
	// PostgreSQL database's postgres:// URL.
	dsn string
	t   testing.TB
}

// open opens a handle on the database, closed at the end of the test.
// Each call opens another handle, as another core node (or process)
// sharing the database would.
func (d testDB) open() Store {
	d.t.Helper()
	s, err := OpenURL(context.Background(), d.dsn)
	if err != nil {
		d.t.Fatalf("open the %s store: %v", d.engine, err)
	}
	d.t.Cleanup(func() { s.Close() })
	return s
}

// nodes opens n handles on the database, as n core nodes sharing it.
func (d testDB) nodes(n int) []Store {
	d.t.Helper()
	var out []Store
	for range n {
		out = append(out, d.open())
	}
	return out
}

// newTestDB creates a database of engine for t, with nothing in it: a
// real SQLite file in t.TempDir(), or a fresh database on the test
// binary's shared PostgreSQL server (internal/pgtest; t is skipped without
// PostgreSQL, except under CI=true, where it fails). A PostgreSQL database
// is a copy of one migrated once per test binary (pgSchema) unless
// unmigrated is set; the SQLite file is migrated by its first open.
func newTestDB(t testing.TB, engine string, unmigrated bool) testDB {
	t.Helper()
	switch engine {
	case "sqlite":
		return testDB{engine: engine, dsn: filepath.Join(t.TempDir(), "core.db"), t: t}
	case "postgres":
		if unmigrated {
			return testDB{engine: engine, dsn: pgtest.Database(t), t: t}
		}
		return testDB{engine: engine, dsn: pgSchema.Database(t), t: t}
	}
	t.Fatalf("no engine %q", engine)
	return testDB{}
}

// pgSchema is an empty PostgreSQL store, migrated once per test binary,
// that each test's database is a copy of: the migrations take longer than
// the copy.
var pgSchema = &pgtest.Template{Setup: func(ctx context.Context, url string) error {
	p, err := OpenPostgres(ctx, url)
	if err != nil {
		return err
	}
	return p.Close()
}}

// forEachEngine runs test once per engine, as the subtests "sqlite" and
// "postgres", each with a fresh, empty store of its own. Having a
// database of their own, these tests run in parallel with each other
// (go test's -parallel, GOMAXPROCS by default): much of a PostgreSQL
// test's time is the server's.
func forEachEngine(t *testing.T, test func(t *testing.T, db testDB)) {
	t.Helper()
	onEngines(t, false, test)
}

// forEachEngineUnmigrated is forEachEngine for tests of the migrations:
// the database has no schema until the first open.
func forEachEngineUnmigrated(t *testing.T, test func(t *testing.T, db testDB)) {
	t.Helper()
	onEngines(t, true, test)
}

func onEngines(t *testing.T, unmigrated bool, test func(t *testing.T, db testDB)) {
	t.Helper()
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, newTestDB(t, engine, unmigrated))
		})
	}
}

// schemaVersions is the schema version s's database is at and the newest
// this build knows for its engine.
func schemaVersions(t *testing.T, s Store) (have, newest int) {
	t.Helper()
	var err error
	switch s := s.(type) {
	case *SQLite:
		have, err = s.SchemaVersion(context.Background())
		newest = len(migrations)
	case *Postgres:
		have, err = s.SchemaVersion(context.Background())
		newest = len(pgMigrations) - 1
	default:
		t.Fatalf("no schema version for %T", s)
	}
	if err != nil {
		t.Fatal(err)
	}
	return have, newest
}

// rawCount runs a COUNT query straight on s's database, for what the Store
// interface does not show (what is kept on disk). Placeholders are
// SQLite's ?; they become $1, $2 … on PostgreSQL.
func rawCount(t *testing.T, s Store, query string, args ...any) int {
	t.Helper()
	ctx := context.Background()
	var n int
	var err error
	switch s := s.(type) {
	case *SQLite:
		err = s.db.QueryRowContext(ctx, query, args...).Scan(&n)
	case *Postgres:
		err = s.pool.QueryRow(ctx, pgPlaceholders(query), args...).Scan(&n)
	default:
		t.Fatalf("no database behind %T", s)
	}
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// rawExec runs a statement straight on s's database (placeholders as for
// rawCount).
func rawExec(t *testing.T, s Store, query string, args ...any) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch s := s.(type) {
	case *SQLite:
		_, err = s.db.ExecContext(ctx, query, args...)
	case *Postgres:
		_, err = s.pool.Exec(ctx, pgPlaceholders(query), args...)
	default:
		t.Fatalf("no database behind %T", s)
	}
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// pgPlaceholders numbers a query's ? placeholders for PostgreSQL (the
// tests' queries have no ? inside literals).
func pgPlaceholders(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrationRows is how many rows schema_migrations has once s is migrated:
// one per migration, none for a reserved (empty) number.
func migrationRows(s Store) int {
	list := migrations
	if _, ok := s.(*Postgres); ok {
		list = pgMigrations[1:]
	}
	n := 0
	for _, m := range list {
		if m != "" {
			n++
		}
	}
	return n
}
