package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// changesChannel is the NOTIFY channel every change is announced on.
const changesChannel = "edgeway_changes"

// Changes is SQLite.Changes on PostgreSQL.
func (p *Postgres) Changes(ctx context.Context, after int64, limit int) ([]Change, error) {
	rows, err := p.pool.Query(ctx, `SELECT id, kind, key FROM changes WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
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

// ChangeCursor is SQLite.ChangeCursor on PostgreSQL.
func (p *Postgres) ChangeCursor(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	if err := p.pool.QueryRow(ctx, `SELECT MAX(id) FROM changes`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: change cursor: %w", err)
	}
	return id.Int64, nil
}

// RevokedAccessTokens is SQLite.RevokedAccessTokens on PostgreSQL.
func (p *Postgres) RevokedAccessTokens(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := p.pool.Query(ctx, `SELECT jti FROM revoked_access_tokens WHERE expires_at > $1`, orNow(now).UnixNano())
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

// ListenChanges sends on the returned channel (capacity 1, so wake-ups
// coalesce) after each committed change of the feed, from any node, until
// ctx ends; the channel is closed when its goroutine has stopped. A
// follower reads Changes after its cursor on each wake-up, instead of
// polling. It holds one connection of the pool while it listens; an error
// on that connection ends it (the channel closes), and the follower falls
// back to polling.
func (p *Postgres) ListenChanges(ctx context.Context) (<-chan struct{}, error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: listen for changes: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+changesChannel); err != nil {
		conn.Release()
		return nil, fmt.Errorf("store: listen for changes: %w", err)
	}
	pc := conn.Hijack() // out of the pool for good: a LISTENing connection must not serve others
	wake := make(chan struct{}, 1)
	go func() {
		defer close(wake)
		defer pc.Close(context.Background())
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	return wake, nil
}
