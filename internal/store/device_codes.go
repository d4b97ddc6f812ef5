package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The device authorization grant (RFC 8628): a phone asks for a
// device_code and a user_code, an administrator approves or denies the
// user_code, and the phone polls with the device_code until it gets its
// tokens, once.

// Device-code states.
const (
	DeviceCodePending  = "pending"
	DeviceCodeApproved = "approved"
	DeviceCodeDenied   = "denied"
)

// What a poll of a device code that gives no tokens yet is told (RFC 8628
// §3.5). Each is returned after the poll's state (its time, a grown
// interval) is committed.
var (
	ErrAuthorizationPending = errors.New("store: device code not decided yet")
	ErrSlowDown             = errors.New("store: device code polled faster than its interval")
	ErrDenied               = errors.New("store: device code denied")
)

// DeviceCode is one device authorization request. Only the hash of the
// device_code is kept.
type DeviceCode struct {
	Hash      []byte // SHA-256 of the device_code
	UserCode  string // normalised: 8 letters, no dash
	Device    string
	Scope     string
	MRA       bool   // asked for through an edge
	Edge      string // the Expressway-C entry's name, for MRA
	Source    string // the phone's address
	CreatedAt time.Time
	ExpiresAt time.Time
	// Interval is the least time between two polls; it grows by 5 s on
	// every slow_down.
	Interval   time.Duration
	LastPoll   time.Time
	Status     string
	DecidedBy  string
	DecidedAt  time.Time
	RedeemedAt time.Time
}

// DeviceCodeStore is what the device grant keeps (SQLite and Postgres
// implement it).
type DeviceCodeStore interface {
	// PutDeviceCode stores a new request; a user_code or hash in use gives
	// ErrConflict. Requests expired for a day are deleted on the way.
	PutDeviceCode(ctx context.Context, c DeviceCode) error
	// DeviceCodeByUserCode finds a request by its user_code (ErrNotFound).
	DeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error)
	// PendingDeviceCodes lists the undecided requests not expired at now.
	PendingDeviceCodes(ctx context.Context, now time.Time) ([]DeviceCode, error)
	// DecideDeviceCode approves or denies a pending request: ErrNotFound,
	// ErrExpired, or ErrConflict when it was decided already.
	DecideDeviceCode(ctx context.Context, userCode string, approve bool, by string, now time.Time) (DeviceCode, error)
	// PollDeviceCode is one poll with the device_code's hash. In one
	// transaction: ErrNotFound; ErrAlreadyUsed once redeemed; ErrExpired;
	// ErrSlowDown (the interval grows by 5 s) when polled sooner than the
	// interval after the last poll (or the request); otherwise the poll is
	// recorded and a pending request gives ErrAuthorizationPending, a
	// denied one ErrDenied, and an approved one is redeemed with the
	// refresh tokens issue returns stored in the same transaction (an
	// error from issue undoes the poll).
	PollDeviceCode(ctx context.Context, hash []byte, now time.Time, issue func(DeviceCode) ([]RefreshToken, error)) (DeviceCode, error)
}

// SlowDownStep is what a slow_down adds to the interval (RFC 8628 §3.5).
const SlowDownStep = 5 * time.Second

const deviceCodeCols = `hash, user_code, device, scope, mra, edge, source, created_at, expires_at, interval_ns, last_poll, status, decided_by, decided_at, redeemed_at`

func scanDeviceCode(sc interface{ Scan(...any) error }) (DeviceCode, error) {
	var c DeviceCode
	var mra int
	var interval int64
	var created, expires, last, decided, redeemed sql.NullInt64
	err := sc.Scan(&c.Hash, &c.UserCode, &c.Device, &c.Scope, &mra, &c.Edge, &c.Source, &created, &expires, &interval,
		&last, &c.Status, &c.DecidedBy, &decided, &redeemed)
	c.MRA, c.Interval = mra != 0, time.Duration(interval)
	c.CreatedAt, c.ExpiresAt, c.LastPoll, c.DecidedAt, c.RedeemedAt = nt(created), nt(expires), nt(last), nt(decided), nt(redeemed)
	return c, err
}

