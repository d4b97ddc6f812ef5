package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Security profiles.

// PutSecurityProfile inserts or replaces a security profile.
func (s *SQLite) PutSecurityProfile(ctx context.Context, p SecurityProfile) error {
	if p.Name == "" {
		return errors.New("store: security profile without a name")
	}
	_, err := s.exec(ctx,
		`INSERT INTO security_profiles (name, device_type, mode, transport, oauth, digest, tftp_encrypted, require_bound_tokens)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET
			device_type = excluded.device_type,
			mode = excluded.mode, transport = excluded.transport, oauth = excluded.oauth,
			digest = excluded.digest, tftp_encrypted = excluded.tftp_encrypted,
			require_bound_tokens = excluded.require_bound_tokens`,
		p.Name, p.DeviceType, p.Mode, p.Transport, b2i(p.OAuth), b2i(p.Digest), b2i(p.TFTPEncrypted), b2i(p.RequireBoundTokens))
	if err != nil {
		return fmt.Errorf("store: put security profile %q: %w", p.Name, err)
	}
	return nil
}

const profileCols = `name, device_type, mode, transport, oauth, digest, tftp_encrypted, require_bound_tokens`

func scanProfile(sc interface{ Scan(...any) error }) (SecurityProfile, error) {
	var p SecurityProfile
	err := sc.Scan(&p.Name, &p.DeviceType, &p.Mode, &p.Transport, &p.OAuth, &p.Digest, &p.TFTPEncrypted, &p.RequireBoundTokens)
	return p, err
}

// GetSecurityProfile returns one security profile.
func (s *SQLite) GetSecurityProfile(ctx context.Context, name string) (SecurityProfile, error) {
	p, err := scanProfile(s.queryRow(ctx,
		`SELECT `+profileCols+` FROM security_profiles WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return SecurityProfile{}, fmt.Errorf("store: security profile %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return SecurityProfile{}, fmt.Errorf("store: security profile %q: %w", name, err)
	}
	return p, nil
}

// ListSecurityProfiles returns every security profile, by name.
func (s *SQLite) ListSecurityProfiles(ctx context.Context) ([]SecurityProfile, error) {
	rows, err := s.query(ctx, `SELECT `+profileCols+` FROM security_profiles ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list security profiles: %w", err)
	}
	defer rows.Close()
	var out []SecurityProfile
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list security profiles: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list security profiles: %w", err)
	}
	return out, nil
}

// Devices.

// PutDevice inserts or replaces a device. CreatedAt is set on insert (now
// when zero) and kept on later updates.
func (s *SQLite) PutDevice(ctx context.Context, d Device) error {
	if d.Name == "" {
		return errors.New("store: device without a name")
	}
	created := d.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	_, err := s.exec(ctx,
		`INSERT INTO devices (name, model, line, owner, security_profile, allow_mra, mra_service_domain, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET
			model = excluded.model, line = excluded.line, owner = excluded.owner,
			security_profile = excluded.security_profile, allow_mra = excluded.allow_mra,
			mra_service_domain = excluded.mra_service_domain,
			created_at = COALESCE(devices.created_at, excluded.created_at)`,
		d.Name, d.Model, d.Line, d.Owner, d.SecurityProfile, b2i(d.AllowMRA), d.MRAServiceDomain, tn(created))
	if err != nil {
		return fmt.Errorf("store: put device %q: %w", d.Name, err)
	}
	return nil
}

const deviceCols = `name, model, line, owner, security_profile, allow_mra, mra_service_domain, created_at`

func scanDevice(sc interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var created sql.NullInt64
	err := sc.Scan(&d.Name, &d.Model, &d.Line, &d.Owner, &d.SecurityProfile, &d.AllowMRA, &d.MRAServiceDomain, &created)
	d.CreatedAt = nt(created)
	return d, err
}

// GetDevice returns one device.
func (s *SQLite) GetDevice(ctx context.Context, name string) (Device, error) {
	d, err := scanDevice(s.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, fmt.Errorf("store: device %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("store: device %q: %w", name, err)
	}
	return d, nil
}

// DeviceByLine returns the device with this directory number (the first by
// name when several share it), or ErrNotFound.
func (s *SQLite) DeviceByLine(ctx context.Context, line string) (Device, error) {
	d, err := scanDevice(s.queryRow(ctx,
		`SELECT `+deviceCols+` FROM devices WHERE line = ? ORDER BY name LIMIT 1`, line))
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, fmt.Errorf("store: device with line %q: %w", line, ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("store: device with line %q: %w", line, err)
	}
	return d, nil
}

// ListDevices returns every device, by name.
func (s *SQLite) ListDevices(ctx context.Context) ([]Device, error) {
	rows, err := s.query(ctx, `SELECT `+deviceCols+` FROM devices ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list devices: %w", err)
	}
	defer rows.Close()
	var out []Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list devices: %w", err)
	}
	return out, nil
}

// DeleteDevice deletes a device together with its activation codes (which
// are meaningless without it and must not come back to life if a device of
// the same name is created later). Unknown devices give ErrNotFound.
// Refresh-token families and registrations are left to the caller
// (RevokeDeviceFamilies, DeleteRegistrations).
func (s *SQLite) DeleteDevice(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM devices WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("store: delete device %q: %w", name, err)
		}
		n, err := affected(res)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("store: device %q: %w", name, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM activation_codes WHERE device = ?`, name); err != nil {
			return fmt.Errorf("store: delete device %q: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM activation_guesses WHERE device = ?`, name); err != nil {
			return fmt.Errorf("store: delete device %q: %w", name, err)
		}
		return nil
	})
}

