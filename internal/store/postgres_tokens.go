package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Refresh-token families on PostgreSQL, with SQLite's semantics: every
// exactly-once change is a conditional UPDATE whose row count decides it,
// so two nodes rotating one token at once (or a replay on another node)
// find one winner; PostgreSQL's row lock makes the loser wait for the
// winner's commit and then see the token rotated.

// PutRefreshToken is SQLite.PutRefreshToken on PostgreSQL.
func (p *Postgres) PutRefreshToken(ctx context.Context, t RefreshToken) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return pgPutRefreshToken(ctx, tx, t) })
}

// RotateRefreshToken is SQLite.RotateRefreshToken on PostgreSQL.
func (p *Postgres) RotateRefreshToken(ctx context.Context, hash []byte, now time.Time, next func(old RefreshToken) (RefreshToken, Grace, error)) (RefreshToken, error) {
	now = orNow(now)
	var out RefreshToken
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var t RefreshToken
		var mra int16
		var issued, expires int64
		var rotated, famRevoked sql.NullInt64
		err := tx.QueryRow(ctx,
			`SELECT t.hash, t.family, t.device, t.username, t.origin, t.mra,
				t.issued_at, t.expires_at, t.rotated_at, f.revoked_at
			 FROM refresh_tokens t JOIN families f ON f.id = t.family
			 WHERE t.hash = $1`, hash).
			Scan(&t.Hash, &t.Family, &t.Device, &t.Username, &t.Origin, &mra,
				&issued, &expires, &rotated, &famRevoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: refresh token: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: refresh token: %w", err)
		}
		t.MRA = mra != 0
		t.IssuedAt, t.ExpiresAt, t.RotatedAt = nt(sql.NullInt64{Int64: issued, Valid: true}), nt(sql.NullInt64{Int64: expires, Valid: true}), nt(rotated)
		out = t
		switch {
		case famRevoked.Valid:
			return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrRevoked)
		case !t.RotatedAt.IsZero():
			return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrAlreadyUsed)
		case !now.Before(t.ExpiresAt):
			return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrExpired)
		}
		tag, err := tx.Exec(ctx,
			`UPDATE refresh_tokens SET rotated_at = $1
			 WHERE hash = $2 AND rotated_at IS NULL AND expires_at > $1
			   AND NOT EXISTS (SELECT 1 FROM families f
			                   WHERE f.id = refresh_tokens.family AND f.revoked_at IS NOT NULL)`,
			now.UnixNano(), hash)
		if err != nil {
			return fmt.Errorf("store: rotate refresh token (family %q): %w", t.Family, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrAlreadyUsed)
		}
		out.RotatedAt = norm(now)
		if _, err := tx.Exec(ctx,
			`UPDATE refresh_tokens SET grace_sealed = NULL
			 WHERE grace_sealed IS NOT NULL AND (successor = $1 OR grace_until <= $2)`,
			hash, now.UnixNano()); err != nil {
			return fmt.Errorf("store: rotate refresh token (family %q): %w", t.Family, err)
		}
		if next == nil {
			return nil
		}
		succ, grace, err := next(out)
		if err != nil {
			return err
		}
		if err := pgPutRefreshToken(ctx, tx, succ); err != nil {
			return err
		}
		var sealed []byte
		if !grace.Until.IsZero() && len(grace.Sealed) > 0 {
			sealed = grace.Sealed
		}
		if _, err := tx.Exec(ctx,
			`UPDATE refresh_tokens SET successor = $1, grace_sealed = $2, grace_until = $3, grace_from = $4 WHERE hash = $5`,
			succ.Hash, sealed, tn(grace.Until), grace.From, hash); err != nil {
			return fmt.Errorf("store: rotate refresh token (family %q): %w", t.Family, err)
		}
		return nil
	})
	return out, err
}

// RevokeFamily is SQLite.RevokeFamily on PostgreSQL.
func (p *Postgres) RevokeFamily(ctx context.Context, family string, now time.Time) error {
	n := orNow(now).UnixNano()
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO families (id, device, created_at, revoked_at) VALUES ($1, '', $2, $2)
			 ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(families.revoked_at, excluded.revoked_at)`,
			family, n); err != nil {
			return fmt.Errorf("store: revoke family %q: %w", family, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET grace_sealed = NULL WHERE family = $1 AND grace_sealed IS NOT NULL`, family); err != nil {
			return fmt.Errorf("store: revoke family %q: %w", family, err)
		}
		return nil
	})
}
