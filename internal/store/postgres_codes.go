package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Activation codes on PostgreSQL, with SQLite's semantics. SQLite runs one
// writer at a time; here a redemption takes a per-device advisory lock for
// its transaction instead, so concurrent guesses on one device, from any
// node, are still counted one by one, while other devices go on.

// pgOutstanding is outstanding with PostgreSQL's placeholders: $1 the
// device, $2 now.
const pgOutstanding = `device = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2`

// PutActivationCode is SQLite.PutActivationCode on PostgreSQL.
func (p *Postgres) PutActivationCode(ctx context.Context, c ActivationCode) error {
	if c.ID == "" || c.Device == "" || len(c.Hash) == 0 || c.ExpiresAt.IsZero() {
		return errors.New("store: activation code needs an ID, a device, a hash and an expiry")
	}
	tag, err := p.pool.Exec(ctx,
		`INSERT INTO activation_codes (id, device, hash, created_at, expires_at, used_at, revoked_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		c.ID, c.Device, c.Hash, orNow(c.CreatedAt).UnixNano(), c.ExpiresAt.UnixNano(), tn(c.UsedAt), tn(c.RevokedAt))
	if err != nil {
		return fmt.Errorf("store: put activation code %q: %w", c.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: activation code %q: %w", c.ID, ErrConflict)
	}
	return nil
}

// ListActivationCodes is SQLite.ListActivationCodes on PostgreSQL.
func (p *Postgres) ListActivationCodes(ctx context.Context, device string) ([]ActivationCode, error) {
	q := `SELECT ` + codeCols + ` FROM activation_codes`
	var args []any
	if device != "" {
		q += ` WHERE device = $1`
		args = append(args, device)
	}
	q += ` ORDER BY created_at, id`
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list activation codes: %w", err)
	}
	defer rows.Close()
	var out []ActivationCode
	for rows.Next() {
		c, err := scanCode(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list activation codes: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RedeemActivationCode is SQLite.RedeemActivationCode on PostgreSQL: the
// same checks in the same order, in one transaction under the device's
// advisory lock; the conditional UPDATE's row count decides the winner, and
// the refresh tokens in first are stored in the same transaction.
func (p *Postgres) RedeemActivationCode(ctx context.Context, hash []byte, device string, now time.Time, budget GuessBudget, first ...RefreshToken) (ActivationCode, error) {
	now = orNow(now)
	var out ActivationCode
	var verdict error // a failure to report after committing the count
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('activation:' || $1, 0))`, device); err != nil {
			return fmt.Errorf("store: activation code: %w", err)
		}
		var locked int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM activation_codes WHERE locked_at IS NOT NULL AND `+pgOutstanding,
			device, now.UnixNano()).Scan(&locked); err != nil {
			return fmt.Errorf("store: activation code: %w", err)
		}
		if locked > 0 {
			return fmt.Errorf("store: activation codes of %q: %w", device, ErrLocked)
		}
		c, err := scanCode(tx.QueryRow(ctx, `SELECT `+codeCols+` FROM activation_codes WHERE hash = $1`, hash))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			verdict = fmt.Errorf("store: activation code: %w", ErrNotFound)
			return pgCountGuess(ctx, tx, device, now, budget, &verdict)
		case err != nil:
			return fmt.Errorf("store: activation code: %w", err)
		case c.Device != device:
			verdict = fmt.Errorf("store: activation code %q: %w", c.ID, ErrWrongDevice)
			return pgCountGuess(ctx, tx, device, now, budget, &verdict)
		case !c.RevokedAt.IsZero():
			return fmt.Errorf("store: activation code %q: %w", c.ID, ErrRevoked)
		case !c.UsedAt.IsZero():
			return fmt.Errorf("store: activation code %q: %w", c.ID, ErrAlreadyUsed)
		case !now.Before(c.ExpiresAt):
			return fmt.Errorf("store: activation code %q: %w", c.ID, ErrExpired)
		}
		tag, err := tx.Exec(ctx,
			`UPDATE activation_codes SET used_at = $1
			 WHERE hash = $2 AND device = $3 AND used_at IS NULL AND revoked_at IS NULL AND locked_at IS NULL AND expires_at > $1`,
			now.UnixNano(), hash, device)
		if err != nil {
			return fmt.Errorf("store: redeem activation code %q: %w", c.ID, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("store: activation code %q: %w", c.ID, ErrAlreadyUsed)
		}
		for _, t := range first {
			if err := pgPutRefreshToken(ctx, tx, t); err != nil {
				return err
			}
		}
		c.UsedAt = norm(now)
		out = c
		return nil
	})
	if err != nil {
		return ActivationCode{}, err
	}
	if verdict != nil {
		return ActivationCode{}, verdict
	}
	return out, nil
}

// pgCountGuess is SQLite.countGuess on PostgreSQL.
func pgCountGuess(ctx context.Context, tx pgx.Tx, device string, now time.Time, budget GuessBudget, verdict *error) error {
	if budget.Max <= 0 {
		return nil
	}
	var open int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM activation_codes WHERE `+pgOutstanding,
		device, now.UnixNano()).Scan(&open); err != nil {
		return fmt.Errorf("store: count wrong guess: %w", err)
	}
	if open == 0 {
		return nil
	}
	var failures int
	if err := tx.QueryRow(ctx,
		`INSERT INTO activation_guesses AS g (device, failures, window_start) VALUES ($1, 1, $2)
		 ON CONFLICT (device) DO UPDATE SET
			failures     = CASE WHEN excluded.window_start - g.window_start >= $3 THEN 1 ELSE g.failures + 1 END,
			window_start = CASE WHEN excluded.window_start - g.window_start >= $3 THEN excluded.window_start ELSE g.window_start END
		 RETURNING failures`,
		device, now.UnixNano(), int64(budget.Window)).Scan(&failures); err != nil {
		return fmt.Errorf("store: count wrong guess: %w", err)
	}
	ge := &GuessError{Device: device, Failures: failures, Err: *verdict}
	if failures >= budget.Max {
		tag, err := tx.Exec(ctx, `UPDATE activation_codes SET locked_at = $2 WHERE locked_at IS NULL AND `+pgOutstanding,
			device, now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: lock activation codes of %q: %w", device, err)
		}
		ge.Locked = tag.RowsAffected() > 0
	}
	*verdict = ge
	return nil
}

