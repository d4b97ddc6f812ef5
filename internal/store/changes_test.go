package store

import (
	"context"
	"testing"
	"time"
)

// TestChangeFeed: the triggers of migration 8 record every access-token
// revocation, every family revoked (whether seen before or not) or
// deleted, and every change to what a REGISTER reads; Changes pages
// after a cursor.
func TestChangeFeed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		start, err := s.ChangeCursor(ctx)
		must(t, err)
		must(t, s.RevokeAccessToken(ctx, "jti-1", t0.Add(2*time.Hour)))
		must(t, s.RevokeFamily(ctx, "fam-unseen", t0))
		must(t, s.RevokeFamily(ctx, "fam-unseen", t0)) // already revoked: no new change
		must(t, s.SetParam(ctx, "x", "y"))
		must(t, s.PutSecurityProfile(ctx, SecurityProfile{Name: "p", Mode: "encrypted", Transport: "TLS", OAuth: true}))
		must(t, s.Purge(ctx, t0.Add(time.Hour))) // deletes fam-unseen: it has no tokens
		got, err := s.Changes(ctx, start, 100)
		must(t, err)
		want := []Change{{Kind: ChangeToken, Key: "jti-1"}, {Kind: ChangeFamily, Key: "fam-unseen"},
			{Kind: ChangeConfig, Key: "params"}, {Kind: ChangeConfig, Key: "security_profiles"}, {Kind: ChangeFamily, Key: "fam-unseen"}}
		if len(got) != len(want) {
			t.Fatalf("changes = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i].Kind != want[i].Kind || got[i].Key != want[i].Key || (i > 0 && got[i].ID <= got[i-1].ID) {
				t.Fatalf("change %d = %+v, want %+v (ids rising)", i, got[i], want[i])
			}
		}
		page, err := s.Changes(ctx, got[1].ID, 2)
		must(t, err)
		if len(page) != 2 || page[0].ID != got[2].ID || page[1].ID != got[3].ID {
			t.Fatalf("page after %d = %+v", got[1].ID, page)
		}
		if c, err := s.ChangeCursor(ctx); err != nil || c != got[len(got)-1].ID {
			t.Fatalf("ChangeCursor = %d, %v; want %d", c, err, got[len(got)-1].ID)
		}
		jtis, err := s.RevokedAccessTokens(ctx, t0)
		must(t, err)
		if len(jtis) != 1 || jtis[0] != "jti-1" {
			t.Fatalf("RevokedAccessTokens = %v", jtis)
		}
		if jtis, _ = s.RevokedAccessTokens(ctx, t0.Add(2*time.Hour)); len(jtis) != 0 {
			t.Fatalf("RevokedAccessTokens after expiry = %v", jtis)
		}
	})
}
