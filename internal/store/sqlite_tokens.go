package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// orNow replaces the zero time with the current time, so a state change that
// records "when" can never store NULL and thereby leave the item unchanged.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// norm returns t as it reads back from the database (UTC, nanoseconds).
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

// Activation codes.

// PutActivationCode stores a new code. An existing ID or hash gives
// ErrConflict. CreatedAt defaults to now.
func (s *SQLite) PutActivationCode(ctx context.Context, c ActivationCode) error {
	if c.ID == "" || c.Device == "" || len(c.Hash) == 0 || c.ExpiresAt.IsZero() {
		return errors.New("store: activation code needs an ID, a device, a hash and an expiry")
	}
	res, err := s.exec(ctx,
		`INSERT INTO activation_codes (id, device, hash, created_at, expires_at, used_at, revoked_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		c.ID, c.Device, c.Hash, orNow(c.CreatedAt).UnixNano(), c.ExpiresAt.UnixNano(), tn(c.UsedAt), tn(c.RevokedAt))
	if err != nil {
		return fmt.Errorf("store: put activation code %q: %w", c.ID, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: activation code %q: %w", c.ID, ErrConflict)
	}
	return nil
}

const codeCols = `id, device, hash, created_at, expires_at, used_at, revoked_at, locked_at`

func scanCode(sc interface{ Scan(...any) error }) (ActivationCode, error) {
	var c ActivationCode
	var created, expires, used, revoked, locked sql.NullInt64
	err := sc.Scan(&c.ID, &c.Device, &c.Hash, &created, &expires, &used, &revoked, &locked)
	c.CreatedAt, c.ExpiresAt, c.UsedAt, c.RevokedAt, c.LockedAt = nt(created), nt(expires), nt(used), nt(revoked), nt(locked)
	return c, err
}

// outstanding is the condition on activation_codes of a device's code that
// could still be redeemed but for a lock; its parameters are the device and
// now.
const outstanding = `device = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?`

// RedeemActivationCode marks the code with this hash used, exactly once. In
// one IMMEDIATE transaction it refuses a locked device (ErrLocked), reads
// the code to classify a failure (ErrNotFound, ErrWrongDevice, ErrRevoked,
// ErrAlreadyUsed, ErrExpired, in that order), counts a wrong guess against
// budget (locking the device's outstanding codes when it reaches
// budget.Max), and otherwise marks the code with a conditional UPDATE whose
// affected-row count decides the winner. Since every step runs in the one
// writer transaction, concurrent guesses on a device, from any process,
// are counted one by one: at most budget.Max wrong guesses per window are
// ever looked up before the lock, and none after it.
//
// The refresh tokens in first (the first of a family the redemption
// starts) are stored in the same transaction as the code's use: either the
// code is spent and its tokens exist, or neither — a failure in between
// cannot leave a phone with a spent code and nothing to show for it.
func (s *SQLite) RedeemActivationCode(ctx context.Context, hash []byte, device string, now time.Time, budget GuessBudget, first ...RefreshToken) (ActivationCode, error) {
	now = orNow(now)
	var out ActivationCode
	var verdict error // a failure to report after committing the count
	err := s.tx(ctx, func(tx *txn) error {
		var locked int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM activation_codes WHERE locked_at IS NOT NULL AND `+outstanding,
			device, now.UnixNano()).Scan(&locked); err != nil {
			return fmt.Errorf("store: activation code: %w", err)
		}
		if locked > 0 {
			return fmt.Errorf("store: activation codes of %q: %w", device, ErrLocked)
		}
		c, err := scanCode(tx.QueryRowContext(ctx, `SELECT `+codeCols+` FROM activation_codes WHERE hash = ?`, hash))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			verdict = fmt.Errorf("store: activation code: %w", ErrNotFound)
			return s.countGuess(ctx, tx, device, now, budget, &verdict)
		case err != nil:
			return fmt.Errorf("store: activation code: %w", err)
		case c.Device != device:
			verdict = fmt.Errorf("store: activation code %q: %w", c.ID, ErrWrongDevice)
			return s.countGuess(ctx, tx, device, now, budget, &verdict)
		case !c.RevokedAt.IsZero():
			return fmt.Errorf("store: activation code %q: %w", c.ID, ErrRevoked)
		case !c.UsedAt.IsZero():
			return fmt.Errorf("store: activation code %q: %w", c.ID, ErrAlreadyUsed)
		case !now.Before(c.ExpiresAt):
			return fmt.Errorf("store: activation code %q: %w", c.ID, ErrExpired)
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE activation_codes SET used_at = ?
			 WHERE hash = ? AND device = ? AND used_at IS NULL AND revoked_at IS NULL AND locked_at IS NULL AND expires_at > ?`,
			now.UnixNano(), hash, device, now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: redeem activation code %q: %w", c.ID, err)
		}
		n, err := affected(res)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("store: activation code %q: %w", c.ID, ErrAlreadyUsed)
		}
		for _, t := range first {
			if err := putRefreshTokenTx(ctx, tx, t); err != nil {
				return err
			}
		}
		c.UsedAt = norm(now)
		out = c
		return nil
	})
	if err != nil {
		return ActivationCode{}, err
	}
	if verdict != nil {
		return ActivationCode{}, verdict
	}
	return out, nil
}

// countGuess counts the wrong guess *verdict against device within tx when
// budget is set and the device has an outstanding code (with none there is
// nothing to guess or lock), wrapping *verdict in a *GuessError. The guess
// that reaches budget.Max locks the device's outstanding codes. It returns
// only infrastructure errors, so the count commits with the verdict.
func (s *SQLite) countGuess(ctx context.Context, tx *txn, device string, now time.Time, budget GuessBudget, verdict *error) error {
	if budget.Max <= 0 {
		return nil
	}
	var open int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM activation_codes WHERE `+outstanding,
		device, now.UnixNano()).Scan(&open); err != nil {
		return fmt.Errorf("store: count wrong guess: %w", err)
	}
	if open == 0 {
		return nil
	}
	// One statement: a window older than budget.Window restarts at 1.
	var failures int
	if err := tx.QueryRowContext(ctx,
		`INSERT INTO activation_guesses (device, failures, window_start) VALUES (?, 1, ?)
		 ON CONFLICT (device) DO UPDATE SET
			failures     = CASE WHEN excluded.window_start - window_start >= ? THEN 1 ELSE failures + 1 END,
			window_start = CASE WHEN excluded.window_start - window_start >= ? THEN excluded.window_start ELSE window_start END
		 RETURNING failures`,
		device, now.UnixNano(), int64(budget.Window), int64(budget.Window)).Scan(&failures); err != nil {
		return fmt.Errorf("store: count wrong guess: %w", err)
	}
	ge := &GuessError{Device: device, Failures: failures, Err: *verdict}
	if failures >= budget.Max {
		res, err := tx.ExecContext(ctx, `UPDATE activation_codes SET locked_at = ? WHERE locked_at IS NULL AND `+outstanding,
			now.UnixNano(), device, now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: lock activation codes of %q: %w", device, err)
		}
		n, err := affected(res)
		if err != nil {
			return err
		}
		ge.Locked = n > 0
	}
	*verdict = ge
	return nil
}

