package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Administration on PostgreSQL, with SQLite's semantics.

// PutAdmin is SQLite.PutAdmin on PostgreSQL.
func (p *Postgres) PutAdmin(ctx context.Context, a Admin) error {
	if a.Username == "" {
		return errors.New("store: admin without a name")
	}
	if _, err := p.pool.Exec(ctx,
		`INSERT INTO admins (username, password_hash, created_at) VALUES ($1, $2, $3)
		 ON CONFLICT (username) DO UPDATE SET
			password_hash = excluded.password_hash,
			created_at = COALESCE(admins.created_at, excluded.created_at)`,
		a.Username, a.PasswordHash, tn(orNow(a.CreatedAt))); err != nil {
		return fmt.Errorf("store: put admin %q: %w", a.Username, err)
	}
	return nil
}

// GetAdmin is SQLite.GetAdmin on PostgreSQL.
func (p *Postgres) GetAdmin(ctx context.Context, username string) (Admin, error) {
	var a Admin
	var created sql.NullInt64
	err := p.pool.QueryRow(ctx, `SELECT username, password_hash, created_at FROM admins WHERE username = $1`, username).
		Scan(&a.Username, &a.PasswordHash, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return Admin{}, fmt.Errorf("store: admin %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return Admin{}, fmt.Errorf("store: admin %q: %w", username, err)
	}
	a.CreatedAt = nt(created)
	return a, nil
}

// CountAdmins is SQLite.CountAdmins on PostgreSQL.
func (p *Postgres) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := p.pool.QueryRow(ctx, `SELECT COUNT(*) FROM admins`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count admins: %w", err)
	}
	return n, nil
}

// PutAPIToken is SQLite.PutAPIToken on PostgreSQL.
func (p *Postgres) PutAPIToken(ctx context.Context, t APIToken) error {
	if t.ID == "" || len(t.Hash) == 0 {
		return errors.New("store: API token needs an ID and a hash")
	}
	tag, err := p.pool.Exec(ctx,
		`INSERT INTO api_tokens (id, hash, name, owner, parent, login, created_at, revoked_at, last_used, expires_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		t.ID, t.Hash, t.Name, t.Owner, t.Parent, t.Login, orNow(t.CreatedAt).UnixNano(), tn(t.RevokedAt), tn(t.LastUsed), tn(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: put API token %q: %w", t.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: API token %q: %w", t.ID, ErrConflict)
	}
	return nil
}

// APITokenByHash is SQLite.APITokenByHash on PostgreSQL: one statement
// checks the token and its chain of parents and records the use.
func (p *Postgres) APITokenByHash(ctx context.Context, hash []byte, now time.Time) (APIToken, error) {
	now = orNow(now)
	var t APIToken
	var created, revoked, used, expires sql.NullInt64
	err := p.pool.QueryRow(ctx,
		`UPDATE api_tokens SET last_used = $1
		 WHERE hash = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)
		   AND NOT EXISTS (
			WITH RECURSIVE up(id, depth) AS (
				SELECT parent, 1 FROM api_tokens WHERE hash = $2
				UNION ALL
				SELECT t.parent, up.depth + 1 FROM api_tokens t JOIN up ON t.id = up.id
				WHERE t.parent != '' AND up.depth < $3)
			SELECT 1 FROM up WHERE up.id != ''
			  AND NOT EXISTS (SELECT 1 FROM api_tokens q WHERE q.id = up.id AND q.revoked_at IS NULL
			                  AND (q.expires_at IS NULL OR q.expires_at > $1)))
		 RETURNING id, hash, name, owner, parent, login, created_at, revoked_at, last_used, expires_at`,
		now.UnixNano(), hash, maxTokenChain).
		Scan(&t.ID, &t.Hash, &t.Name, &t.Owner, &t.Parent, &t.Login, &created, &revoked, &used, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		var exp sql.NullInt64
		if err := p.pool.QueryRow(ctx, `SELECT expires_at FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL`, hash).Scan(&exp); err == nil &&
			exp.Valid && exp.Int64 <= now.UnixNano() {
			return APIToken{}, fmt.Errorf("store: API token: %w", ErrExpired)
		}
		return APIToken{}, fmt.Errorf("store: API token: %w", ErrNotFound)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("store: API token: %w", err)
	}
	t.CreatedAt, t.RevokedAt, t.LastUsed, t.ExpiresAt = nt(created), nt(revoked), nt(used), nt(expires)
	return t, nil
}

// ListAPITokens is SQLite.ListAPITokens on PostgreSQL (Hash is nil).
func (p *Postgres) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := p.pool.Query(ctx,
		`SELECT id, name, owner, parent, login, created_at, revoked_at, last_used, expires_at FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list API tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		var created, revoked, used, expires sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &t.Owner, &t.Parent, &t.Login, &created, &revoked, &used, &expires); err != nil {
			return nil, fmt.Errorf("store: list API tokens: %w", err)
		}
		t.CreatedAt, t.RevokedAt, t.LastUsed, t.ExpiresAt = nt(created), nt(revoked), nt(used), nt(expires)
		out = append(out, t)
	}
	return out, rows.Err()
}

