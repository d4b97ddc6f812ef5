package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DeleteSecurityProfile deletes a security profile. An unknown name gives
// ErrNotFound; a profile that some device's SecurityProfile names gives
// ErrConflict and is kept. The check and the delete run in one IMMEDIATE
// transaction.
func (s *SQLite) DeleteSecurityProfile(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *txn) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM security_profiles WHERE name = ?`, name).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: security profile %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: delete security profile %q: %w", name, err)
		}
		var users int
		if err := tx.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM devices WHERE security_profile = ?`, name).Scan(&users); err != nil {
			return fmt.Errorf("store: delete security profile %q: %w", name, err)
		}
		if users > 0 {
			return fmt.Errorf("store: security profile %q is used by %d device(s): %w", name, users, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM security_profiles WHERE name = ?`, name); err != nil {
			return fmt.Errorf("store: delete security profile %q: %w", name, err)
		}
		return nil
	})
}

// Administrators.

// PutAdmin inserts or replaces an administrator. CreatedAt is set on insert
// (now when zero) and kept on later updates.
func (s *SQLite) PutAdmin(ctx context.Context, a Admin) error {
	if a.Username == "" {
		return errors.New("store: admin without a name")
	}
	_, err := s.exec(ctx,
		`INSERT INTO admins (username, password_hash, created_at) VALUES (?, ?, ?)
		 ON CONFLICT (username) DO UPDATE SET
			password_hash = excluded.password_hash,
			created_at = COALESCE(admins.created_at, excluded.created_at)`,
		a.Username, a.PasswordHash, tn(orNow(a.CreatedAt)))
	if err != nil {
		return fmt.Errorf("store: put admin %q: %w", a.Username, err)
	}
	return nil
}

// GetAdmin returns one administrator.
func (s *SQLite) GetAdmin(ctx context.Context, username string) (Admin, error) {
	var a Admin
	var created sql.NullInt64
	err := s.queryRow(ctx,
		`SELECT username, password_hash, created_at FROM admins WHERE username = ?`, username).
		Scan(&a.Username, &a.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Admin{}, fmt.Errorf("store: admin %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return Admin{}, fmt.Errorf("store: admin %q: %w", username, err)
	}
	a.CreatedAt = nt(created)
	return a, nil
}

// CountAdmins returns the number of administrators.
func (s *SQLite) CountAdmins(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM admins`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count admins: %w", err)
	}
	return n, nil
}

// API tokens.

