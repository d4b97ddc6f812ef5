package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// rotateWithGrace rotates old to succ recording a grace for from until
// t0+grace.
func rotateWithGrace(t *testing.T, s Store, old, succ string, at time.Time, grace time.Duration, from string) {
	t.Helper()
	_, err := s.RotateRefreshToken(context.Background(), tokHash(old), at, func(o RefreshToken) (RefreshToken, Grace, error) {
		n := o
		n.Hash, n.RotatedAt, n.IssuedAt, n.ExpiresAt = tokHash(succ), time.Time{}, at, at.Add(time.Hour)
		var g Grace
		if grace > 0 {
			g = Grace{Until: at.Add(grace), From: from, Sealed: []byte("sealed " + succ)}
		}
		return n, g, nil
	})
	must(t, err)
}

// Issue 9 item 15: the sealed successor response comes back once, to the
// same caller, within the grace, while the successor is unused and the
// family alive; every other retry is a replay (ErrAlreadyUsed).
func TestRedeemGrace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		put := func(h, fam string) {
			must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: tokHash(h), Family: fam, Device: "SEP1", Origin: "activation_code", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		}
		replay := func(what, h, from string, at time.Time) {
			t.Helper()
			if b, err := s.RedeemGrace(ctx, tokHash(h), from, at); !errors.Is(err, ErrAlreadyUsed) {
				t.Errorf("%s: %q %v, want ErrAlreadyUsed", what, b, err)
			}
		}

		// Within the grace, same caller: once, then a replay.
		put("a1", "famA")
		rotateWithGrace(t, s, "a1", "a2", t0, 30*time.Second, "mra|192.0.2.1")
		replay("different caller", "a1", "mra|192.0.2.9", t0.Add(time.Second))
		replay("same IP, other path", "a1", "onprem|192.0.2.1", t0.Add(time.Second))
		// Another handle on the same database (another core node) sees the grace.
		s2 := db.open()
		b, err := s2.RedeemGrace(ctx, tokHash("a1"), "mra|192.0.2.1", t0.Add(29*time.Second))
		if err != nil || !bytes.Equal(b, []byte("sealed a2")) {
			t.Fatalf("retry within the grace: %q %v", b, err)
		}
		replay("second retry", "a1", "mra|192.0.2.1", t0.Add(29*time.Second))

		// After the grace.
		put("b1", "famB")
		rotateWithGrace(t, s, "b1", "b2", t0, 30*time.Second, "mra|192.0.2.1")
		replay("at the end of the grace", "b1", "mra|192.0.2.1", t0.Add(30*time.Second))

		// The successor already used: the response was not lost.
		put("c1", "famC")
		rotateWithGrace(t, s, "c1", "c2", t0, 30*time.Second, "mra|192.0.2.1")
		rotateWithGrace(t, s, "c2", "c3", t0.Add(time.Second), 30*time.Second, "mra|192.0.2.1")
		replay("successor used", "c1", "mra|192.0.2.1", t0.Add(2*time.Second))

		// Family revoked.
		put("d1", "famD")
		rotateWithGrace(t, s, "d1", "d2", t0, 30*time.Second, "mra|192.0.2.1")
		must(t, s.RevokeFamily(ctx, "famD", t0))
		replay("family revoked", "d1", "mra|192.0.2.1", t0.Add(time.Second))

		// No grace recorded (grace 0).
		put("e1", "famE")
		rotateWithGrace(t, s, "e1", "e2", t0, 0, "")
		replay("no grace", "e1", "", t0)
		replay("no grace, any caller", "e1", "mra|192.0.2.1", t0)

		// Never rotated, unknown.
		put("f1", "famF")
		replay("current token", "f1", "", t0)
		if _, err := s.RedeemGrace(ctx, tokHash("nope"), "x", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown token: %v", err)
		}

		// Nothing sealed is left behind once a grace is over or used.
		if left := rawCount(t, s, `SELECT COUNT(*) FROM refresh_tokens WHERE grace_sealed IS NOT NULL AND hash IN (?, ?, ?)`,
			tokHash("a1"), tokHash("c1"), tokHash("d1")); left != 0 {
			t.Errorf("%d sealed responses kept after use, successor rotation or revocation", left)
		}
		put("g1", "famG")
		rotateWithGrace(t, s, "g1", "g2", t0.Add(time.Minute), 30*time.Second, "x") // sweeps b1's ended grace
		if left := rawCount(t, s, `SELECT COUNT(*) FROM refresh_tokens WHERE grace_sealed IS NOT NULL AND hash = ?`, tokHash("b1")); left != 0 {
			t.Error("a sealed response outlived its grace past the next rotation")
		}
	})
}

// Two simultaneous retries, through two handles: exactly one gets the
// successor.
func TestRedeemGraceRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, s2 := db.open(), db.open()
		must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: tokHash("r1"), Family: "f", Device: "d", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		rotateWithGrace(t, s, "r1", "r2", t0, 30*time.Second, "me")
		exactlyOneWins(t, []Store{s, s2}, 20, func(st Store) error {
			_, err := st.RedeemGrace(ctx, tokHash("r1"), "me", t0.Add(time.Second))
			return err
		})
	})
}