// deviceCodeKeep is how long an expired request is kept (so a late poll is
// told expired_token, not invalid_grant).
const deviceCodeKeep = 24 * time.Hour

// dcQuery numbers ? placeholders as $1, $2… for PostgreSQL.
func dcQuery(pg bool, q string) string {
	if !pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// dcTx is the part of a transaction the device-code logic uses, over
// SQLite (txn) or PostgreSQL (pgx.Tx).
type dcTx interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	row(ctx context.Context, q string, args ...any) interface{ Scan(...any) error }
	putRefresh(ctx context.Context, t RefreshToken) error
	noRows(err error) bool
}

type sqliteDC struct{ tx *txn }

func (t sqliteDC) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return affected(res)
}
func (t sqliteDC) row(ctx context.Context, q string, args ...any) interface{ Scan(...any) error } {
	return t.tx.QueryRowContext(ctx, q, args...)
}
func (t sqliteDC) putRefresh(ctx context.Context, rt RefreshToken) error {
	return putRefreshTokenTx(ctx, t.tx, rt)
}
func (sqliteDC) noRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

type pgDC struct{ tx pgx.Tx }

func (t pgDC) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, dcQuery(true, q), args...)
	return tag.RowsAffected(), err
}
func (t pgDC) row(ctx context.Context, q string, args ...any) interface{ Scan(...any) error } {
	return t.tx.QueryRow(ctx, dcQuery(true, q), args...)
}
func (t pgDC) putRefresh(ctx context.Context, rt RefreshToken) error {
	return pgPutRefreshToken(ctx, t.tx, rt)
}
func (pgDC) noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

func putDeviceCode(ctx context.Context, tx dcTx, c DeviceCode) error {
	now := orNow(c.CreatedAt)
	if _, err := tx.exec(ctx, `DELETE FROM device_codes WHERE expires_at < ?`, now.Add(-deviceCodeKeep).UnixNano()); err != nil {
		return fmt.Errorf("store: device codes: %w", err)
	}
	var one int
	err := tx.row(ctx, `SELECT 1 FROM device_codes WHERE user_code = ? OR hash = ?`, c.UserCode, c.Hash).Scan(&one)
	switch {
	case err == nil:
		return fmt.Errorf("store: device code: %w", ErrConflict)
	case !tx.noRows(err):
		return fmt.Errorf("store: device code: %w", err)
	}
	status := c.Status
	if status == "" {
		status = DeviceCodePending
	}
	_, err = tx.exec(ctx, `INSERT INTO device_codes (`+deviceCodeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.UserCode, c.Device, c.Scope, b2i(c.MRA), c.Edge, c.Source, now.UnixNano(), c.ExpiresAt.UnixNano(),
		int64(c.Interval), tn(c.LastPoll), status, c.DecidedBy, tn(c.DecidedAt), tn(c.RedeemedAt))
	if err != nil {
		return fmt.Errorf("store: device code: %w", err)
	}
	return nil
}

func decideDeviceCode(ctx context.Context, tx dcTx, userCode string, approve bool, by string, now time.Time) (DeviceCode, error) {
	c, err := scanDeviceCode(tx.row(ctx, `SELECT `+deviceCodeCols+` FROM device_codes WHERE user_code = ?`, userCode))
	switch {
	case tx.noRows(err):
		return DeviceCode{}, fmt.Errorf("store: device code: %w", ErrNotFound)
	case err != nil:
		return DeviceCode{}, fmt.Errorf("store: device code: %w", err)
	case c.Status != DeviceCodePending:
		return c, fmt.Errorf("store: device code already %s: %w", c.Status, ErrConflict)
	case !now.Before(c.ExpiresAt):
		return c, fmt.Errorf("store: device code: %w", ErrExpired)
	}
	c.Status = DeviceCodeDenied
	if approve {
		c.Status = DeviceCodeApproved
	}
	c.DecidedBy, c.DecidedAt = by, norm(now)
	n, err := tx.exec(ctx, `UPDATE device_codes SET status = ?, decided_by = ?, decided_at = ? WHERE user_code = ? AND status = ?`,
		c.Status, by, now.UnixNano(), userCode, DeviceCodePending)
	if err != nil {
		return DeviceCode{}, fmt.Errorf("store: device code: %w", err)
	}
	if n != 1 {
		return DeviceCode{}, fmt.Errorf("store: device code already decided: %w", ErrConflict)
	}
	return c, nil
}

