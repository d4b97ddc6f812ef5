package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the store on a PostgreSQL server that a cluster's core nodes
// share (issue 11): all of Store (checked below), with SQLite's semantics,
// proved by the one store test suite both engines run (forEachEngine) and
// by tests across several nodes on a real server. Its own migrations
// (pgMigrations) are applied at start under an advisory lock; the
// change feed is announced with LISTEN/NOTIFY.
//
// Times are stored as SQLite stores them, integer Unix nanoseconds, so the
// two engines' rows read back the same.
type Postgres struct {
	pool *pgxpool.Pool
}

var _ Store = (*Postgres)(nil)

// pgMigrations are the PostgreSQL schema's versions, applied in order at
// open, each once (schema_migrations), by one node at a time.
var pgMigrations = []string{
	1: `
CREATE TABLE registrations (
	aor        TEXT NOT NULL,
	contact    TEXT NOT NULL,
	device     TEXT NOT NULL,
	path       TEXT NOT NULL,
	call_id    TEXT NOT NULL,
	cseq       BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	mra        SMALLINT NOT NULL,
	edge       TEXT NOT NULL,
	node       TEXT NOT NULL,
	source     TEXT NOT NULL,
	updated_at BIGINT,
	PRIMARY KEY (aor, contact)
);
CREATE INDEX registrations_expires ON registrations (expires_at);`,
	2: `
CREATE TABLE activation_codes (
	id         TEXT PRIMARY KEY,
	device     TEXT NOT NULL,
	hash       BYTEA NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT,
	revoked_at BIGINT,
	locked_at  BIGINT
);
CREATE INDEX activation_codes_device ON activation_codes (device);
CREATE INDEX activation_codes_expires ON activation_codes (expires_at);

CREATE TABLE activation_guesses (
	device       TEXT PRIMARY KEY,
	failures     INTEGER NOT NULL,
	window_start BIGINT NOT NULL
);

CREATE TABLE families (
	id         TEXT PRIMARY KEY,
	device     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT
);
CREATE INDEX families_device ON families (device);

CREATE TABLE refresh_tokens (
	hash          BYTEA PRIMARY KEY,
	family        TEXT NOT NULL REFERENCES families (id) ON DELETE CASCADE,
	device        TEXT NOT NULL,
	username      TEXT NOT NULL,
	origin        TEXT NOT NULL,
	mra           SMALLINT NOT NULL,
	issued_at     BIGINT NOT NULL,
	expires_at    BIGINT NOT NULL,
	rotated_at    BIGINT,
	successor     BYTEA,
	grace_sealed  BYTEA,
	grace_until   BIGINT,
	grace_from    TEXT NOT NULL DEFAULT '',
	grace_used_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);`,
	3: `
CREATE TABLE revoked_access_tokens (
	jti        TEXT PRIMARY KEY,
	expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);`,
	4: `
CREATE TABLE secrets (
	name       TEXT PRIMARY KEY,
	value      BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
	kid         TEXT PRIMARY KEY,
	alg         TEXT NOT NULL,
	private_pem BYTEA NOT NULL,
	created_at  BIGINT NOT NULL,
	retired_at  BIGINT
);`,
	// 5: the change feed (SQLite's migration 8): triggers append a row
	// for every revoked access token and every revoked or deleted family
	// (the inventory's tables add theirs as they come), and NOTIFY
	// edgeway_changes wakes every listening node when it commits. Change
	// writers take one advisory lock until they commit, so ids become
	// visible in order: a reader that has seen id N never misses a smaller
	// one committed later.
	5: `
CREATE TABLE changes (
	id   BIGSERIAL PRIMARY KEY,
	kind TEXT NOT NULL,
	key  TEXT NOT NULL,
	at   BIGINT NOT NULL
);
CREATE INDEX changes_at ON changes (at);

CREATE FUNCTION edgeway_change(p_kind TEXT, p_key TEXT) RETURNS void AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(6872316419617283955);
	INSERT INTO changes (kind, key, at) VALUES (p_kind, p_key, (extract(epoch FROM clock_timestamp()) * 1e9)::BIGINT);
	PERFORM pg_notify('edgeway_changes', p_kind);
END $$ LANGUAGE plpgsql;

CREATE FUNCTION changes_token() RETURNS trigger AS $$
BEGIN
	PERFORM edgeway_change('token', NEW.jti);
	RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER changes_token AFTER INSERT ON revoked_access_tokens
	FOR EACH ROW EXECUTE FUNCTION changes_token();

CREATE FUNCTION changes_family() RETURNS trigger AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM edgeway_change('family', OLD.id);
	ELSIF TG_OP = 'INSERT' AND NEW.revoked_at IS NOT NULL THEN
		PERFORM edgeway_change('family', NEW.id);
	ELSIF TG_OP = 'UPDATE' AND OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
		PERFORM edgeway_change('family', NEW.id);
	END IF;
	RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER changes_family AFTER INSERT OR UPDATE OF revoked_at OR DELETE ON families
	FOR EACH ROW EXECUTE FUNCTION changes_family();`,
	// 6: security profiles and devices, what every REGISTER reads; any
	// change to them is a 'config' change of the feed.
	6: `
CREATE TABLE security_profiles (
	name           TEXT PRIMARY KEY,
	device_type    TEXT NOT NULL DEFAULT '',
	mode           TEXT NOT NULL,
	transport      TEXT NOT NULL,
	oauth          BOOLEAN NOT NULL,
	digest         BOOLEAN NOT NULL,
	tftp_encrypted BOOLEAN NOT NULL
);

CREATE TABLE devices (
	name               TEXT PRIMARY KEY,
	model              TEXT NOT NULL,
	line               TEXT NOT NULL,
	owner              TEXT NOT NULL,
	security_profile   TEXT NOT NULL,
	allow_mra          BOOLEAN NOT NULL,
	mra_service_domain TEXT NOT NULL,
	created_at         BIGINT
);
CREATE INDEX devices_line ON devices (line);

CREATE FUNCTION changes_config() RETURNS trigger AS $$
BEGIN
	PERFORM edgeway_change('config', TG_TABLE_NAME);
	RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER changes_security_profiles AFTER INSERT OR UPDATE OR DELETE ON security_profiles
	FOR EACH STATEMENT EXECUTE FUNCTION changes_config();
CREATE TRIGGER changes_devices AFTER INSERT OR UPDATE OR DELETE ON devices
	FOR EACH STATEMENT EXECUTE FUNCTION changes_config();`,
	// 7: parameters, users, Expressway-C entries and the names edges
	// reported (S-12 "Find"); parameters and entries are 'config' changes.
	7: `
CREATE TABLE params (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE users (
	username      TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at    BIGINT
);

CREATE TABLE expressways (
	id          BIGSERIAL PRIMARY KEY,
	address     TEXT NOT NULL,
	description TEXT NOT NULL,
	names       TEXT NOT NULL,
	domains     TEXT NOT NULL
);

CREATE TABLE reported_names (
	name       TEXT PRIMARY KEY,
	address    TEXT NOT NULL,
	first_seen BIGINT NOT NULL,
	last_seen  BIGINT NOT NULL
);

CREATE TRIGGER changes_params AFTER INSERT OR UPDATE OR DELETE ON params
	FOR EACH STATEMENT EXECUTE FUNCTION changes_config();
CREATE TRIGGER changes_expressways AFTER INSERT OR UPDATE OR DELETE ON expressways
	FOR EACH STATEMENT EXECUTE FUNCTION changes_config();`,
	// 8: administration: administrators, their API tokens (with the chain
	// of tokens that made them), core nodes, trust stores and the audit log.
	8: `
CREATE TABLE admins (
	username      TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	created_at    BIGINT
);

CREATE TABLE api_tokens (
	id         TEXT PRIMARY KEY,
	hash       BYTEA NOT NULL UNIQUE,
	name       TEXT NOT NULL,
	owner      TEXT NOT NULL,
	parent     TEXT NOT NULL DEFAULT '',
	login      BOOLEAN NOT NULL DEFAULT false,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT,
	last_used  BIGINT,
	expires_at BIGINT
);
CREATE INDEX api_tokens_parent ON api_tokens (parent);
CREATE INDEX api_tokens_owner ON api_tokens (owner);

CREATE TABLE nodes (
	name                       TEXT PRIMARY KEY,
	role                       TEXT NOT NULL,
	phone_oauth_port           INTEGER NOT NULL,
	mra_port                   INTEGER NOT NULL,
	running_mode               TEXT NOT NULL,
	restarted_at               BIGINT,
	last_seen                  BIGINT,
	listening_phone_oauth_port INTEGER NOT NULL DEFAULT 0,
	listening_mra_port         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE trust_certs (
	store       TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	pem         BYTEA NOT NULL,
	subject     TEXT NOT NULL,
	issuer      TEXT NOT NULL,
	not_after   BIGINT,
	added_at    BIGINT NOT NULL,
	PRIMARY KEY (store, fingerprint)
);
CREATE INDEX trust_certs_added ON trust_certs (added_at);

CREATE TABLE audit (
	id     BIGSERIAL PRIMARY KEY,
	at     BIGINT NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);`,
	// 9: one 'config' change per row changed, as SQLite's triggers record
	// them. The statement triggers of 6 and 7 recorded two for every
	// upsert (PostgreSQL fires both the INSERT and the UPDATE statement
	// triggers of an INSERT … ON CONFLICT DO UPDATE) and one for a
	// statement that changed nothing, so every node reloaded for nothing.
	9: `
DROP TRIGGER changes_security_profiles ON security_profiles;
DROP TRIGGER changes_devices ON devices;
DROP TRIGGER changes_params ON params;
DROP TRIGGER changes_expressways ON expressways;
CREATE TRIGGER changes_security_profiles AFTER INSERT OR UPDATE OR DELETE ON security_profiles
	FOR EACH ROW EXECUTE FUNCTION changes_config();
CREATE TRIGGER changes_devices AFTER INSERT OR UPDATE OR DELETE ON devices
	FOR EACH ROW EXECUTE FUNCTION changes_config();
CREATE TRIGGER changes_params AFTER INSERT OR UPDATE OR DELETE ON params
	FOR EACH ROW EXECUTE FUNCTION changes_config();
CREATE TRIGGER changes_expressways AFTER INSERT OR UPDATE OR DELETE ON expressways
	FOR EACH ROW EXECUTE FUNCTION changes_config();`,
	// 10: SQLite's 9: certificate-bound tokens (RFC 8705).
	10: `
ALTER TABLE security_profiles ADD COLUMN require_bound_tokens BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE families ADD COLUMN cnf_x5t TEXT NOT NULL DEFAULT '';`,
	// 11: the device authorization grant (RFC 8628): SQLite's 10.
	11: `
CREATE TABLE device_codes (
	hash        BYTEA PRIMARY KEY,
	user_code   TEXT NOT NULL UNIQUE,
	device      TEXT NOT NULL,
	scope       TEXT NOT NULL,
	mra         SMALLINT NOT NULL,
	edge        TEXT NOT NULL,
	source      TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	interval_ns BIGINT NOT NULL,
	last_poll   BIGINT,
	status      TEXT NOT NULL,
	decided_by  TEXT NOT NULL DEFAULT '',
	decided_at  BIGINT,
	redeemed_at BIGINT
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
CREATE INDEX device_codes_device ON device_codes (device);`,
}