// pgRevokeTokenTrees is revokeTokenTrees with PostgreSQL's placeholders:
// the seed query's come first, then the depth bound and the time.
const pgRevokeTokenTrees = `
	WITH RECURSIVE tree(id, depth) AS (
		%s
		UNION ALL
		SELECT t.id, tree.depth + 1 FROM api_tokens t JOIN tree ON t.parent = tree.id WHERE tree.depth < $%d)
	UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $%d) WHERE id IN (SELECT id FROM tree)`

// RevokeAPIToken is SQLite.RevokeAPIToken on PostgreSQL.
func (p *Postgres) RevokeAPIToken(ctx context.Context, id string, now time.Time) error {
	var one int
	if err := p.pool.QueryRow(ctx, `SELECT 1 FROM api_tokens WHERE id = $1`, id).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("store: API token %q: %w", id, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("store: revoke API token %q: %w", id, err)
	}
	if _, err := p.pool.Exec(ctx, fmt.Sprintf(pgRevokeTokenTrees, `SELECT id, 0 FROM api_tokens WHERE id = $1`, 2, 3),
		id, maxTokenChain, orNow(now).UnixNano()); err != nil {
		return fmt.Errorf("store: revoke API token %q: %w", id, err)
	}
	return nil
}

// RevokeAPITokensOf is SQLite.RevokeAPITokensOf on PostgreSQL.
func (p *Postgres) RevokeAPITokensOf(ctx context.Context, owner, keep string, now time.Time) error {
	if _, err := p.pool.Exec(ctx, fmt.Sprintf(pgRevokeTokenTrees, `SELECT id, 0 FROM api_tokens WHERE owner = $1 AND id != $2`, 3, 4),
		owner, keep, maxTokenChain, orNow(now).UnixNano()); err != nil {
		return fmt.Errorf("store: revoke API tokens of %q: %w", owner, err)
	}
	return nil
}

// PutNode is SQLite.PutNode on PostgreSQL.
func (p *Postgres) PutNode(ctx context.Context, n Node) error {
	if n.Name == "" {
		return errors.New("store: node without a name")
	}
	if _, err := p.pool.Exec(ctx,
		`INSERT INTO nodes (name, role, phone_oauth_port, mra_port, running_mode, restarted_at, last_seen,
			listening_phone_oauth_port, listening_mra_port)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		 ON CONFLICT (name) DO UPDATE SET
			role = excluded.role, phone_oauth_port = excluded.phone_oauth_port,
			mra_port = excluded.mra_port, running_mode = excluded.running_mode,
			restarted_at = excluded.restarted_at, last_seen = excluded.last_seen,
			listening_phone_oauth_port = excluded.listening_phone_oauth_port,
			listening_mra_port = excluded.listening_mra_port`,
		n.Name, n.Role, n.PhoneOAuthPort, n.MRAPort, n.RunningMode, tn(n.RestartedAt), tn(n.LastSeen),
		n.ListeningPhoneOAuthPort, n.ListeningMRAPort); err != nil {
		return fmt.Errorf("store: put node %q: %w", n.Name, err)
	}
	return nil
}

