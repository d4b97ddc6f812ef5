package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// RefreshTokenByHash reads a refresh token by the SHA-256 of its opaque
// value, without changing anything (RFC 7662 introspection): ErrNotFound
// when no token has that hash. RotatedAt tells a used token; the family's
// revocation is the caller's to check (TokenRevocation).
func (s *SQLite) RefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error) {
	var t RefreshToken
	var issued, expires, rotated sql.NullInt64
	err := s.queryRow(ctx,
		`SELECT hash, family, device, username, origin, mra, issued_at, expires_at, rotated_at
		 FROM refresh_tokens WHERE hash = ?`, hash).
		Scan(&t.Hash, &t.Family, &t.Device, &t.Username, &t.Origin, &t.MRA, &issued, &expires, &rotated)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshToken{}, fmt.Errorf("store: refresh token: %w", ErrNotFound)
	}
	if err != nil {
		return RefreshToken{}, fmt.Errorf("store: refresh token: %w", err)
	}
	t.IssuedAt, t.ExpiresAt, t.RotatedAt = nt(issued), nt(expires), nt(rotated)
	return t, nil
}

// RefreshTokenByHash is SQLite.RefreshTokenByHash on PostgreSQL.
func (p *Postgres) RefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error) {
	var t RefreshToken
	var mra int16
	var issued, expires int64
	var rotated sql.NullInt64
	err := p.pool.QueryRow(ctx,
		`SELECT hash, family, device, username, origin, mra, issued_at, expires_at, rotated_at
		 FROM refresh_tokens WHERE hash = $1`, hash).
		Scan(&t.Hash, &t.Family, &t.Device, &t.Username, &t.Origin, &mra, &issued, &expires, &rotated)
	if errors.Is(err, pgx.ErrNoRows) {
		return RefreshToken{}, fmt.Errorf("store: refresh token: %w", ErrNotFound)
	}
	if err != nil {
		return RefreshToken{}, fmt.Errorf("store: refresh token: %w", err)
	}
	t.MRA = mra != 0
	t.IssuedAt, t.ExpiresAt = nt(sql.NullInt64{Int64: issued, Valid: true}), nt(sql.NullInt64{Int64: expires, Valid: true})
	t.RotatedAt = nt(rotated)
	return t, nil
}