// pollDeviceCode is PollDeviceCode's transaction; verdict is an answer to
// give after committing the poll's state.
func pollDeviceCode(ctx context.Context, tx dcTx, hash []byte, now time.Time, issue func(DeviceCode) ([]RefreshToken, error), verdict *error) (DeviceCode, error) {
	c, err := scanDeviceCode(tx.row(ctx, `SELECT `+deviceCodeCols+` FROM device_codes WHERE hash = ?`, hash))
	switch {
	case tx.noRows(err):
		return DeviceCode{}, fmt.Errorf("store: device code: %w", ErrNotFound)
	case err != nil:
		return DeviceCode{}, fmt.Errorf("store: device code: %w", err)
	case !c.RedeemedAt.IsZero():
		return c, fmt.Errorf("store: device code: %w", ErrAlreadyUsed)
	case !now.Before(c.ExpiresAt):
		return c, fmt.Errorf("store: device code: %w", ErrExpired)
	}
	last := c.LastPoll
	if last.IsZero() {
		last = c.CreatedAt
	}
	if now.Before(last.Add(c.Interval)) {
		c.Interval += SlowDownStep
		c.LastPoll = norm(now)
		if _, err := tx.exec(ctx, `UPDATE device_codes SET interval_ns = ?, last_poll = ? WHERE hash = ?`, int64(c.Interval), now.UnixNano(), hash); err != nil {
			return DeviceCode{}, fmt.Errorf("store: device code: %w", err)
		}
		*verdict = fmt.Errorf("store: device code: %w", ErrSlowDown)
		return c, nil
	}
	c.LastPoll = norm(now)
	if _, err := tx.exec(ctx, `UPDATE device_codes SET last_poll = ? WHERE hash = ?`, now.UnixNano(), hash); err != nil {
		return DeviceCode{}, fmt.Errorf("store: device code: %w", err)
	}
	switch c.Status {
	case DeviceCodePending:
		*verdict = fmt.Errorf("store: device code: %w", ErrAuthorizationPending)
		return c, nil
	case DeviceCodeDenied:
		*verdict = fmt.Errorf("store: device code: %w", ErrDenied)
		return c, nil
	}
	first, err := issue(c)
	if err != nil {
		return DeviceCode{}, err
	}
	n, err := tx.exec(ctx, `UPDATE device_codes SET redeemed_at = ? WHERE hash = ? AND redeemed_at IS NULL AND status = ?`,
		now.UnixNano(), hash, DeviceCodeApproved)
	if err != nil {
		return DeviceCode{}, fmt.Errorf("store: device code: %w", err)
	}
	if n != 1 {
		return DeviceCode{}, fmt.Errorf("store: device code: %w", ErrAlreadyUsed)
	}
	for _, t := range first {
		if err := tx.putRefresh(ctx, t); err != nil {
			return DeviceCode{}, err
		}
	}
	c.RedeemedAt = norm(now)
	return c, nil
}

// PutDeviceCode implements DeviceCodeStore.
func (s *SQLite) PutDeviceCode(ctx context.Context, c DeviceCode) error {
	return s.tx(ctx, func(tx *txn) error { return putDeviceCode(ctx, sqliteDC{tx}, c) })
}

// DeviceCodeByUserCode implements DeviceCodeStore.
func (s *SQLite) DeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error) {
	c, err := scanDeviceCode(s.db.QueryRowContext(ctx, `SELECT `+deviceCodeCols+` FROM device_codes WHERE user_code = ?`, userCode))
	if errors.Is(err, sql.ErrNoRows) {
		return DeviceCode{}, fmt.Errorf("store: device code: %w", ErrNotFound)
	}
	return c, err
}

