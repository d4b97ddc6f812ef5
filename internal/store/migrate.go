package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrations is the ordered schema history. Migration i (0-based) is schema
// version i+1. Never edit or reorder an entry that has shipped: append a new
// one instead.
var migrations = []string{
	// 1: initial schema. Times are integer Unix nanoseconds (UTC), NULL
	// when unset; lists are JSON text.
	`
CREATE TABLE params (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE secrets (
	name       TEXT PRIMARY KEY,
	value      BLOB NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE security_profiles (
	name           TEXT PRIMARY KEY,
	mode           TEXT NOT NULL,
	transport      TEXT NOT NULL,
	oauth          INTEGER NOT NULL,
	digest         INTEGER NOT NULL,
	tftp_encrypted INTEGER NOT NULL
);

CREATE TABLE devices (
	name               TEXT PRIMARY KEY,
	model              TEXT NOT NULL,
	line               TEXT NOT NULL,
	owner              TEXT NOT NULL,
	security_profile   TEXT NOT NULL,
	allow_mra          INTEGER NOT NULL,
	mra_service_domain TEXT NOT NULL,
	created_at         INTEGER
);
CREATE INDEX devices_line ON devices (line);

CREATE TABLE users (
	username      TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at    INTEGER
);

CREATE TABLE expressways (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	address     TEXT NOT NULL,
	description TEXT NOT NULL,
	names       TEXT NOT NULL,
	domains     TEXT NOT NULL
);

CREATE TABLE reported_names (
	name       TEXT PRIMARY KEY,
	address    TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
);

CREATE TABLE activation_codes (
	id         TEXT PRIMARY KEY,
	device     TEXT NOT NULL,
	hash       BLOB NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER,
	revoked_at INTEGER
);
CREATE INDEX activation_codes_device ON activation_codes (device);
CREATE INDEX activation_codes_expires ON activation_codes (expires_at);

CREATE TABLE families (
	id         TEXT PRIMARY KEY,
	device     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);
CREATE INDEX families_device ON families (device);

CREATE TABLE refresh_tokens (
	hash       BLOB PRIMARY KEY,
	family     TEXT NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	device     TEXT NOT NULL,
	username   TEXT NOT NULL,
	origin     TEXT NOT NULL,
	mra        INTEGER NOT NULL,
	issued_at  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	rotated_at INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

CREATE TABLE revoked_access_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);

CREATE TABLE signing_keys (
	kid         TEXT PRIMARY KEY,
	alg         TEXT NOT NULL,
	private_pem BLOB NOT NULL,
	created_at  INTEGER NOT NULL,
	retired_at  INTEGER
);

CREATE TABLE registrations (
	aor        TEXT NOT NULL,
	contact    TEXT NOT NULL,
	device     TEXT NOT NULL,
	path       TEXT NOT NULL,
	call_id    TEXT NOT NULL,
	cseq       INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	mra        INTEGER NOT NULL,
	edge       TEXT NOT NULL,
	node       TEXT NOT NULL,
	source     TEXT NOT NULL,
	updated_at INTEGER,
	PRIMARY KEY (aor, contact)
);
CREATE INDEX registrations_expires ON registrations (expires_at);

CREATE TABLE audit (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	at     INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);
`,

	// 2: device type of security profiles, admin accounts and API tokens,
	// core nodes, uploaded trust-store certificates.
	`
ALTER TABLE security_profiles ADD COLUMN device_type TEXT NOT NULL DEFAULT '';

CREATE TABLE admins (
	username      TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at    INTEGER
);

CREATE TABLE api_tokens (
	id         TEXT PRIMARY KEY,
	hash       BLOB NOT NULL UNIQUE,
	name       TEXT NOT NULL,
	owner      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER,
	last_used  INTEGER
);

CREATE TABLE nodes (
	name             TEXT PRIMARY KEY,
	role             TEXT NOT NULL,
	phone_oauth_port INTEGER NOT NULL,
	mra_port         INTEGER NOT NULL,
	running_mode     TEXT NOT NULL,
	restarted_at     INTEGER,
	last_seen        INTEGER
);

CREATE TABLE trust_certs (
	store       TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	pem         BLOB NOT NULL,
	subject     TEXT NOT NULL,
	issuer      TEXT NOT NULL,
	not_after   INTEGER,
	added_at    INTEGER NOT NULL,
	PRIMARY KEY (store, fingerprint)
);
CREATE INDEX trust_certs_added ON trust_certs (added_at);
`,
	// 3: admin API tokens know where they came from: parent is the token
	// that created this one ('' for a password login or the bootstrap
	// file), login marks tokens issued by a password login.
	`
ALTER TABLE api_tokens ADD COLUMN parent TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN login INTEGER NOT NULL DEFAULT 0;
CREATE INDEX api_tokens_parent ON api_tokens (parent);
CREATE INDEX api_tokens_owner ON api_tokens (owner);
`,
	// 4: the SIP ports a node's listeners are bound to (0 before its first
	// start), beside the ports configured for it (S-11).
	`
ALTER TABLE nodes ADD COLUMN listening_phone_oauth_port INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN listening_mra_port INTEGER NOT NULL DEFAULT 0;
`,
	// 5: admin API tokens expire (issue 9 item 13; NULL: never). Tokens
	// that existed before get the default lifetimes of core/admin_auth.go
	// counted from the upgrade, so no running script is cut off without
	// notice: 12 h for a login, 90 days for a token made through the API,
	// 30 days for a bootstrap token.
	`
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
UPDATE api_tokens SET expires_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 +
	CASE WHEN login = 1 THEN 43200000000000
	     WHEN parent <> '' THEN 7776000000000000
	     ELSE 2592000000000000 END
 WHERE revoked_at IS NULL;
`,
	// 6: the refresh grace (issue 9 item 15, RFC 9700 §4.14.2): a rotated
	// token remembers its successor (hash), the response that carried it
	// (sealed by the core), until when and for whom a lost response may be
	// fetched again, and when it was.
	`
ALTER TABLE refresh_tokens ADD COLUMN successor BLOB;
ALTER TABLE refresh_tokens ADD COLUMN grace_sealed BLOB;
ALTER TABLE refresh_tokens ADD COLUMN grace_until INTEGER;
ALTER TABLE refresh_tokens ADD COLUMN grace_from TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN grace_used_at INTEGER;
CREATE INDEX refresh_tokens_successor ON refresh_tokens (successor) WHERE successor IS NOT NULL;
CREATE INDEX refresh_tokens_grace ON refresh_tokens (grace_until) WHERE grace_sealed IS NOT NULL;
`,
	// 7: the per-device budget of wrong activation-code guesses (issue 9):
	// locked_at marks a code locked after too many wrong guesses on its
	// device (only a newly issued code replaces it), and
	// activation_guesses counts a device's wrong guesses in the current
	// window.
	`
ALTER TABLE activation_codes ADD COLUMN locked_at INTEGER;

CREATE TABLE activation_guesses (
	device       TEXT PRIMARY KEY,
	failures     INTEGER NOT NULL,
	window_start INTEGER NOT NULL
);
`,
	// 8: the change feed (issue 10): every revocation of an access token,
	// every revoked or deleted grant family and every change to what a
	// REGISTER reads (devices, security profiles, parameters,
	// Expressway-C entries) appends a row, written by triggers in the
	// transaction that made the change, so no writer can forget it. Each
	// core node reads the rows after the last id it saw (see
	// Store.Changes) and keeps its in-memory state current from them.
	`
CREATE TABLE changes (
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	key  TEXT NOT NULL,
	at   INTEGER NOT NULL
);
CREATE INDEX changes_at ON changes (at);
CREATE TRIGGER changes_token AFTER INSERT ON revoked_access_tokens BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('token', NEW.jti, CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_family_insert AFTER INSERT ON families WHEN NEW.revoked_at IS NOT NULL BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('family', NEW.id, CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_family_revoke AFTER UPDATE OF revoked_at ON families
	WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('family', NEW.id, CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_family_delete AFTER DELETE ON families BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('family', OLD.id, CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_params_insert AFTER INSERT ON params BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'params', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_params_update AFTER UPDATE ON params BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'params', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_params_delete AFTER DELETE ON params BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'params', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_security_profiles_insert AFTER INSERT ON security_profiles BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'security_profiles', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_security_profiles_update AFTER UPDATE ON security_profiles BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'security_profiles', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_security_profiles_delete AFTER DELETE ON security_profiles BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'security_profiles', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_devices_insert AFTER INSERT ON devices BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'devices', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_devices_update AFTER UPDATE ON devices BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'devices', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_devices_delete AFTER DELETE ON devices BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'devices', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_expressways_insert AFTER INSERT ON expressways BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'expressways', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_expressways_update AFTER UPDATE ON expressways BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'expressways', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
CREATE TRIGGER changes_expressways_delete AFTER DELETE ON expressways BEGIN
	INSERT INTO changes (kind, key, at) VALUES ('config', 'expressways', CAST(strftime('%s', 'now') AS INTEGER) * 1000000000);
END;
`,
	// 9: certificate-bound tokens (RFC 8705, issue 15): a security profile
	// may require them of its devices, and a refresh-token family
	// remembers the x5t#S256 thumbprint of the client certificate it was
	// started with ('' for a bearer family), so a refresh from another
	// certificate is refused and the binding is kept.
	`
ALTER TABLE security_profiles ADD COLUMN require_bound_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE families ADD COLUMN cnf_x5t TEXT NOT NULL DEFAULT '';
`,
	// 10: the device authorization grant (RFC 8628, issue 15): one row per
	// device_authorization request, keyed by the SHA-256 of its device_code
	// (the code itself is never stored, as activation codes are not); the
	// user_code an administrator approves or denies; the poll state
	// (last_poll, interval: RFC 8628 §3.5 slow_down) and redeemed_at, set
	// once, in the transaction that stores the family's first refresh
	// token.
	`
CREATE TABLE device_codes (
	hash        BLOB PRIMARY KEY,
	user_code   TEXT NOT NULL UNIQUE,
	device      TEXT NOT NULL,
	scope       TEXT NOT NULL,
	mra         INTEGER NOT NULL,
	edge        TEXT NOT NULL,
	source      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	interval_ns INTEGER NOT NULL,
	last_poll   INTEGER,
	status      TEXT NOT NULL,
	decided_by  TEXT NOT NULL DEFAULT '',
	decided_at  INTEGER,
	redeemed_at INTEGER
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
CREATE INDEX device_codes_device ON device_codes (device);
`,
}

// migrate brings the schema up to date. Each migration runs in its own
// IMMEDIATE transaction that re-checks schema_migrations first, so several
// processes opening the same new file at once apply each migration exactly
// once, and reopening a migrated file changes nothing.
func (s *SQLite) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, len(migrations))
}

// migrateTo applies the migrations up to schema version target (tests use
// it to build a database as an older build left it).
func (s *SQLite) migrateTo(ctx context.Context, target int) error {
	if target < 0 || target > len(migrations) {
		return fmt.Errorf("store: migrate: no schema version %d", target)
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for i, m := range migrations[:target] {
		version := i + 1
		if m == "" {
			continue // a reserved number (see migrations)
		}
		err := s.tx(ctx, func(tx *txn) error {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM schema_migrations WHERE version = ?`, version).Scan(&one)
			if err == nil {
				return nil // already applied
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := tx.Tx.ExecContext(ctx, m); err != nil { // many statements: not one to prepare
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				version, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %d: %w", version, err)
		}
	}
	// A database written by a newer build is refused rather than misread.
	var top sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&top); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if top.Int64 > int64(len(migrations)) {
		return fmt.Errorf("store: database schema version %d is newer than this build (%d)", top.Int64, len(migrations))
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return int(v.Int64), nil
}