// ResetActivationGuesses forgets the wrong guesses counted against device.
func (s *SQLite) ResetActivationGuesses(ctx context.Context, device string) error {
	if _, err := s.exec(ctx, `DELETE FROM activation_guesses WHERE device = ?`, device); err != nil {
		return fmt.Errorf("store: reset wrong guesses of %q: %w", device, err)
	}
	return nil
}

// ListActivationCodes returns the codes of one device (every code when device
// is empty), oldest first.
func (s *SQLite) ListActivationCodes(ctx context.Context, device string) ([]ActivationCode, error) {
	q := `SELECT ` + codeCols + ` FROM activation_codes`
	var args []any
	if device != "" {
		q += ` WHERE device = ?`
		args = append(args, device)
	}
	q += ` ORDER BY created_at, id`
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list activation codes: %w", err)
	}
	defer rows.Close()
	var out []ActivationCode
	for rows.Next() {
		c, err := scanCode(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list activation codes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list activation codes: %w", err)
	}
	return out, nil
}

// RevokeActivationCode revokes one code (keeping the first revocation time);
// an unknown ID gives ErrNotFound.
func (s *SQLite) RevokeActivationCode(ctx context.Context, id string, now time.Time) error {
	res, err := s.exec(ctx,
		`UPDATE activation_codes SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`,
		orNow(now).UnixNano(), id)
	if err != nil {
		return fmt.Errorf("store: revoke activation code %q: %w", id, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: activation code %q: %w", id, ErrNotFound)
	}
	return nil
}

// RevokeDeviceActivationCodes revokes every unused, unrevoked code of device.
func (s *SQLite) RevokeDeviceActivationCodes(ctx context.Context, device string, now time.Time) error {
	_, err := s.exec(ctx,
		`UPDATE activation_codes SET revoked_at = ?
		 WHERE device = ? AND used_at IS NULL AND revoked_at IS NULL`,
		orNow(now).UnixNano(), device)
	if err != nil {
		return fmt.Errorf("store: revoke activation codes of %q: %w", device, err)
	}
	return nil
}

// Refresh tokens.

// PutRefreshToken stores a new family member, creating the family (owned by
// t.Device) on its first token. An existing hash gives ErrConflict.
func (s *SQLite) PutRefreshToken(ctx context.Context, t RefreshToken) error {
	return s.tx(ctx, func(tx *txn) error { return putRefreshTokenTx(ctx, tx, t) })
}

func putRefreshTokenTx(ctx context.Context, tx *txn, t RefreshToken) error {
	if len(t.Hash) == 0 || t.Family == "" || t.ExpiresAt.IsZero() {
		return errors.New("store: refresh token needs a hash, a family and an expiry")
	}
	issued := orNow(t.IssuedAt)
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO families (id, device, created_at, cnf_x5t) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		t.Family, t.Device, issued.UnixNano(), t.Cnf); err != nil {
		return fmt.Errorf("store: put refresh token (family %q): %w", t.Family, err)
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO refresh_tokens (hash, family, device, username, origin, mra, issued_at, expires_at, rotated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		t.Hash, t.Family, t.Device, t.Username, t.Origin, b2i(t.MRA),
		issued.UnixNano(), t.ExpiresAt.UnixNano(), tn(t.RotatedAt))
	if err != nil {
		return fmt.Errorf("store: put refresh token (family %q): %w", t.Family, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrConflict)
	}
	return nil
}

// RotateRefreshToken marks the token with this hash rotated, exactly once,
// and returns it. Failures, checked in this order: ErrNotFound (zero token),
// ErrRevoked (family revoked), ErrAlreadyUsed (a replay), ErrExpired; all but
// ErrNotFound return the token, so the caller can act on its Family. When
// next is not nil its result is stored in the same transaction, so either
// both the rotation and the successor are committed or neither is.
//
// A Grace returned by next is recorded on the old token's row together with
// the successor's hash (see RedeemGrace). Rotating a token also drops the
// sealed response kept for its predecessor (the successor is in use, so the
// response was not lost) and any sealed response whose grace has ended.
func (s *SQLite) RotateRefreshToken(ctx context.Context, hash []byte, now time.Time, next func(old RefreshToken) (RefreshToken, Grace, error)) (RefreshToken, error) {
	now = orNow(now)
	var out RefreshToken
	err := s.tx(ctx, func(tx *txn) error {
		var t RefreshToken
		var issued, expires, rotated, famRevoked sql.NullInt64
		err := tx.QueryRowContext(ctx,
			`SELECT t.hash, t.family, t.device, t.username, t.origin, t.mra,
				t.issued_at, t.expires_at, t.rotated_at, f.revoked_at, f.cnf_x5t
			 FROM refresh_tokens t JOIN families f ON f.id = t.family
			 WHERE t.hash = ?`, hash).
			Scan(&t.Hash, &t.Family, &t.Device, &t.Username, &t.Origin, &t.MRA,
				&issued, &expires, &rotated, &famRevoked, &t.Cnf)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: refresh token: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: refresh token: %w", err)
		}
		t.IssuedAt, t.ExpiresAt, t.RotatedAt = nt(issued), nt(expires), nt(rotated)
		out = t
		switch {
		case famRevoked.Valid:
			return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrRevoked)
		case !t.RotatedAt.IsZero():
			return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrAlreadyUsed)
		case !now.Before(t.ExpiresAt):
			return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrExpired)
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE refresh_tokens SET rotated_at = ?
			 WHERE hash = ? AND rotated_at IS NULL AND expires_at > ?
			   AND NOT EXISTS (SELECT 1 FROM families f
			                   WHERE f.id = refresh_tokens.family AND f.revoked_at IS NOT NULL)`,
			now.UnixNano(), hash, now.UnixNano())
		if err != nil {
			return fmt.Errorf("store: rotate refresh token (family %q): %w", t.Family, err)
		}
		n, err := affected(res)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("store: refresh token (family %q): %w", t.Family, ErrAlreadyUsed)
		}
		out.RotatedAt = norm(now)
		if _, err := tx.ExecContext(ctx,
			`UPDATE refresh_tokens SET grace_sealed = NULL
			 WHERE grace_sealed IS NOT NULL AND (successor = ? OR grace_until <= ?)`,
			hash, now.UnixNano()); err != nil {
			return fmt.Errorf("store: rotate refresh token (family %q): %w", t.Family, err)
		}
		if next == nil {
			return nil
		}
		succ, grace, err := next(out)
		if err != nil {
			return err
		}
		if err := putRefreshTokenTx(ctx, tx, succ); err != nil {
			return err
		}
		var sealed any
		if !grace.Until.IsZero() && len(grace.Sealed) > 0 {
			sealed = grace.Sealed
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE refresh_tokens SET successor = ?, grace_sealed = ?, grace_until = ?, grace_from = ? WHERE hash = ?`,
			succ.Hash, sealed, tn(grace.Until), grace.From, hash); err != nil {
			return fmt.Errorf("store: rotate refresh token (family %q): %w", t.Family, err)
		}
		return nil
	})
	return out, err
}