// pgMigrationLock is the advisory lock key that serialises migrations when
// several nodes start at once.
const pgMigrationLock = 0x656467657761 // "edgewa"

// OpenPostgres connects to the server at url (postgres://…) and migrates
// its schema.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err)
	}
	p := &Postgres{pool: pool}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// Close closes the connections.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

func (p *Postgres) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgMigrationLock)); err != nil {
			return fmt.Errorf("store: postgres: migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("store: postgres: %w", err)
		}
		for v := 1; v < len(pgMigrations); v++ {
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, v).Scan(&done); err != nil {
				return fmt.Errorf("store: postgres: migration %d: %w", v, err)
			}
			if done || pgMigrations[v] == "" { // "": a reserved number
				continue
			}
			if _, err := tx.Exec(ctx, pgMigrations[v]); err != nil {
				return fmt.Errorf("store: postgres: migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v, time.Now().UnixNano()); err != nil {
				return fmt.Errorf("store: postgres: migration %d: %w", v, err)
			}
		}
		// A database a newer build migrated is refused rather than misread
		// (or written to in a way that build does not expect).
		var top int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&top); err != nil {
			return fmt.Errorf("store: postgres: migrate: %w", err)
		}
		if newest := len(pgMigrations) - 1; top > newest {
			return fmt.Errorf("store: postgres: database schema version %d is newer than this build (%d)", top, newest)
		}
		return nil
	})
}

