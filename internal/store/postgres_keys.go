package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Secrets and signing keys on PostgreSQL: what every node of a cluster
// must share (the activation-code HMAC key, the refresh-grace key, the
// token signing keys), with SQLite's semantics.

// Secret is SQLite.Secret on PostgreSQL: insert-if-absent, then read, so
// nodes starting together all get the value that won.
func (p *Postgres) Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := p.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	nv, err := gen()
	if err != nil {
		return nil, fmt.Errorf("store: secret %q: generate: %w", name, err)
	}
	if len(nv) == 0 {
		return nil, fmt.Errorf("store: secret %q: generator returned an empty secret", name)
	}
	if _, err := p.pool.Exec(ctx, `INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, nv, time.Now().UnixNano()); err != nil {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	if err := p.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&v); err != nil {
		return nil, fmt.Errorf("store: secret %q: %w", name, err)
	}
	return v, nil
}

// PutSigningKey is SQLite.PutSigningKey on PostgreSQL.
func (p *Postgres) PutSigningKey(ctx context.Context, k SigningKey) error {
	if k.KID == "" || len(k.PrivatePEM) == 0 {
		return errors.New("store: signing key needs a KID and a private key")
	}
	tag, err := p.pool.Exec(ctx,
		`INSERT INTO signing_keys (kid, alg, private_pem, created_at, retired_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kid) DO NOTHING`,
		k.KID, k.Alg, k.PrivatePEM, orNow(k.CreatedAt).UnixNano(), tn(k.RetiredAt))
	if err != nil {
		return fmt.Errorf("store: put signing key %q: %w", k.KID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: signing key %q: %w", k.KID, ErrConflict)
	}
	return nil
}

// ListSigningKeys is SQLite.ListSigningKeys on PostgreSQL.
func (p *Postgres) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := p.pool.Query(ctx, `SELECT kid, alg, private_pem, created_at, retired_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	defer rows.Close()
	var out []SigningKey
	for rows.Next() {
		var k SigningKey
		var created int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.KID, &k.Alg, &k.PrivatePEM, &created, &retired); err != nil {
			return nil, fmt.Errorf("store: list signing keys: %w", err)
		}
		k.CreatedAt, k.RetiredAt = nt(sql.NullInt64{Int64: created, Valid: true}), nt(retired)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	return out, nil
}

// RetireSigningKey is SQLite.RetireSigningKey on PostgreSQL.
func (p *Postgres) RetireSigningKey(ctx context.Context, kid string, at time.Time) error {
	tag, err := p.pool.Exec(ctx, `UPDATE signing_keys SET retired_at = LEAST(COALESCE(retired_at, $1), $1) WHERE kid = $2`,
		orNow(at).UnixNano(), kid)
	if err != nil {
		return fmt.Errorf("store: retire signing key %q: %w", kid, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: signing key %q: %w", kid, ErrNotFound)
	}
	return nil
}