// GetNode is SQLite.GetNode on PostgreSQL.
func (p *Postgres) GetNode(ctx context.Context, name string) (Node, error) {
	n, err := scanNode(p.pool.QueryRow(ctx, `SELECT `+nodeCols+` FROM nodes WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Node{}, fmt.Errorf("store: node %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Node{}, fmt.Errorf("store: node %q: %w", name, err)
	}
	return n, nil
}

// ListNodes is SQLite.ListNodes on PostgreSQL.
func (p *Postgres) ListNodes(ctx context.Context) ([]Node, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+nodeCols+` FROM nodes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// PutTrustCert is SQLite.PutTrustCert on PostgreSQL.
func (p *Postgres) PutTrustCert(ctx context.Context, c TrustCert) error {
	if c.Store == "" || c.Fingerprint == "" || len(c.PEM) == 0 {
		return errors.New("store: trust certificate needs a store, a fingerprint and a PEM")
	}
	tag, err := p.pool.Exec(ctx,
		`INSERT INTO trust_certs (store, fingerprint, pem, subject, issuer, not_after, added_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (store, fingerprint) DO NOTHING`,
		c.Store, c.Fingerprint, c.PEM, c.Subject, c.Issuer, tn(c.NotAfter), orNow(c.AddedAt).UnixNano())
	if err != nil {
		return fmt.Errorf("store: put trust certificate %s/%s: %w", c.Store, c.Fingerprint, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: trust certificate %s/%s: %w", c.Store, c.Fingerprint, ErrConflict)
	}
	return nil
}

// ListTrustCerts is SQLite.ListTrustCerts on PostgreSQL.
func (p *Postgres) ListTrustCerts(ctx context.Context, store string) ([]TrustCert, error) {
	q := `SELECT store, fingerprint, pem, subject, issuer, not_after, added_at FROM trust_certs`
	var args []any
	if store != "" {
		q += ` WHERE store = $1`
		args = append(args, store)
	}
	q += ` ORDER BY added_at, store, fingerprint`
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list trust certificates: %w", err)
	}
	defer rows.Close()
	var out []TrustCert
	for rows.Next() {
		var c TrustCert
		var notAfter, added sql.NullInt64
		if err := rows.Scan(&c.Store, &c.Fingerprint, &c.PEM, &c.Subject, &c.Issuer, &notAfter, &added); err != nil {
			return nil, fmt.Errorf("store: list trust certificates: %w", err)
		}
		c.NotAfter, c.AddedAt = nt(notAfter), nt(added)
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteTrustCert is SQLite.DeleteTrustCert on PostgreSQL.
func (p *Postgres) DeleteTrustCert(ctx context.Context, store, fingerprint string) error {
	tag, err := p.pool.Exec(ctx, `DELETE FROM trust_certs WHERE store = $1 AND fingerprint = $2`, store, fingerprint)
	if err != nil {
		return fmt.Errorf("store: delete trust certificate %s/%s: %w", store, fingerprint, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: trust certificate %s/%s: %w", store, fingerprint, ErrNotFound)
	}
	return nil
}

// Audit is SQLite.Audit on PostgreSQL.
func (p *Postgres) Audit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if _, err := p.pool.Exec(ctx, `INSERT INTO audit (at, actor, action, detail) VALUES ($1, $2, $3, $4)`,
		tv(e.At), e.Actor, e.Action, e.Detail); err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// ListAudit is SQLite.ListAudit on PostgreSQL.
func (p *Postgres) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	q := `SELECT id, at, actor, action, detail FROM audit ORDER BY at DESC, id DESC`
	var args []any
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := p.pool.Query(ctx, q, args...)
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
	return out, rows.Err()
}

// Purge is SQLite.Purge on PostgreSQL.
func (p *Postgres) Purge(ctx context.Context, now time.Time) error {
	n := now.UnixNano()
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		stmts := []struct {
			what, q string
			arg     int64
		}{
			{"activation codes", `DELETE FROM activation_codes WHERE expires_at < $1`, now.Add(-codeRetention).UnixNano()},
			{"refresh tokens", `DELETE FROM refresh_tokens WHERE expires_at <= $1`, n},
			{"families", `DELETE FROM families WHERE NOT EXISTS
				(SELECT 1 FROM refresh_tokens t WHERE t.family = families.id) AND created_at <= $1`, n},
			{"revoked access tokens", `DELETE FROM revoked_access_tokens WHERE expires_at <= $1`, n},
			{"registrations", `DELETE FROM registrations WHERE expires_at <= $1`, n},
			{"change feed", `DELETE FROM changes WHERE at < $1`, now.Add(-changeRetention).UnixNano()},
		}
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st.q, st.arg); err != nil {
				return fmt.Errorf("store: purge %s: %w", st.what, err)
			}
		}
		return nil
	})
}
