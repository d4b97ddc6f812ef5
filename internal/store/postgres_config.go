package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Parameters, users, Expressway-C entries, reported names and single
// binding changes on PostgreSQL, with SQLite's semantics.

// GetParam is SQLite.GetParam on PostgreSQL.
func (p *Postgres) GetParam(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := p.pool.QueryRow(ctx, `SELECT value FROM params WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: param %q: %w", name, err)
	}
	return v, true, nil
}

// SetParam is SQLite.SetParam on PostgreSQL.
func (p *Postgres) SetParam(ctx context.Context, name, value string) error {
	if _, err := p.pool.Exec(ctx, `INSERT INTO params (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		name, value); err != nil {
		return fmt.Errorf("store: set param %q: %w", name, err)
	}
	return nil
}

// ListParams is SQLite.ListParams on PostgreSQL.
func (p *Postgres) ListParams(ctx context.Context) (map[string]string, error) {
	rows, err := p.pool.Query(ctx, `SELECT name, value FROM params ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list params: %w", err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("store: list params: %w", err)
		}
		m[k] = v
	}
	return m, rows.Err()
}

// PutUser is SQLite.PutUser on PostgreSQL.
func (p *Postgres) PutUser(ctx context.Context, u User) error {
	if u.Username == "" {
		return errors.New("store: user without a name")
	}
	created := u.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	if _, err := p.pool.Exec(ctx,
		`INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3)
		 ON CONFLICT (username) DO UPDATE SET
			password_hash = excluded.password_hash,
			created_at = COALESCE(users.created_at, excluded.created_at)`,
		u.Username, u.PasswordHash, tn(created)); err != nil {
		return fmt.Errorf("store: put user %q: %w", u.Username, err)
	}
	return nil
}

// GetUser is SQLite.GetUser on PostgreSQL.
func (p *Postgres) GetUser(ctx context.Context, username string) (User, error) {
	var u User
	var created sql.NullInt64
	err := p.pool.QueryRow(ctx, `SELECT username, password_hash, created_at FROM users WHERE username = $1`, username).
		Scan(&u.Username, &u.PasswordHash, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("store: user %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", username, err)
	}
	u.CreatedAt = nt(created)
	return u, nil
}

// AddExpressway is SQLite.AddExpressway on PostgreSQL.
func (p *Postgres) AddExpressway(ctx context.Context, e ExpresswayEntry) (int64, error) {
	names, err := jsonList(e.Names)
	if err != nil {
		return 0, err
	}
	domains, err := jsonList(e.Domains)
	if err != nil {
		return 0, err
	}
	var id int64
	if err := p.pool.QueryRow(ctx,
		`INSERT INTO expressways (address, description, names, domains) VALUES ($1, $2, $3, $4) RETURNING id`,
		e.Address, e.Description, names, domains).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: add expressway %q: %w", e.Address, err)
	}
	return id, nil
}

// UpdateExpressway is SQLite.UpdateExpressway on PostgreSQL.
func (p *Postgres) UpdateExpressway(ctx context.Context, e ExpresswayEntry) error {
	names, err := jsonList(e.Names)
	if err != nil {
		return err
	}
	domains, err := jsonList(e.Domains)
	if err != nil {
		return err
	}
	tag, err := p.pool.Exec(ctx, `UPDATE expressways SET address = $1, description = $2, names = $3, domains = $4 WHERE id = $5`,
		e.Address, e.Description, names, domains, e.ID)
	if err != nil {
		return fmt.Errorf("store: update expressway %d: %w", e.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: expressway %d: %w", e.ID, ErrNotFound)
	}
	return nil
}

// DeleteExpressway is SQLite.DeleteExpressway on PostgreSQL.
func (p *Postgres) DeleteExpressway(ctx context.Context, id int64) error {
	tag, err := p.pool.Exec(ctx, `DELETE FROM expressways WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete expressway %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: expressway %d: %w", id, ErrNotFound)
	}
	return nil
}