// pgPutRefreshToken is putRefreshTokenTx on PostgreSQL.
func pgPutRefreshToken(ctx context.Context, tx pgx.Tx, t RefreshToken) error {
	if len(t.Hash) == 0 || t.Family == "" || t.ExpiresAt.IsZero() {
		return errors.New("store: refresh token needs a hash, a family and an expiry")
	}
	issued := orNow(t.IssuedAt)
	if _, err := tx.Exec(ctx,
		`INSERT INTO families (id, device, created_at, cnf_x5t) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
		t.Family, t.Device, issued.UnixNano(), t.Cnf); err != nil {
		return fmt.Errorf("store: put refresh token (family %q): %w", t.Family, err)
	}
	tag, err := tx.Exec(ctx,
		`INSERT INTO refresh_tokens (hash, family, device, username, origin, mra, issued_at, expires_at, rotated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
		t.Hash, t.Family, t.Device, t.Username, t.Origin, b2i(t.MRA),
		issued.UnixNano(), t.ExpiresAt.UnixNano(), tn(t.RotatedAt))
	if err != nil {
		return fmt.Errorf("store: put refresh token (family %q): %w", t.Family, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrConflict)
	}
	return nil
}

// RevokeActivationCode is SQLite.RevokeActivationCode on PostgreSQL.
func (p *Postgres) RevokeActivationCode(ctx context.Context, id string, now time.Time) error {
	tag, err := p.pool.Exec(ctx, `UPDATE activation_codes SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2`,
		orNow(now).UnixNano(), id)
	if err != nil {
		return fmt.Errorf("store: revoke activation code %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: activation code %q: %w", id, ErrNotFound)
	}
	return nil
}

// RevokeDeviceActivationCodes is SQLite.RevokeDeviceActivationCodes on
// PostgreSQL.
func (p *Postgres) RevokeDeviceActivationCodes(ctx context.Context, device string, now time.Time) error {
	if _, err := p.pool.Exec(ctx,
		`UPDATE activation_codes SET revoked_at = $1 WHERE device = $2 AND used_at IS NULL AND revoked_at IS NULL`,
		orNow(now).UnixNano(), device); err != nil {
		return fmt.Errorf("store: revoke activation codes of %q: %w", device, err)
	}
	return nil
}

// ResetActivationGuesses is SQLite.ResetActivationGuesses on PostgreSQL.
func (p *Postgres) ResetActivationGuesses(ctx context.Context, device string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM activation_guesses WHERE device = $1`, device); err != nil {
		return fmt.Errorf("store: reset wrong guesses of %q: %w", device, err)
	}
	return nil
}
