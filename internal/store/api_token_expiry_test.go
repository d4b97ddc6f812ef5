package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Issue 9 item 13: an API token stops at its expiry (ErrExpired, so the
// API can say why), and so does every token made from it.
func TestAPITokenExpiry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		must(t, s.PutAPIToken(ctx, APIToken{ID: "login", Hash: tokHash("login"), Owner: "alice", Login: true, CreatedAt: t0, ExpiresAt: t0.Add(12 * time.Hour)}))
		must(t, s.PutAPIToken(ctx, APIToken{ID: "script", Hash: tokHash("script"), Owner: "alice", Parent: "login", CreatedAt: t0, ExpiresAt: t0.Add(90 * 24 * time.Hour)}))
		must(t, s.PutAPIToken(ctx, APIToken{ID: "forever", Hash: tokHash("forever"), Owner: "admin", CreatedAt: t0}))

		got, err := s.APITokenByHash(ctx, tokHash("login"), t0.Add(12*time.Hour-time.Nanosecond))
		if err != nil || !got.ExpiresAt.Equal(t0.Add(12*time.Hour)) {
			t.Fatalf("login token before its expiry: %+v %v", got, err)
		}
		if _, err := s.APITokenByHash(ctx, tokHash("login"), t0.Add(12*time.Hour)); !errors.Is(err, ErrExpired) {
			t.Errorf("login token at its expiry: %v, want ErrExpired", err)
		}
		// The child lives on its own clock, but not past its parent.
		if _, err := s.APITokenByHash(ctx, tokHash("script"), t0.Add(time.Hour)); err != nil {
			t.Errorf("script token: %v", err)
		}
		if _, err := s.APITokenByHash(ctx, tokHash("script"), t0.Add(13*time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("script token whose parent expired: %v, want ErrNotFound", err)
		}
		if _, err := s.APITokenByHash(ctx, tokHash("forever"), t0.Add(10*365*24*time.Hour)); err != nil {
			t.Errorf("token without expiry: %v", err)
		}
		// An expired and revoked token is just revoked.
		must(t, s.RevokeAPIToken(ctx, "login", t0))
		if _, err := s.APITokenByHash(ctx, tokHash("login"), t0.Add(13*time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked expired token: %v, want ErrNotFound", err)
		}
		ts, err := s.ListAPITokens(ctx)
		must(t, err)
		for _, tk := range ts {
			if tk.ID == "script" && !tk.ExpiresAt.Equal(t0.Add(90*24*time.Hour)) {
				t.Errorf("listed expiry %v", tk.ExpiresAt)
			}
		}
	})
}

// Migration 5 gives tokens that existed before it their default lifetime,
// counted from the upgrade; revoked ones stay as they were. SQLite-only:
// an upgrade of a file an older SQLite build left; PostgreSQL's schema was
// born with expiring tokens.
func TestMigration5TokenExpiry(t *testing.T) {
	ctx := context.Background()
	old, path := openAtVersion(t, 4)
	for _, q := range []string{
		`INSERT INTO api_tokens (id, hash, name, owner, created_at, parent, login) VALUES ('boot', x'01', 'bootstrap', 'admin', 1, '', 0)`,
		`INSERT INTO api_tokens (id, hash, name, owner, created_at, parent, login) VALUES ('login', x'02', 'l', 'alice', 1, '', 1)`,
		`INSERT INTO api_tokens (id, hash, name, owner, created_at, parent, login) VALUES ('script', x'03', 's', 'alice', 1, 'login', 0)`,
		`INSERT INTO api_tokens (id, hash, name, owner, created_at, parent, login, revoked_at) VALUES ('gone', x'04', 'g', 'alice', 1, '', 1, 2)`,
	} {
		if _, err := old.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	must(t, old.Close())
	before := time.Now()
	s, err := Open(ctx, path)
	must(t, err)
	defer s.Close()
	ts, err := s.ListAPITokens(ctx)
	must(t, err)
	want := map[string]time.Duration{"boot": 30 * 24 * time.Hour, "login": 12 * time.Hour, "script": 90 * 24 * time.Hour}
	for _, tk := range ts {
		if tk.ID == "gone" {
			if !tk.ExpiresAt.IsZero() {
				t.Errorf("revoked token got an expiry")
			}
			continue
		}
		d := tk.ExpiresAt.Sub(before)
		if d < want[tk.ID]-2*time.Second || d > want[tk.ID]+time.Minute {
			t.Errorf("%s expires in %v after the upgrade, want %v", tk.ID, d, want[tk.ID])
		}
	}
}