// ListExpressways is SQLite.ListExpressways on PostgreSQL.
func (p *Postgres) ListExpressways(ctx context.Context) ([]ExpresswayEntry, error) {
	rows, err := p.pool.Query(ctx, `SELECT id, address, description, names, domains FROM expressways ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list expressways: %w", err)
	}
	defer rows.Close()
	var out []ExpresswayEntry
	for rows.Next() {
		var e ExpresswayEntry
		var names, domains string
		if err := rows.Scan(&e.ID, &e.Address, &e.Description, &names, &domains); err != nil {
			return nil, fmt.Errorf("store: list expressways: %w", err)
		}
		if e.Names, err = parseList(names); err != nil {
			return nil, err
		}
		if e.Domains, err = parseList(domains); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReportName is SQLite.ReportName on PostgreSQL.
func (p *Postgres) ReportName(ctx context.Context, name, address string, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	if _, err := p.pool.Exec(ctx,
		`INSERT INTO reported_names AS r (name, address, first_seen, last_seen) VALUES ($1, $2, $3, $3)
		 ON CONFLICT (name) DO UPDATE SET
			address = CASE WHEN excluded.last_seen >= r.last_seen THEN excluded.address ELSE r.address END,
			last_seen = GREATEST(r.last_seen, excluded.last_seen),
			first_seen = LEAST(r.first_seen, excluded.first_seen)`,
		name, address, at.UnixNano()); err != nil {
		return fmt.Errorf("store: report name %q: %w", name, err)
	}
	return nil
}

// ListReportedNames is SQLite.ListReportedNames on PostgreSQL.
func (p *Postgres) ListReportedNames(ctx context.Context) ([]ReportedName, error) {
	rows, err := p.pool.Query(ctx, `SELECT name, address, first_seen, last_seen FROM reported_names ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list reported names: %w", err)
	}
	defer rows.Close()
	var out []ReportedName
	for rows.Next() {
		var r ReportedName
		var first, last sql.NullInt64
		if err := rows.Scan(&r.Name, &r.Address, &first, &last); err != nil {
			return nil, fmt.Errorf("store: list reported names: %w", err)
		}
		r.FirstSeen, r.LastSeen = nt(first), nt(last)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteSecurityProfile is SQLite.DeleteSecurityProfile on PostgreSQL: a
// profile a device names is kept (ErrConflict). The device check and the
// delete run in one transaction holding the profile's row lock, so a device
// cannot start naming it in between through this store.
func (p *Postgres) DeleteSecurityProfile(ctx context.Context, name string) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM security_profiles WHERE name = $1 FOR UPDATE`, name).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("store: security profile %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: delete security profile %q: %w", name, err)
		}
		var users int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM devices WHERE security_profile = $1`, name).Scan(&users); err != nil {
			return fmt.Errorf("store: delete security profile %q: %w", name, err)
		}
		if users > 0 {
			return fmt.Errorf("store: security profile %q is used by %d device(s): %w", name, users, ErrConflict)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM security_profiles WHERE name = $1`, name); err != nil {
			return fmt.Errorf("store: delete security profile %q: %w", name, err)
		}
		return nil
	})
}

// PutRegistration is SQLite.PutRegistration on PostgreSQL.
func (p *Postgres) PutRegistration(ctx context.Context, r Registration) error {
	args, err := registrationArgs(r)
	if err != nil {
		return err
	}
	if _, err := p.pool.Exec(ctx, pgPutRegistrationSQL, args...); err != nil {
		return fmt.Errorf("store: put registration %q: %w", r.AOR, err)
	}
	return nil
}

// DeleteRegistration is SQLite.DeleteRegistration on PostgreSQL.
func (p *Postgres) DeleteRegistration(ctx context.Context, aor, contact string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM registrations WHERE aor = $1 AND contact = $2`, aor, contact); err != nil {
		return fmt.Errorf("store: delete registration %q: %w", aor, err)
	}
	return nil
}

// DeleteRegistrations is SQLite.DeleteRegistrations on PostgreSQL.
func (p *Postgres) DeleteRegistrations(ctx context.Context, aor string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM registrations WHERE aor = $1`, aor); err != nil {
		return fmt.Errorf("store: delete registrations %q: %w", aor, err)
	}
	return nil
}