// PutAPIToken stores a new token. An existing ID or hash gives ErrConflict.
// CreatedAt defaults to now.
func (s *SQLite) PutAPIToken(ctx context.Context, t APIToken) error {
	if t.ID == "" || len(t.Hash) == 0 {
		return errors.New("store: API token needs an ID and a hash")
	}
	res, err := s.exec(ctx,
		`INSERT INTO api_tokens (id, hash, name, owner, parent, login, created_at, revoked_at, last_used, expires_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		t.ID, t.Hash, t.Name, t.Owner, t.Parent, b2i(t.Login), orNow(t.CreatedAt).UnixNano(), tn(t.RevokedAt), tn(t.LastUsed), tn(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("store: put API token %q: %w", t.ID, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: API token %q: %w", t.ID, ErrConflict)
	}
	return nil
}

// maxTokenChain bounds how far a token's parents are followed.
const maxTokenChain = 32

// APITokenByHash returns the token with this hash if neither it nor any
// token up its chain of parents is revoked or expired, recording its use at
// now (LastUsed) in the same statement. Otherwise nothing changes, and the
// error is ErrExpired when the token itself has expired, else ErrNotFound.
func (s *SQLite) APITokenByHash(ctx context.Context, hash []byte, now time.Time) (APIToken, error) {
	now = orNow(now)
	var t APIToken
	var created, revoked, used, expires sql.NullInt64
	unlock, err := s.lockWrite(ctx) // the statement writes last_used
	if err != nil {
		return APIToken{}, err
	}
	defer unlock()
	err = s.queryRow(ctx,
		`UPDATE api_tokens SET last_used = ?1
		 WHERE hash = ?2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)
		   AND NOT EXISTS (
			-- up: the ids of the token's ancestors; one revoked, expired or
			-- gone invalidates it.
			WITH RECURSIVE up(id, depth) AS (
				SELECT parent, 1 FROM api_tokens WHERE hash = ?2
				UNION ALL
				SELECT t.parent, up.depth + 1 FROM api_tokens t JOIN up ON t.id = up.id
				WHERE t.parent != '' AND up.depth < ?3)
			SELECT 1 FROM up WHERE up.id != ''
			  AND NOT EXISTS (SELECT 1 FROM api_tokens p WHERE p.id = up.id AND p.revoked_at IS NULL
			                  AND (p.expires_at IS NULL OR p.expires_at > ?1)))
		 RETURNING id, hash, name, owner, parent, login, created_at, revoked_at, last_used, expires_at`,
		now.UnixNano(), hash, maxTokenChain).
		Scan(&t.ID, &t.Hash, &t.Name, &t.Owner, &t.Parent, &t.Login, &created, &revoked, &used, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		var exp sql.NullInt64
		if err := s.queryRow(ctx, `SELECT expires_at FROM api_tokens WHERE hash = ? AND revoked_at IS NULL`, hash).Scan(&exp); err == nil &&
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

// ListAPITokens returns every token, oldest first, without their hashes
// (Hash is nil).
func (s *SQLite) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.query(ctx,
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list API tokens: %w", err)
	}
	return out, nil
}

// revokeTokenTrees revokes the tokens the seed query selects and every
// token created from them (keeping first revocation times).
const revokeTokenTrees = `
	WITH RECURSIVE tree(id, depth) AS (
		%s
		UNION ALL
		SELECT t.id, tree.depth + 1 FROM api_tokens t JOIN tree ON t.parent = tree.id WHERE tree.depth < ?)
	UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id IN (SELECT id FROM tree)`

// RevokeAPIToken revokes a token and the tokens created from it; an
// unknown ID gives ErrNotFound.
func (s *SQLite) RevokeAPIToken(ctx context.Context, id string, now time.Time) error {
	var one int
	if err := s.queryRow(ctx, `SELECT 1 FROM api_tokens WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: API token %q: %w", id, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("store: revoke API token %q: %w", id, err)
	}
	if _, err := s.exec(ctx, fmt.Sprintf(revokeTokenTrees, `SELECT id, 0 FROM api_tokens WHERE id = ?`),
		id, maxTokenChain, orNow(now).UnixNano()); err != nil {
		return fmt.Errorf("store: revoke API token %q: %w", id, err)
	}
	return nil
}

// RevokeAPITokensOf revokes owner's tokens but keep, with the tokens
// created from them.
func (s *SQLite) RevokeAPITokensOf(ctx context.Context, owner, keep string, now time.Time) error {
	if _, err := s.exec(ctx, fmt.Sprintf(revokeTokenTrees, `SELECT id, 0 FROM api_tokens WHERE owner = ? AND id != ?`),
		owner, keep, maxTokenChain, orNow(now).UnixNano()); err != nil {
		return fmt.Errorf("store: revoke API tokens of %q: %w", owner, err)
	}
	return nil
}

// Core nodes.

// PutNode inserts or replaces (every field) the node with n.Name.
func (s *SQLite) PutNode(ctx context.Context, n Node) error {
	if n.Name == "" {
		return errors.New("store: node without a name")
	}
	_, err := s.exec(ctx,
		`INSERT INTO nodes (name, role, phone_oauth_port, mra_port, running_mode, restarted_at, last_seen,
			listening_phone_oauth_port, listening_mra_port)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET
			role = excluded.role, phone_oauth_port = excluded.phone_oauth_port,
			mra_port = excluded.mra_port, running_mode = excluded.running_mode,
			restarted_at = excluded.restarted_at, last_seen = excluded.last_seen,
			listening_phone_oauth_port = excluded.listening_phone_oauth_port,
			listening_mra_port = excluded.listening_mra_port`,
		n.Name, n.Role, n.PhoneOAuthPort, n.MRAPort, n.RunningMode, tn(n.RestartedAt), tn(n.LastSeen),
		n.ListeningPhoneOAuthPort, n.ListeningMRAPort)
	if err != nil {
		return fmt.Errorf("store: put node %q: %w", n.Name, err)
	}
	return nil
}

