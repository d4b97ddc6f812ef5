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
				t.issued_at, t.expires_at, t.rotated_at, f.revoked_at, f.cnf_x5t
			 FROM refresh_tokens t JOIN families f ON f.id = t.family
			 WHERE t.hash = $1`, hash).
			Scan(&t.Hash, &t.Family, &t.Device, &t.Username, &t.Origin, &mra,
				&issued, &expires, &rotated, &famRevoked, &t.Cnf)
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

// RedeemGrace is SQLite.RedeemGrace on PostgreSQL.
func (p *Postgres) RedeemGrace(ctx context.Context, hash []byte, from string, now time.Time) ([]byte, error) {
	now = orNow(now)
	var sealed []byte
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT grace_sealed FROM refresh_tokens WHERE hash = $1`, hash).Scan(&sealed)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: refresh grace: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: refresh grace: %w", err)
		}
		tag, err := tx.Exec(ctx,
			`UPDATE refresh_tokens SET grace_used_at = $1, grace_sealed = NULL
			 WHERE hash = $2 AND rotated_at IS NOT NULL AND grace_sealed IS NOT NULL
			   AND grace_used_at IS NULL AND grace_until > $1 AND grace_from = $3
			   AND NOT EXISTS (SELECT 1 FROM families f
			                   WHERE f.id = refresh_tokens.family AND f.revoked_at IS NOT NULL)
			   AND NOT EXISTS (SELECT 1 FROM refresh_tokens n
			                   WHERE n.hash = refresh_tokens.successor AND n.rotated_at IS NOT NULL)`,
			now.UnixNano(), hash, from)
		if err != nil {
			return fmt.Errorf("store: refresh grace: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("store: refresh grace: %w", ErrAlreadyUsed)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sealed, nil
}

// RevokeDeviceFamilies is SQLite.RevokeDeviceFamilies on PostgreSQL.
func (p *Postgres) RevokeDeviceFamilies(ctx context.Context, device string, now time.Time) error {
	if _, err := p.pool.Exec(ctx,
		`UPDATE families SET revoked_at = $1
		 WHERE revoked_at IS NULL
		   AND (device = $2 OR id IN (SELECT family FROM refresh_tokens WHERE device = $2))`,
		orNow(now).UnixNano(), device); err != nil {
		return fmt.Errorf("store: revoke families of %q: %w", device, err)
	}
	return nil
}

// RevokedFamilies is SQLite.RevokedFamilies on PostgreSQL.
func (p *Postgres) RevokedFamilies(ctx context.Context, after time.Time, limit int) ([]RevokedFamily, error) {
	rows, err := p.pool.Query(ctx,
		`SELECT id, revoked_at FROM families WHERE revoked_at > $1 ORDER BY revoked_at, id LIMIT $2`, tv(after), limit)
	if err != nil {
		return nil, fmt.Errorf("store: revoked families: %w", err)
	}
	defer rows.Close()
	var out []RevokedFamily
	for rows.Next() {
		var f RevokedFamily
		var at int64
		if err := rows.Scan(&f.ID, &at); err != nil {
			return nil, fmt.Errorf("store: revoked families: %w", err)
		}
		f.RevokedAt = time.Unix(0, at).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: revoked families: %w", err)
	}
	return out, nil
}

// RevokeAccessToken is SQLite.RevokeAccessToken on PostgreSQL.
func (p *Postgres) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if jti == "" {
		return errors.New("store: revoke access token: empty jti")
	}
	if _, err := p.pool.Exec(ctx,
		`INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2)
		 ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(revoked_access_tokens.expires_at, excluded.expires_at)`,
		jti, tv(expiresAt)); err != nil {
		return fmt.Errorf("store: revoke access token: %w", err)
	}
	return nil
}

// TokenRevocation is SQLite.TokenRevocation on PostgreSQL.
func (p *Postgres) TokenRevocation(ctx context.Context, jti, family string) (Revocation, error) {
	var revoked bool
	var familyRevoked sql.NullBool // NULL: no such family
	if err := p.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1),
		        (SELECT revoked_at IS NOT NULL FROM families WHERE id = $2)`, jti, family).Scan(&revoked, &familyRevoked); err != nil {
		return Revocation{}, fmt.Errorf("store: token revocation: %w", err)
	}
	r := Revocation{Revoked: revoked}
	if family != "" {
		r.FamilyMissing = !familyRevoked.Valid
		r.FamilyRevoked = familyRevoked.Valid && familyRevoked.Bool
	}
	return r, nil
}