// SchemaVersion is the newest migration applied.
func (p *Postgres) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := p.pool.QueryRow(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: postgres: schema version: %w", err)
	}
	return int(v.Int64), nil
}

const pgPutRegistrationSQL = `INSERT INTO registrations (aor, contact, device, path, call_id, cseq, expires_at, mra, edge, node, source, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		 ON CONFLICT (aor, contact) DO UPDATE SET
			device = excluded.device, path = excluded.path, call_id = excluded.call_id,
			cseq = excluded.cseq, expires_at = excluded.expires_at, mra = excluded.mra,
			edge = excluded.edge, node = excluded.node, source = excluded.source,
			updated_at = excluded.updated_at`

// ApplyRegistrations is SQLite.ApplyRegistrations on PostgreSQL: one
// transaction, every delete then every put, sent as one batch (one round
// trip for the whole group commit).
func (p *Postgres) ApplyRegistrations(ctx context.Context, puts []Registration, deletes []RegistrationKey) error {
	if len(puts) == 0 && len(deletes) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, k := range deletes {
		if k.Contact == "" {
			b.Queue(`DELETE FROM registrations WHERE aor = $1`, k.AOR)
		} else {
			b.Queue(`DELETE FROM registrations WHERE aor = $1 AND contact = $2`, k.AOR, k.Contact)
		}
	}
	for _, r := range puts {
		a, err := registrationArgs(r)
		if err != nil {
			return err
		}
		b.Queue(pgPutRegistrationSQL, a...)
	}
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("store: apply registrations: %w", err)
		}
		return nil
	})
}