// PendingDeviceCodes implements DeviceCodeStore.
func (s *SQLite) PendingDeviceCodes(ctx context.Context, now time.Time) ([]DeviceCode, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceCodeCols+` FROM device_codes WHERE status = ? AND expires_at > ? ORDER BY created_at`,
		DeviceCodePending, orNow(now).UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: device codes: %w", err)
	}
	defer rows.Close()
	out, err := collect(rows, scanDeviceCode)
	if err != nil {
		return nil, fmt.Errorf("store: device codes: %w", err)
	}
	return out, nil
}

// DecideDeviceCode implements DeviceCodeStore.
func (s *SQLite) DecideDeviceCode(ctx context.Context, userCode string, approve bool, by string, now time.Time) (DeviceCode, error) {
	var out DeviceCode
	err := s.tx(ctx, func(tx *txn) error {
		var err error
		out, err = decideDeviceCode(ctx, sqliteDC{tx}, userCode, approve, by, orNow(now))
		return err
	})
	return out, err
}

// PollDeviceCode implements DeviceCodeStore.
func (s *SQLite) PollDeviceCode(ctx context.Context, hash []byte, now time.Time, issue func(DeviceCode) ([]RefreshToken, error)) (DeviceCode, error) {
	var out DeviceCode
	var verdict error
	err := s.tx(ctx, func(tx *txn) error {
		var err error
		out, err = pollDeviceCode(ctx, sqliteDC{tx}, hash, orNow(now), issue, &verdict)
		return err
	})
	if err != nil {
		return out, err
	}
	return out, verdict
}

// PutDeviceCode implements DeviceCodeStore.
func (p *Postgres) PutDeviceCode(ctx context.Context, c DeviceCode) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return putDeviceCode(ctx, pgDC{tx}, c) })
}

// DeviceCodeByUserCode implements DeviceCodeStore.
func (p *Postgres) DeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error) {
	c, err := scanDeviceCode(p.pool.QueryRow(ctx, `SELECT `+deviceCodeCols+` FROM device_codes WHERE user_code = $1`, userCode))
	if errors.Is(err, pgx.ErrNoRows) {
		return DeviceCode{}, fmt.Errorf("store: device code: %w", ErrNotFound)
	}
	return c, err
}

// PendingDeviceCodes implements DeviceCodeStore.
func (p *Postgres) PendingDeviceCodes(ctx context.Context, now time.Time) ([]DeviceCode, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+deviceCodeCols+` FROM device_codes WHERE status = $1 AND expires_at > $2 ORDER BY created_at`,
		DeviceCodePending, orNow(now).UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: device codes: %w", err)
	}
	defer rows.Close()
	out, err := collect(rows, scanDeviceCode)
	if err != nil {
		return nil, fmt.Errorf("store: device codes: %w", err)
	}
	return out, nil
}

// DecideDeviceCode implements DeviceCodeStore. The row is locked (FOR
// UPDATE is not needed: the conditional UPDATE decides the winner).
func (p *Postgres) DecideDeviceCode(ctx context.Context, userCode string, approve bool, by string, now time.Time) (DeviceCode, error) {
	var out DeviceCode
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var err error
		out, err = decideDeviceCode(ctx, pgDC{tx}, userCode, approve, by, orNow(now))
		return err
	})
	return out, err
}

// PollDeviceCode implements DeviceCodeStore, under the code's advisory
// lock so concurrent polls of one code are serialised as SQLite's
// IMMEDIATE transactions are.
func (p *Postgres) PollDeviceCode(ctx context.Context, hash []byte, now time.Time, issue func(DeviceCode) ([]RefreshToken, error)) (DeviceCode, error) {
	var out DeviceCode
	var verdict error
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('device_code:' || encode($1, 'hex'), 0))`, hash); err != nil {
			return fmt.Errorf("store: device code: %w", err)
		}
		var err error
		out, err = pollDeviceCode(ctx, pgDC{tx}, hash, orNow(now), issue, &verdict)
		return err
	})
	if err != nil {
		return out, err
	}
	return out, verdict
}

var (
	_ DeviceCodeStore = (*SQLite)(nil)
	_ DeviceCodeStore = (*Postgres)(nil)
)
