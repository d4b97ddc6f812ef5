package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Changes lists at most limit entries of the change feed after the id
// after, oldest first. PostgreSQL can carry the same rows and wake the
// reader with LISTEN/NOTIFY; SQLite readers poll.
func (s *SQLite) Changes(ctx context.Context, after int64, limit int) ([]Change, error) {
	rows, err := s.query(ctx, `SELECT id, kind, key FROM changes WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: changes: %w", err)
	}
	defer rows.Close()
	var out []Change
	for rows.Next() {
		var c Change
		if err := rows.Scan(&c.ID, &c.Kind, &c.Key); err != nil {
			return nil, fmt.Errorf("store: changes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: changes: %w", err)
	}
	return out, nil
}

// ChangeCursor is the id of the newest change of the feed, 0 if none.
func (s *SQLite) ChangeCursor(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := s.queryRow(ctx, `SELECT MAX(id) FROM changes`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: change cursor: %w", err)
	}
	return id.Int64, nil
}

// RevokedAccessTokens lists the revoked access tokens still unexpired at now.
func (s *SQLite) RevokedAccessTokens(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := s.query(ctx, `SELECT jti FROM revoked_access_tokens WHERE expires_at > ?`, orNow(now).UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: revoked access tokens: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var jti string
		if err := rows.Scan(&jti); err != nil {
			return nil, fmt.Errorf("store: revoked access tokens: %w", err)
		}
		out = append(out, jti)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: revoked access tokens: %w", err)
	}
	return out, nil
}
