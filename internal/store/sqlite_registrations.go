package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const putRegistrationSQL = `INSERT INTO registrations (aor, contact, device, path, call_id, cseq, expires_at, mra, edge, node, source, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (aor, contact) DO UPDATE SET
			device = excluded.device, path = excluded.path, call_id = excluded.call_id,
			cseq = excluded.cseq, expires_at = excluded.expires_at, mra = excluded.mra,
			edge = excluded.edge, node = excluded.node, source = excluded.source,
			updated_at = excluded.updated_at`

// registrationArgs checks r and returns the arguments of putRegistrationSQL.
func registrationArgs(r Registration) ([]any, error) {
	if r.AOR == "" || r.Contact == "" || r.ExpiresAt.IsZero() {
		return nil, errors.New("store: registration needs an AOR, a contact and an expiry")
	}
	path, err := jsonList(r.Path)
	if err != nil {
		return nil, err
	}
	return []any{r.AOR, r.Contact, r.Device, path, r.CallID, int64(r.CSeq), r.ExpiresAt.UnixNano(),
		b2i(r.MRA), r.Edge, r.Node, r.Source, orNow(r.UpdatedAt).UnixNano()}, nil
}

// ApplyRegistrations writes a batch of binding changes in one transaction
// (group commit: the location service gathers the REGISTERs that arrive
// together): first every delete, then every put. Either all of them are
// durable when it returns nil, or none is. A delete with an empty Contact
// removes every binding of its AOR (Contact: *, RFC 3261 §10.2.2).
func (s *SQLite) ApplyRegistrations(ctx context.Context, puts []Registration, deletes []RegistrationKey) error {
	if len(puts) == 0 && len(deletes) == 0 {
		return nil
	}
	args := make([][]any, len(puts))
	for i, r := range puts {
		a, err := registrationArgs(r)
		if err != nil {
			return err
		}
		args[i] = a
	}
	return s.tx(ctx, func(tx *txn) error {
		for _, k := range deletes {
			var err error
			if k.Contact == "" {
				_, err = tx.ExecContext(ctx, `DELETE FROM registrations WHERE aor = ?`, k.AOR)
			} else {
				_, err = tx.ExecContext(ctx, `DELETE FROM registrations WHERE aor = ? AND contact = ?`, k.AOR, k.Contact)
			}
			if err != nil {
				return fmt.Errorf("store: delete registration %q: %w", k.AOR, err)
			}
		}
		if len(args) == 0 {
			return nil
		}
		st, err := tx.prepared(ctx, putRegistrationSQL)
		if err != nil {
			return fmt.Errorf("store: put registrations: %w", err)
		}
		for i, a := range args {
			if _, err := st.ExecContext(ctx, a...); err != nil {
				return fmt.Errorf("store: put registration %q: %w", puts[i].AOR, err)
			}
		}
		return nil
	})
}

// PutRegistration inserts the binding, replacing any binding with the same
// (AOR, Contact). UpdatedAt defaults to now.
func (s *SQLite) PutRegistration(ctx context.Context, r Registration) error {
	args, err := registrationArgs(r)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, putRegistrationSQL, args...); err != nil {
		return fmt.Errorf("store: put registration %q: %w", r.AOR, err)
	}
	return nil
}

// DeleteRegistration removes one binding; removing an absent one is not an
// error (a SIP un-REGISTER may race with expiry).
func (s *SQLite) DeleteRegistration(ctx context.Context, aor, contact string) error {
	if _, err := s.exec(ctx,
		`DELETE FROM registrations WHERE aor = ? AND contact = ?`, aor, contact); err != nil {
		return fmt.Errorf("store: delete registration %q: %w", aor, err)
	}
	return nil
}

// DeleteRegistrations removes every binding of an AOR.
func (s *SQLite) DeleteRegistrations(ctx context.Context, aor string) error {
	if _, err := s.exec(ctx, `DELETE FROM registrations WHERE aor = ?`, aor); err != nil {
		return fmt.Errorf("store: delete registrations %q: %w", aor, err)
	}
	return nil
}

// Registrations lists the bindings of aor (of every AOR when aor is empty)
// that are still live at now (expires_at > now), by AOR then contact.
// Expired rows are skipped here and deleted by Purge.
func (s *SQLite) Registrations(ctx context.Context, aor string, now time.Time) ([]Registration, error) {
	q := `SELECT aor, contact, device, path, call_id, cseq, expires_at, mra, edge, node, source, updated_at
	      FROM registrations WHERE expires_at > ?`
	args := []any{orNow(now).UnixNano()}
	if aor != "" {
		q += ` AND aor = ?`
		args = append(args, aor)
	}
	q += ` ORDER BY aor, contact`
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: registrations: %w", err)
	}
	defer rows.Close()
	var out []Registration
	for rows.Next() {
		var r Registration
		var path string
		var cseq int64
		var expires, updated sql.NullInt64
		if err := rows.Scan(&r.AOR, &r.Contact, &r.Device, &path, &r.CallID, &cseq, &expires,
			&r.MRA, &r.Edge, &r.Node, &r.Source, &updated); err != nil {
			return nil, fmt.Errorf("store: registrations: %w", err)
		}
		if r.Path, err = parseList(path); err != nil {
			return nil, err
		}
		r.CSeq = uint32(cseq)
		r.ExpiresAt, r.UpdatedAt = nt(expires), nt(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: registrations: %w", err)
	}
	return out, nil
}