// RedeemGrace: see Store. The sealed response is dropped once handed out.
func (s *SQLite) RedeemGrace(ctx context.Context, hash []byte, from string, now time.Time) ([]byte, error) {
	now = orNow(now)
	var sealed []byte
	err := s.tx(ctx, func(tx *txn) error {
		err := tx.QueryRowContext(ctx, `SELECT grace_sealed FROM refresh_tokens WHERE hash = ?`, hash).Scan(&sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: refresh grace: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: refresh grace: %w", err)
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE refresh_tokens SET grace_used_at = ?, grace_sealed = NULL
			 WHERE hash = ? AND rotated_at IS NOT NULL AND grace_sealed IS NOT NULL
			   AND grace_used_at IS NULL AND grace_until > ? AND grace_from = ?
			   AND NOT EXISTS (SELECT 1 FROM families f
			                   WHERE f.id = refresh_tokens.family AND f.revoked_at IS NOT NULL)
			   AND NOT EXISTS (SELECT 1 FROM refresh_tokens n
			                   WHERE n.hash = refresh_tokens.successor AND n.rotated_at IS NOT NULL)`,
			now.UnixNano(), hash, now.UnixNano(), from)
		if err != nil {
			return fmt.Errorf("store: refresh grace: %w", err)
		}
		n, err := affected(res)
		if err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("store: refresh grace: %w", ErrAlreadyUsed)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sealed, nil
}

// RevokeFamily revokes a refresh-token family (keeping the first revocation
// time). Revoking a family not seen yet records it as revoked, so the
// revocation sticks whatever order things happen in.
func (s *SQLite) RevokeFamily(ctx context.Context, family string, now time.Time) error {
	n := orNow(now).UnixNano()
	_, err := s.exec(ctx,
		`INSERT INTO families (id, device, created_at, revoked_at) VALUES (?, '', ?, ?)
		 ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(families.revoked_at, excluded.revoked_at)`,
		family, n, n)
	if err != nil {
		return fmt.Errorf("store: revoke family %q: %w", family, err)
	}
	if _, err := s.exec(ctx, `UPDATE refresh_tokens SET grace_sealed = NULL WHERE family = ? AND grace_sealed IS NOT NULL`, family); err != nil {
		return fmt.Errorf("store: revoke family %q: %w", family, err)
	}
	return nil
}

// RevokeDeviceFamilies revokes every family owned by device or holding a
// token of device.
func (s *SQLite) RevokeDeviceFamilies(ctx context.Context, device string, now time.Time) error {
	_, err := s.exec(ctx,
		`UPDATE families SET revoked_at = ?
		 WHERE revoked_at IS NULL
		   AND (device = ? OR id IN (SELECT family FROM refresh_tokens WHERE device = ?))`,
		orNow(now).UnixNano(), device, device)
	if err != nil {
		return fmt.Errorf("store: revoke families of %q: %w", device, err)
	}
	return nil
}

// RevokedFamilies lists families revoked after after, oldest revocation
// first. (No index on revoked_at yet: the families table is scanned; it
// holds only families with live tokens or revoked ones, Purge drops the
// rest.)
func (s *SQLite) RevokedFamilies(ctx context.Context, after time.Time, limit int) ([]RevokedFamily, error) {
	rows, err := s.query(ctx,
		`SELECT id, revoked_at FROM families WHERE revoked_at > ? ORDER BY revoked_at, id LIMIT ?`, tv(after), limit)
	if err != nil {
		return nil, fmt.Errorf("store: revoked families: %w", err)
	}
	defer rows.Close()
	var out []RevokedFamily
	for rows.Next() {
		var f RevokedFamily
		var at int64
		if err := rows.Scan(&f.ID, &at); err != nil {
			return nil, fmt.Errorf("store: revoked families: %w", err)
		}
		f.RevokedAt = time.Unix(0, at).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: revoked families: %w", err)
	}
	return out, nil
}

// Revoked access tokens.

// RevokeAccessToken records a revoked access token until expiresAt.
func (s *SQLite) RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error {
	if jti == "" {
		return errors.New("store: revoke access token: empty jti")
	}
	_, err := s.exec(ctx,
		`INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)
		 ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(revoked_access_tokens.expires_at, excluded.expires_at)`,
		jti, tv(expiresAt))
	if err != nil {
		return fmt.Errorf("store: revoke access token: %w", err)
	}
	return nil
}

// TokenRevocation checks an access token and its family in one statement.
func (s *SQLite) TokenRevocation(ctx context.Context, jti, family string) (Revocation, error) {
	var revoked int
	var familyRevoked sql.NullInt64 // NULL: no such family
	err := s.queryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = ?),
		        (SELECT revoked_at IS NOT NULL FROM families WHERE id = ?)`, jti, family).Scan(&revoked, &familyRevoked)
	if err != nil {
		return Revocation{}, fmt.Errorf("store: token revocation: %w", err)
	}
	r := Revocation{Revoked: revoked == 1}
	if family != "" {
		r.FamilyMissing = !familyRevoked.Valid
		r.FamilyRevoked = familyRevoked.Valid && familyRevoked.Int64 == 1
	}
	return r, nil
}

// Signing keys.

// PutSigningKey stores a new key; an existing KID gives ErrConflict.
// CreatedAt defaults to now.
func (s *SQLite) PutSigningKey(ctx context.Context, k SigningKey) error {
	if k.KID == "" || len(k.PrivatePEM) == 0 {
		return errors.New("store: signing key needs a KID and a private key")
	}
	res, err := s.exec(ctx,
		`INSERT INTO signing_keys (kid, alg, private_pem, created_at, retired_at)
		 VALUES (?, ?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING`,
		k.KID, k.Alg, k.PrivatePEM, orNow(k.CreatedAt).UnixNano(), tn(k.RetiredAt))
	if err != nil {
		return fmt.Errorf("store: put signing key %q: %w", k.KID, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: signing key %q: %w", k.KID, ErrConflict)
	}
	return nil
}

// ListSigningKeys returns every key, oldest first.
func (s *SQLite) ListSigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.query(ctx,
		`SELECT kid, alg, private_pem, created_at, retired_at FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	defer rows.Close()
	var out []SigningKey
	for rows.Next() {
		var k SigningKey
		var created, retired sql.NullInt64
		if err := rows.Scan(&k.KID, &k.Alg, &k.PrivatePEM, &created, &retired); err != nil {
			return nil, fmt.Errorf("store: list signing keys: %w", err)
		}
		k.CreatedAt, k.RetiredAt = nt(created), nt(retired)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list signing keys: %w", err)
	}
	return out, nil
}

// RetireSigningKey marks a key verification-only (keeping the first
// retirement time); an unknown KID gives ErrNotFound.
func (s *SQLite) RetireSigningKey(ctx context.Context, kid string, at time.Time) error {
	res, err := s.exec(ctx,
		`UPDATE signing_keys SET retired_at = MIN(COALESCE(retired_at, ?1), ?1) WHERE kid = ?2`,
		orNow(at).UnixNano(), kid)
	if err != nil {
		return fmt.Errorf("store: retire signing key %q: %w", kid, err)
	}
	n, err := affected(res)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("store: signing key %q: %w", kid, ErrNotFound)
	}
	return nil
}
