package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// a user's refresh-token families are those of password grants in
// the user's name and those of devices the user owns; revoking the user's
// families revokes exactly those, in one go, feeds each to the change
// feed (so every node refuses them) and leaves other users' alone.
func TestUserFamilies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		s := db.open()
		ctx := context.Background()
		start := time.Unix(1_700_000_000, 0)
		sp := SecurityProfile{Name: "OAuth", DeviceType: "8845", Mode: "Encrypted", Transport: "TLS", OAuth: true}
		must(t, s.PutSecurityProfile(ctx, sp))
		for _, d := range []Device{
			{Name: "SEPJS1", Model: "8845", Line: "1001", Owner: "jsmith", SecurityProfile: sp.Name},
			{Name: "SEPMJ1", Model: "8845", Line: "1002", Owner: "mjones", SecurityProfile: sp.Name},
			{Name: "CSFSHARED", Model: "CSF", Line: "1003", SecurityProfile: sp.Name},
		} {
			must(t, s.PutDevice(ctx, d))
		}
		put := func(hash, fam, dev, user, origin string, mra bool, issued time.Duration, rotated bool) {
			t.Helper()
			tok := RefreshToken{Hash: []byte(hash), Family: fam, Device: dev, Username: user, Origin: origin, MRA: mra,
				IssuedAt: start.Add(issued), ExpiresAt: start.Add(issued + 24*time.Hour)}
			if rotated {
				tok.RotatedAt = start.Add(issued + time.Minute)
			}
			must(t, s.PutRefreshToken(ctx, tok))
		}
		// jsmith: a phone he owns (activation code, via MRA, rotated once),
		// and a password grant on a shared Jabber device.
		put("js-a1", "famJSphone", "SEPJS1", "", "activation_code", true, 0, true)
		put("js-a2", "famJSphone", "SEPJS1", "", "activation_code", true, time.Hour, false)
		put("js-p1", "famJSpass", "CSFSHARED", "jsmith", "password", false, 2*time.Hour, false)
		// mjones: his phone; and someone else's password grant on the shared device.
		put("mj-a1", "famMJphone", "SEPMJ1", "", "activation_code", true, 3*time.Hour, false)
		put("xx-p1", "famOther", "CSFSHARED", "other", "password", false, 4*time.Hour, false)

		got, err := s.UserFamilies(ctx, "jsmith")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "famJSphone" || got[1].ID != "famJSpass" {
			t.Fatalf("jsmith's families = %+v, want famJSphone then famJSpass", got)
		}
		ph := got[0]
		if ph.Device != "SEPJS1" || ph.Origin != "activation_code" || !ph.MRA || !ph.StartedAt.Equal(start) ||
			!ph.ExpiresAt.Equal(start.Add(25*time.Hour)) || !ph.RevokedAt.IsZero() {
			t.Errorf("jsmith's phone family = %+v; want SEPJS1, activation_code, MRA, started at the first token, expiring with the current one", ph)
		}
		if pw := got[1]; pw.Device != "CSFSHARED" || pw.Username != "jsmith" || pw.Origin != "password" || pw.MRA {
			t.Errorf("jsmith's password family = %+v", pw)
		}
		if none, err := s.UserFamilies(ctx, "nobody"); err != nil || len(none) != 0 {
			t.Errorf("families of a user without any = %+v, %v", none, err)
		}
		if _, err := s.UserFamilies(ctx, ""); err == nil {
			t.Error("families of the empty username: no error")
		}
		if f, err := s.Family(ctx, "famMJphone"); err != nil || f.Device != "SEPMJ1" || !f.MRA {
			t.Errorf("Family(famMJphone) = %+v, %v", f, err)
		}
		if _, err := s.Family(ctx, "famNOPE"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Family(unknown) = %v, want ErrNotFound", err)
		}

		cursor, err := s.ChangeCursor(ctx)
		must(t, err)
		at := start.Add(5 * time.Hour)
		ids, err := s.RevokeUserFamilies(ctx, "jsmith", at)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, []string{"famJSpass", "famJSphone"}) {
			t.Fatalf("RevokeUserFamilies(jsmith) revoked %v", ids)
		}
		// The revocation reaches the change feed, one family change each.
		changes, err := s.Changes(ctx, cursor, 100)
		must(t, err)
		var fed []string
		for _, c := range changes {
			if c.Kind == ChangeFamily {
				fed = append(fed, c.Key)
			}
		}
		slices.Sort(fed)
		if !slices.Equal(fed, ids) {
			t.Errorf("change feed after the user's revocation: %v, want %v", fed, ids)
		}
		for _, tc := range []struct {
			hash    string
			revoked bool
		}{{"js-a2", true}, {"js-p1", true}, {"mj-a1", false}, {"xx-p1", false}} {
			_, err := s.RotateRefreshToken(ctx, []byte(tc.hash), at.Add(time.Minute), nil)
			if got := errors.Is(err, ErrRevoked); got != tc.revoked {
				t.Errorf("rotating %s after jsmith's revocation: %v; want revoked %v", tc.hash, err, tc.revoked)
			}
		}
		if rv, err := s.TokenRevocation(ctx, "jti", "famJSphone"); err != nil || !rv.FamilyRevoked {
			t.Errorf("TokenRevocation of jsmith's family = %+v, %v", rv, err)
		}
		got, _ = s.UserFamilies(ctx, "jsmith")
		for _, f := range got {
			if !f.RevokedAt.Equal(at) {
				t.Errorf("family %s revoked at %v, want %v", f.ID, f.RevokedAt, at)
			}
		}
		// Again: nothing left to revoke, and the first time stays.
		if ids, err := s.RevokeUserFamilies(ctx, "jsmith", at.Add(time.Hour)); err != nil || len(ids) != 0 {
			t.Errorf("a second revocation revoked %v, %v", ids, err)
		}
		if f, _ := s.Family(ctx, "famJSphone"); !f.RevokedAt.Equal(at) {
			t.Errorf("a second revocation moved the time to %v", f.RevokedAt)
		}
		if _, err := s.RevokeUserFamilies(ctx, "", at); err == nil {
			t.Error("revoking the empty username's families: no error")
		}
	})
}
