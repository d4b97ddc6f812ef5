package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Security profiles and devices on PostgreSQL, with SQLite's semantics.

// PutSecurityProfile is SQLite.PutSecurityProfile on PostgreSQL.
func (p *Postgres) PutSecurityProfile(ctx context.Context, sp SecurityProfile) error {
	if sp.Name == "" {
		return errors.New("store: security profile without a name")
	}
	if _, err := p.pool.Exec(ctx,
		`INSERT INTO security_profiles (name, device_type, mode, transport, oauth, digest, tftp_encrypted, require_bound_tokens)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		 ON CONFLICT (name) DO UPDATE SET
			device_type = excluded.device_type,
			mode = excluded.mode, transport = excluded.transport, oauth = excluded.oauth,
			digest = excluded.digest, tftp_encrypted = excluded.tftp_encrypted,
			require_bound_tokens = excluded.require_bound_tokens`,
		sp.Name, sp.DeviceType, sp.Mode, sp.Transport, sp.OAuth, sp.Digest, sp.TFTPEncrypted, sp.RequireBoundTokens); err != nil {
		return fmt.Errorf("store: put security profile %q: %w", sp.Name, err)
	}
	return nil
}

// GetSecurityProfile is SQLite.GetSecurityProfile on PostgreSQL.
func (p *Postgres) GetSecurityProfile(ctx context.Context, name string) (SecurityProfile, error) {
	sp, err := scanProfile(p.pool.QueryRow(ctx, `SELECT `+profileCols+` FROM security_profiles WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return SecurityProfile{}, fmt.Errorf("store: security profile %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return SecurityProfile{}, fmt.Errorf("store: security profile %q: %w", name, err)
	}
	return sp, nil
}

// ListSecurityProfiles is SQLite.ListSecurityProfiles on PostgreSQL.
func (p *Postgres) ListSecurityProfiles(ctx context.Context) ([]SecurityProfile, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+profileCols+` FROM security_profiles ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list security profiles: %w", err)
	}
	defer rows.Close()
	var out []SecurityProfile
	for rows.Next() {
		sp, err := scanProfile(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list security profiles: %w", err)
		}
		out = append(out, sp)
	}
	return out, rows.Err()
}

// PutDevice is SQLite.PutDevice on PostgreSQL.
func (p *Postgres) PutDevice(ctx context.Context, d Device) error {
	if d.Name == "" {
		return errors.New("store: device without a name")
	}
	created := d.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	if _, err := p.pool.Exec(ctx,
		`INSERT INTO devices (name, model, line, owner, security_profile, allow_mra, mra_service_domain, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		 ON CONFLICT (name) DO UPDATE SET
			model = excluded.model, line = excluded.line, owner = excluded.owner,
			security_profile = excluded.security_profile, allow_mra = excluded.allow_mra,
			mra_service_domain = excluded.mra_service_domain,
			created_at = COALESCE(devices.created_at, excluded.created_at)`,
		d.Name, d.Model, d.Line, d.Owner, d.SecurityProfile, d.AllowMRA, d.MRAServiceDomain, tn(created)); err != nil {
		return fmt.Errorf("store: put device %q: %w", d.Name, err)
	}
	return nil
}

// GetDevice is SQLite.GetDevice on PostgreSQL.
func (p *Postgres) GetDevice(ctx context.Context, name string) (Device, error) {
	d, err := scanDevice(p.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Device{}, fmt.Errorf("store: device %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("store: device %q: %w", name, err)
	}
	return d, nil
}

// DeviceByLine is SQLite.DeviceByLine on PostgreSQL.
func (p *Postgres) DeviceByLine(ctx context.Context, line string) (Device, error) {
	d, err := scanDevice(p.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE line = $1 ORDER BY name LIMIT 1`, line))
	if errors.Is(err, pgx.ErrNoRows) {
		return Device{}, fmt.Errorf("store: device with line %q: %w", line, ErrNotFound)
	}
	if err != nil {
		return Device{}, fmt.Errorf("store: device with line %q: %w", line, err)
	}
	return d, nil
}

// ListDevices is SQLite.ListDevices on PostgreSQL.
func (p *Postgres) ListDevices(ctx context.Context) ([]Device, error) {
	rows, err := p.pool.Query(ctx, `SELECT `+deviceCols+` FROM devices ORDER BY name`)
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
	return out, rows.Err()
}

// DeleteDevice is SQLite.DeleteDevice on PostgreSQL: the device with its
// activation codes and counted guesses, in one transaction.
func (p *Postgres) DeleteDevice(ctx context.Context, name string) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM devices WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("store: delete device %q: %w", name, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("store: device %q: %w", name, ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM activation_codes WHERE device = $1`, name); err != nil {
			return fmt.Errorf("store: delete device %q: %w", name, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM activation_guesses WHERE device = $1`, name); err != nil {
			return fmt.Errorf("store: delete device %q: %w", name, err)
		}
		return nil
	})
}
