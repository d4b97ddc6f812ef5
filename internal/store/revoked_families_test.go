package store

import (
	"context"
	"testing"
	"time"
)

// RevokedFamilies lists revocations after a time, oldest first, bounded by
// limit; the first revocation time of a family is kept.
func TestRevokedFamilies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		s := db.open()
		ctx := context.Background()
		start := time.Unix(1_700_000_000, 0)
		for i, id := range []string{"famA", "famB", "famC"} {
			must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: []byte("h" + id), Family: id, Device: "SEP" + id, Origin: "activation_code",
				IssuedAt: start, ExpiresAt: start.Add(time.Hour)}))
			if i < 2 {
				must(t, s.RevokeFamily(ctx, id, start.Add(time.Duration(i+1)*time.Minute)))
			}
		}
		must(t, s.RevokeFamily(ctx, "famA", start.Add(time.Hour))) // a second revocation keeps the first time
		got, err := s.RevokedFamilies(ctx, start, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "famA" || !got[0].RevokedAt.Equal(start.Add(time.Minute)) || got[1].ID != "famB" {
			t.Fatalf("RevokedFamilies = %+v", got)
		}
		if got, _ := s.RevokedFamilies(ctx, start.Add(time.Minute), 10); len(got) != 1 || got[0].ID != "famB" {
			t.Errorf("after the first: %+v", got)
		}
		if got, _ := s.RevokedFamilies(ctx, start, 1); len(got) != 1 || got[0].ID != "famA" {
			t.Errorf("limit 1: %+v", got)
		}
		must(t, s.RevokeDeviceFamilies(ctx, "SEPfamC", start.Add(3*time.Minute)))
		if got, _ := s.RevokedFamilies(ctx, start.Add(2*time.Minute), 10); len(got) != 1 || got[0].ID != "famC" {
			t.Errorf("after a device revocation: %+v", got)
		}
	})
}