const nodeCols = `name, role, phone_oauth_port, mra_port, running_mode, restarted_at, last_seen,
	listening_phone_oauth_port, listening_mra_port`

func scanNode(sc interface{ Scan(...any) error }) (Node, error) {
	var n Node
	var restarted, seen sql.NullInt64
	err := sc.Scan(&n.Name, &n.Role, &n.PhoneOAuthPort, &n.MRAPort, &n.RunningMode, &restarted, &seen,
		&n.ListeningPhoneOAuthPort, &n.ListeningMRAPort)
	n.RestartedAt, n.LastSeen = nt(restarted), nt(seen)
	return n, err
}

// GetNode returns one node.
func (s *SQLite) GetNode(ctx context.Context, name string) (Node, error) {
	n, err := scanNode(s.queryRow(ctx, `SELECT `+nodeCols+` FROM nodes WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Node{}, fmt.Errorf("store: node %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Node{}, fmt.Errorf("store: node %q: %w", name, err)
	}
	return n, nil
}

// ListNodes returns every node, by name.
func (s *SQLite) ListNodes(ctx context.Context) ([]Node, error) {
	rows, err := s.query(ctx, `SELECT `+nodeCols+` FROM nodes ORDER BY name`)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list nodes: %w", err)
	}
	return out, nil
}

// Trust-store certificates.

// PutTrustCert stores a certificate in its trust store. A fingerprint already
// in that store gives ErrConflict. AddedAt defaults to now.
func (s *SQLite) PutTrustCert(ctx context.Context, c TrustCert) error {
	if c.Store == "" || c.Fingerprint == "" || len(c.PEM) == 0 {
		return errors.New("store: trust certificate needs a store, a fingerprint and a PEM")
	}
	res, err := s.exec(ctx,
		`INSERT INTO trust_certs (store, fingerprint, pem, subject, issuer, not_after, added_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store, fingerprint) DO NOTHING`,
		c.Store, c.Fingerprint, c.PEM, c.Subject, c.Issuer, tn(c.NotAfter), orNow(c.AddedAt).UnixNano())
	if err != nil {
		return fmt.Errorf("store: put trust certificate %s/%s: %w", c.Store, c.Fingerprint, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: trust certificate %s/%s: %w", c.Store, c.Fingerprint, ErrConflict)
	}
	return nil
}

// ListTrustCerts returns the certificates of one trust store (of every store
// when store is empty), oldest first.
func (s *SQLite) ListTrustCerts(ctx context.Context, store string) ([]TrustCert, error) {
	q := `SELECT store, fingerprint, pem, subject, issuer, not_after, added_at FROM trust_certs`
	var args []any
	if store != "" {
		q += ` WHERE store = ?`
		args = append(args, store)
	}
	q += ` ORDER BY added_at, store, fingerprint`
	rows, err := s.query(ctx, q, args...)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list trust certificates: %w", err)
	}
	return out, nil
}

// DeleteTrustCert removes a certificate from a trust store; one that is not
// there gives ErrNotFound.
func (s *SQLite) DeleteTrustCert(ctx context.Context, store, fingerprint string) error {
	res, err := s.exec(ctx,
		`DELETE FROM trust_certs WHERE store = ? AND fingerprint = ?`, store, fingerprint)
	if err != nil {
		return fmt.Errorf("store: delete trust certificate %s/%s: %w", store, fingerprint, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: trust certificate %s/%s: %w", store, fingerprint, ErrNotFound)
	}
	return nil
}
