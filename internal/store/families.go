package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// A user's refresh-token families (R-2: an administrator revokes a user's
// refresh tokens, e.g. when an employee leaves). A family is the user's
// when one of its tokens carries the username (a password grant) or was
// issued to a device the user owns (devices.owner), or when the family
// was started for such a device. The queries are written once with ?1 for
// the username and turned into $1 for PostgreSQL.

// userFamiliesWhere selects the families (alias f) of the user ?1.
const userFamiliesWhere = `(f.id IN (SELECT t.family FROM refresh_tokens t
	               WHERE t.username = ?1 OR t.device IN (SELECT d.name FROM devices d WHERE d.owner = ?1))
	  OR f.device IN (SELECT d.name FROM devices d WHERE d.owner = ?1))`

// familyInfoSelect reads a family with its current token: the unrotated
// one if there is one, else the newest.
const familyInfoSelect = `SELECT f.id, f.device, f.created_at, f.revoked_at,
	COALESCE(c.device, ''), COALESCE(c.username, ''), COALESCE(c.origin, ''), CAST(COALESCE(c.mra, 0) AS INTEGER), c.expires_at
	FROM families f
	LEFT JOIN refresh_tokens c ON c.hash = (SELECT n.hash FROM refresh_tokens n WHERE n.family = f.id
	                                        ORDER BY (n.rotated_at IS NULL) DESC, n.issued_at DESC, n.hash DESC LIMIT 1)`

func pgQuery(q string) string { return strings.ReplaceAll(q, "?1", "$1") }

func scanFamilyInfo(sc interface{ Scan(...any) error }) (FamilyInfo, error) {
	var f FamilyInfo
	var famDevice, tokDevice string
	var started int64
	var revoked, expires sql.NullInt64
	var mra int64
	if err := sc.Scan(&f.ID, &famDevice, &started, &revoked, &tokDevice, &f.Username, &f.Origin, &mra, &expires); err != nil {
		return f, err
	}
	f.Device = tokDevice
	if f.Device == "" {
		f.Device = famDevice
	}
	f.MRA = mra != 0
	f.StartedAt = nt(sql.NullInt64{Int64: started, Valid: true})
	f.RevokedAt, f.ExpiresAt = nt(revoked), nt(expires)
	return f, nil
}

func errEmptyUser(what string) error {
	return fmt.Errorf("store: %s: empty username", what)
}

// UserFamilies lists a user's families, oldest first (see Store).
func (s *SQLite) UserFamilies(ctx context.Context, username string) ([]FamilyInfo, error) {
	if username == "" {
		return nil, errEmptyUser("user families")
	}
	rows, err := s.query(ctx, familyInfoSelect+` WHERE `+userFamiliesWhere+` ORDER BY f.created_at, f.id`, username)
	if err != nil {
		return nil, fmt.Errorf("store: families of %q: %w", username, err)
	}
	defer rows.Close()
	out, err := collect(rows, scanFamilyInfo)
	if err != nil {
		return nil, fmt.Errorf("store: families of %q: %w", username, err)
	}
	return out, nil
}

// Family returns one family; ErrNotFound when there is none.
func (s *SQLite) Family(ctx context.Context, id string) (FamilyInfo, error) {
	f, err := scanFamilyInfo(s.queryRow(ctx, familyInfoSelect+` WHERE f.id = ?1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("store: family %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return f, fmt.Errorf("store: family %q: %w", id, err)
	}
	return f, nil
}

// RevokeUserFamilies revokes a user's live families in one transaction
// (see Store). The change feed's triggers record each one.
func (s *SQLite) RevokeUserFamilies(ctx context.Context, username string, now time.Time) ([]string, error) {
	if username == "" {
		return nil, errEmptyUser("revoke user families")
	}
	var ids []string
	err := s.tx(ctx, func(tx *txn) error {
		ids = nil
		rows, err := tx.QueryContext(ctx,
			`UPDATE families SET revoked_at = ?2 WHERE revoked_at IS NULL AND id IN (SELECT f.id FROM families f WHERE `+userFamiliesWhere+`)
			 RETURNING id`, username, orNow(now).UnixNano())
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET grace_sealed = NULL WHERE family = ? AND grace_sealed IS NOT NULL`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: revoke families of %q: %w", username, err)
	}
	slices.Sort(ids)
	return ids, nil
}

// UserFamilies is SQLite.UserFamilies on PostgreSQL.
func (p *Postgres) UserFamilies(ctx context.Context, username string) ([]FamilyInfo, error) {
	if username == "" {
		return nil, errEmptyUser("user families")
	}
	rows, err := p.pool.Query(ctx, pgQuery(familyInfoSelect+` WHERE `+userFamiliesWhere+` ORDER BY f.created_at, f.id`), username)
	if err != nil {
		return nil, fmt.Errorf("store: families of %q: %w", username, err)
	}
	defer rows.Close()
	out, err := collect(rows, scanFamilyInfo)
	if err != nil {
		return nil, fmt.Errorf("store: families of %q: %w", username, err)
	}
	return out, nil
}

// Family is SQLite.Family on PostgreSQL.
func (p *Postgres) Family(ctx context.Context, id string) (FamilyInfo, error) {
	f, err := scanFamilyInfo(p.pool.QueryRow(ctx, pgQuery(familyInfoSelect+` WHERE f.id = ?1`), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("store: family %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return f, fmt.Errorf("store: family %q: %w", id, err)
	}
	return f, nil
}

// RevokeUserFamilies is SQLite.RevokeUserFamilies on PostgreSQL.
func (p *Postgres) RevokeUserFamilies(ctx context.Context, username string, now time.Time) ([]string, error) {
	if username == "" {
		return nil, errEmptyUser("revoke user families")
	}
	var ids []string
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		ids = nil
		rows, err := tx.Query(ctx, pgQuery(
			`UPDATE families SET revoked_at = $2 WHERE revoked_at IS NULL AND id IN (SELECT f.id FROM families f WHERE `+userFamiliesWhere+`)
			 RETURNING id`), username, orNow(now).UnixNano())
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET grace_sealed = NULL WHERE family = ANY($1) AND grace_sealed IS NOT NULL`, ids); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: revoke families of %q: %w", username, err)
	}
	slices.Sort(ids)
	return ids, nil
}

// rowIter is what *sql.Rows and pgx.Rows have in common.
type rowIter interface {
	Next() bool
	Scan(...any) error
	Err() error
}

// collect reads every row with scan; what the rows or a scan fail with is
// returned as it is, for the caller to say what it was reading.
func collect[T any](rows rowIter, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
