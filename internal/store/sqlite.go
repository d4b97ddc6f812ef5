package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

// SQLite is the Store backed by one SQLite database file. It is safe for
// concurrent use by many goroutines, and several processes may open the same
// file: every exactly-once change is a conditional UPDATE inside an IMMEDIATE
// transaction, decided by its affected-row count.
type SQLite struct {
	db    *sql.DB
	stmts sync.Map // query text → *sql.Stmt, prepared once (see stmt)
	// wgate lets one of this process's writes at a time reach SQLite (see
	// lockWrite).
	wgate chan struct{}
}

var _ Store = (*SQLite)(nil)

// maxConns bounds the open connections: SQLite runs one writer at a time
// (WAL lets readers go on beside it), so more only queue on its lock.
const maxConns = 16

// busyTimeout is how long a connection waits for another writer (goroutine
// or process) before giving up with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Open opens (creating if needed) the SQLite database at path, in WAL mode
// with busy_timeout and foreign_keys on, and migrates it.
func Open(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// Keep connections open: a new SQLite connection parses the whole
	// schema before its first statement, which under load cost more than
	// the statements themselves (database/sql keeps only 2 idle by default).
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	if err := pingRetry(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := newSQLite(db)
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func newSQLite(db *sql.DB) *SQLite { return &SQLite{db: db, wgate: make(chan struct{}, 1)} }

// pingRetry opens a first connection, retrying for up to busyTimeout while
// SQLite reports SQLITE_BUSY. Switching a new database file to WAL needs an
// exclusive lock and SQLite does not run the busy handler for it, so several
// processes opening the same fresh file at once can see SQLITE_BUSY here
// even with busy_timeout set; once the file is in WAL mode this no longer
// happens.
func pingRetry(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	wait := time.Millisecond
	for {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
}

// isBusy reports whether err is SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqliteBusy
}

// sqliteBusy is the primary result code SQLITE_BUSY.
const sqliteBusy = 5

// dsn builds the modernc.org/sqlite data source name. The pragmas ride in the
// DSN so every pooled connection gets them, and _txlock=immediate makes each
// transaction take the write lock at BEGIN: a read-modify-write transaction
// then never has to upgrade a read lock (which fails with SQLITE_BUSY without
// waiting), it just waits its turn under busy_timeout.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return "file:" + escapeURIPath(path) + "?" + q.Encode()
}

// escapeURIPath escapes the characters that would end or corrupt the path
// part of an SQLite "file:" URI.
func escapeURIPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// Close closes the database.
func (s *SQLite) Close() error {
	s.stmts.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// stmt returns query prepared: SQLite parses a statement's text on every
// prepare, which under REGISTER load cost as much as running it, so every
// statement outside a transaction is prepared once and reused
// (database/sql prepares it again on each pooled connection as needed).
// The query texts are the store's own constants, so the cache is bounded.
func (s *SQLite) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (s *SQLite) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *SQLite) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...) // carries the error
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *SQLite) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return st.ExecContext(ctx, args...)
}

// lockWrite waits, within ctx, for this process's turn to write. SQLite
// runs one writer at a time; left to itself, a connection that finds the
// write lock taken sleeps in SQLite's busy handler for 1, 2, 5, 10 … 100 ms
// before it tries again, so concurrent onboarding requests spent most of
// their time asleep with the lock free (388 redemptions/s at under one
// core). Queued here, the next writer starts the moment the previous one
// commits. Other processes sharing the file still meet busy_timeout.
func (s *SQLite) lockWrite(ctx context.Context) (unlock func(), err error) {
	select {
	case s.wgate <- struct{}{}:
		return func() { <-s.wgate }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store: waiting to write: %w", ctx.Err())
	}
}