// Users.

// PutUser inserts or replaces a user. CreatedAt is set on insert (now when
// zero) and kept on later updates.
func (s *SQLite) PutUser(ctx context.Context, u User) error {
	if u.Username == "" {
		return errors.New("store: user without a name")
	}
	created := u.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	_, err := s.exec(ctx,
		`INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)
		 ON CONFLICT (username) DO UPDATE SET
			password_hash = excluded.password_hash,
			created_at = COALESCE(users.created_at, excluded.created_at)`,
		u.Username, u.PasswordHash, tn(created))
	if err != nil {
		return fmt.Errorf("store: put user %q: %w", u.Username, err)
	}
	return nil
}

// GetUser returns one user.
func (s *SQLite) GetUser(ctx context.Context, username string) (User, error) {
	var u User
	var created sql.NullInt64
	err := s.queryRow(ctx,
		`SELECT username, password_hash, created_at FROM users WHERE username = ?`, username).
		Scan(&u.Username, &u.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("store: user %q: %w", username, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", username, err)
	}
	u.CreatedAt = nt(created)
	return u, nil
}

// Expressway-C entries.

// AddExpressway adds an entry and returns its new ID (e.ID is ignored).
func (s *SQLite) AddExpressway(ctx context.Context, e ExpresswayEntry) (int64, error) {
	names, err := jsonList(e.Names)
	if err != nil {
		return 0, err
	}
	domains, err := jsonList(e.Domains)
	if err != nil {
		return 0, err
	}
	res, err := s.exec(ctx,
		`INSERT INTO expressways (address, description, names, domains) VALUES (?, ?, ?, ?)`,
		e.Address, e.Description, names, domains)
	if err != nil {
		return 0, fmt.Errorf("store: add expressway %q: %w", e.Address, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("store: add expressway %q: %w", e.Address, err)
	}
	return id, nil
}

// UpdateExpressway replaces the entry with e.ID; unknown IDs give ErrNotFound.
func (s *SQLite) UpdateExpressway(ctx context.Context, e ExpresswayEntry) error {
	names, err := jsonList(e.Names)
	if err != nil {
		return err
	}
	domains, err := jsonList(e.Domains)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx,
		`UPDATE expressways SET address = ?, description = ?, names = ?, domains = ? WHERE id = ?`,
		e.Address, e.Description, names, domains, e.ID)
	if err != nil {
		return fmt.Errorf("store: update expressway %d: %w", e.ID, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: expressway %d: %w", e.ID, ErrNotFound)
	}
	return nil
}

// DeleteExpressway deletes an entry; unknown IDs give ErrNotFound.
func (s *SQLite) DeleteExpressway(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `DELETE FROM expressways WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: delete expressway %d: %w", id, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: expressway %d: %w", id, ErrNotFound)
	}
	return nil
}

// ListExpressways returns every entry, by ID.
func (s *SQLite) ListExpressways(ctx context.Context) ([]ExpresswayEntry, error) {
	rows, err := s.query(ctx,
		`SELECT id, address, description, names, domains FROM expressways ORDER BY id`)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list expressways: %w", err)
	}
	return out, nil
}

// ReportName records that an edge presented this X.509 name from address at
// time at: the first sighting is kept, the last one and the address updated.
func (s *SQLite) ReportName(ctx context.Context, name, address string, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	_, err := s.exec(ctx,
		`INSERT INTO reported_names (name, address, first_seen, last_seen) VALUES (?, ?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET
			address = CASE WHEN excluded.last_seen >= reported_names.last_seen
				THEN excluded.address ELSE reported_names.address END,
			last_seen = MAX(reported_names.last_seen, excluded.last_seen),
			first_seen = MIN(reported_names.first_seen, excluded.first_seen)`,
		name, address, at.UnixNano(), at.UnixNano())
	if err != nil {
		return fmt.Errorf("store: report name %q: %w", name, err)
	}
	return nil
}

// ListReportedNames returns every reported name, by name.
func (s *SQLite) ListReportedNames(ctx context.Context) ([]ReportedName, error) {
	rows, err := s.query(ctx,
		`SELECT name, address, first_seen, last_seen FROM reported_names ORDER BY name`)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list reported names: %w", err)
	}
	return out, nil
}