// Registrations is SQLite.Registrations on PostgreSQL.
func (p *Postgres) Registrations(ctx context.Context, aor string, now time.Time) ([]Registration, error) {
	q := `SELECT aor, contact, device, path, call_id, cseq, expires_at, mra, edge, node, source, updated_at
	      FROM registrations WHERE expires_at > $1`
	args := []any{orNow(now).UnixNano()}
	if aor != "" {
		q += ` AND aor = $2`
		args = append(args, aor)
	}
	q += ` ORDER BY aor, contact`
	rows, err := p.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: registrations: %w", err)
	}
	defer rows.Close()
	var out []Registration
	for rows.Next() {
		var r Registration
		var path string
		var cseq, expires int64
		var mra int16
		var updated sql.NullInt64
		if err := rows.Scan(&r.AOR, &r.Contact, &r.Device, &path, &r.CallID, &cseq, &expires,
			&mra, &r.Edge, &r.Node, &r.Source, &updated); err != nil {
			return nil, fmt.Errorf("store: registrations: %w", err)
		}
		if r.Path, err = parseList(path); err != nil {
			return nil, err
		}
		r.CSeq, r.MRA = uint32(cseq), mra != 0
		r.ExpiresAt, r.UpdatedAt = nt(sql.NullInt64{Int64: expires, Valid: true}), nt(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: registrations: %w", err)
	}
	return out, nil
}