// tx runs fn in an IMMEDIATE transaction, committing when fn returns nil.
// Transactions of this process run one at a time (lockWrite).
func (s *SQLite) tx(ctx context.Context, fn func(*txn) error) error {
	unlock, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(&txn{Tx: tx, s: s}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// txn is a transaction whose statements are the store's prepared ones
// (see stmt), bound to the transaction's connection: SQLite would otherwise
// parse each statement's text again in every transaction.
type txn struct {
	*sql.Tx
	s *SQLite
}

// prepared is query's pool statement bound to this transaction; database/sql
// closes it when the transaction ends.
func (t *txn) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	st, err := t.s.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return t.Tx.StmtContext(ctx, st), nil
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := t.prepared(ctx, query)
	if err != nil {
		return t.Tx.QueryRowContext(ctx, query, args...) // carries the error
	}
	return st.QueryRowContext(ctx, args...)
}

// execer is what *sql.DB and *sql.Tx have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Times are stored as integer Unix nanoseconds (UTC); the zero time is NULL.

// tn converts a time to its column value: nil for the zero time.
func tn(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// tv converts a required time to its column value (0 for the zero time).
func tv(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// nt converts a column value back to a time (UTC); NULL and 0 give the zero
// time.
func nt(n sql.NullInt64) time.Time {
	if !n.Valid || n.Int64 == 0 {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// jsonList encodes a string slice as JSON text ("[]" for nil).
func jsonList(v []string) (string, error) {
	if v == nil {
		v = []string{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("store: encode list: %w", err)
	}
	return string(b), nil
}

// parseList decodes JSON text into a string slice; empty lists give nil.
func parseList(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("store: decode list: %w", err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

// affected returns the affected-row count of res.
func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: rows affected: %w", err)
	}
	return n, nil
}

// Params.

// GetParam returns the value of a named setting.
func (s *SQLite) GetParam(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := s.queryRow(ctx, `SELECT value FROM params WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: param %q: %w", name, err)
	}
	return v, true, nil
}

// SetParam sets (inserting or replacing) a named setting.
func (s *SQLite) SetParam(ctx context.Context, name, value string) error {
	_, err := s.exec(ctx,
		`INSERT INTO params (name, value) VALUES (?, ?)
		 ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("store: set param %q: %w", name, err)
	}
	return nil
}

// ListParams returns every setting.
func (s *SQLite) ListParams(ctx context.Context) (map[string]string, error) {
	rows, err := s.query(ctx, `SELECT name, value FROM params ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list params: %w", err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("store: list params: %w", err)
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list params: %w", err)
	}
	return m, nil
}

// Secret returns the secret called name, creating it with gen when it does
// not exist yet. Creation is insert-if-absent followed by a read, so
// concurrent callers (goroutines or processes) all get the value that won.
func (s *SQLite) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.queryRow(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	nv, err := gen()
	if err != nil {
		return nil, fmt.Errorf("store: secret %q: generate: %w", name, err)
	}
	if len(nv) == 0 {
		return nil, fmt.Errorf("store: secret %q: generator returned an empty secret", name)
	}
	if _, err := s.exec(ctx,
		`INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)
		 ON CONFLICT (name) DO NOTHING`, name, nv, time.Now().UnixNano()); err != nil {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	if err := s.queryRow(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	return v, nil
}

// Audit appends an audit entry (At defaults to now).
func (s *SQLite) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.exec(ctx,
		`INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)`,
		tv(e.At), e.Actor, e.Action, e.Detail)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// ListAudit returns up to limit entries, newest first (all when limit <= 0).
func (s *SQLite) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.query(ctx,
		`SELECT id, at, actor, action, detail FROM audit ORDER BY at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at sql.NullInt64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Detail); err != nil {
			return nil, fmt.Errorf("store: list audit: %w", err)
		}
		e.At = nt(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	return out, nil
}

// Purge removes activation codes more than seven days past their expiry,
// expired refresh tokens (and families left without tokens), revoked access
// tokens past their expiry and expired registrations.
func (s *SQLite) Purge(ctx context.Context, now time.Time) error {
	n := now.UnixNano()
	return s.tx(ctx, func(tx *txn) error {
		stmts := []struct {
			what, q string
			arg     int64
		}{
			{"activation codes", `DELETE FROM activation_codes WHERE expires_at < ?`, now.Add(-codeRetention).UnixNano()},
			{"refresh tokens", `DELETE FROM refresh_tokens WHERE expires_at <= ?`, n},
			{"families", `DELETE FROM families WHERE NOT EXISTS
				(SELECT 1 FROM refresh_tokens t WHERE t.family = families.id) AND created_at <= ?`, n},
			{"revoked access tokens", `DELETE FROM revoked_access_tokens WHERE expires_at <= ?`, n},
			{"registrations", `DELETE FROM registrations WHERE expires_at <= ?`, n},
			{"change feed", `DELETE FROM changes WHERE at < ?`, now.Add(-changeRetention).UnixNano()},
		}
		for _, st := range stmts {
			if _, err := tx.ExecContext(ctx, st.q, st.arg); err != nil {
				return fmt.Errorf("store: purge %s: %w", st.what, err)
			}
		}
		return nil
	})
}

// changeRetention is how long the change feed keeps a change: a node that
// has not read it by then has been stopped, and loads its state afresh
// when it starts.
const changeRetention = time.Hour

// codeRetention is how long an expired activation code is kept (for the
// administrator's view) before Purge deletes it.
const codeRetention = 7 * 24 * time.Hour
