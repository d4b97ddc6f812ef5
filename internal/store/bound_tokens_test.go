package store

import (
	"context"
	"testing"
	"time"
)

// Issue 15 (RFC 8705): a security profile may require certificate-bound
// tokens, and a refresh-token family remembers its certificate's
// thumbprint through every rotation; a bearer family has none.
func TestBoundTokensOnBothEngines(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		must(t, s.PutSecurityProfile(ctx, SecurityProfile{Name: "bound", Mode: "encrypted", Transport: "TLS", OAuth: true, RequireBoundTokens: true}))
		must(t, s.PutSecurityProfile(ctx, SecurityProfile{Name: "bearer", Mode: "encrypted", Transport: "TLS", OAuth: true}))
		p, err := s.GetSecurityProfile(ctx, "bound")
		must(t, err)
		if !p.RequireBoundTokens {
			t.Errorf("profile bound: RequireBoundTokens not kept")
		}
		all, err := s.ListSecurityProfiles(ctx)
		must(t, err)
		for _, p := range all {
			if p.RequireBoundTokens != (p.Name == "bound") {
				t.Errorf("listed profile %s: RequireBoundTokens = %v", p.Name, p.RequireBoundTokens)
			}
		}
		// Unticking it is kept too (the upsert updates the column).
		must(t, s.PutSecurityProfile(ctx, SecurityProfile{Name: "bound", Mode: "encrypted", Transport: "TLS", OAuth: true}))
		if p, _ := s.GetSecurityProfile(ctx, "bound"); p.RequireBoundTokens {
			t.Errorf("profile bound: RequireBoundTokens still set after it was cleared")
		}

		now := time.Now()
		const thumb = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
		for fam, cnf := range map[string]string{"fam-bound": thumb, "fam-bearer": ""} {
			must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: tokHash(fam + "-1"), Family: fam, Device: "SEP1", Origin: "activation_code",
				IssuedAt: now, ExpiresAt: now.Add(time.Hour), Cnf: cnf}))
			// The successor is stored without Cnf: the family's own is kept.
			old, err := s.RotateRefreshToken(ctx, tokHash(fam+"-1"), now, func(o RefreshToken) (RefreshToken, Grace, error) {
				n := o
				n.Hash, n.RotatedAt, n.Cnf = tokHash(fam+"-2"), time.Time{}, ""
				return n, Grace{}, nil
			})
			must(t, err)
			if old.Cnf != cnf {
				t.Errorf("%s: rotated token's Cnf = %q, want %q", fam, old.Cnf, cnf)
			}
			next, err := s.RotateRefreshToken(ctx, tokHash(fam+"-2"), now, nil)
			must(t, err)
			if next.Cnf != cnf {
				t.Errorf("%s: successor's Cnf = %q, want the family's %q", fam, next.Cnf, cnf)
			}
		}
	})
}

// SQLite-only (the upgrade history of a file): migration 9 gives
// existing profiles and families the defaults — not required, unbound.
func TestMigration9BoundTokens(t *testing.T) {
	ctx := context.Background()
	old, path := openAtVersion(t, 8)
	for _, q := range []string{
		`INSERT INTO security_profiles (name, mode, transport, oauth, digest, tftp_encrypted) VALUES ('p', 'encrypted', 'TLS', 1, 0, 0)`,
		`INSERT INTO families (id, device, created_at) VALUES ('f', 'SEP1', 1)`,
		`INSERT INTO refresh_tokens (hash, family, device, username, origin, mra, issued_at, expires_at) VALUES (x'01', 'f', 'SEP1', '', 'activation_code', 1, 1, 9000000000000000000)`,
	} {
		if _, err := old.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	must(t, old.Close())
	s, err := Open(ctx, path)
	must(t, err)
	defer s.Close()
	p, err := s.GetSecurityProfile(ctx, "p")
	must(t, err)
	if p.RequireBoundTokens {
		t.Errorf("an existing profile requires bound tokens after the upgrade")
	}
	rt, err := s.RotateRefreshToken(ctx, []byte{1}, time.Now(), nil)
	must(t, err)
	if rt.Cnf != "" {
		t.Errorf("an existing family is bound after the upgrade: %q", rt.Cnf)
	}
}
