package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

// The device grant's store on both engines (RFC 8628): a poll sooner than
// the interval grows it by 5 s (slow_down), a pending or denied code says
// so after recording the poll, an approved one is redeemed once together
// with its first refresh token, and an expired one is expired.
func TestDeviceCodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		dc := s.(DeviceCodeStore)
		now := time.Unix(1_900_000_000, 0).UTC()
		h := sha256.Sum256([]byte("ewd_test"))
		c := DeviceCode{Hash: h[:], UserCode: "BCDFGHJK", Device: "SEP1", MRA: true, Edge: "expc", Source: "192.0.2.1",
			CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second}
		if err := dc.PutDeviceCode(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := dc.PutDeviceCode(ctx, c); !errors.Is(err, ErrConflict) {
			t.Fatalf("same user_code again: %v, want ErrConflict", err)
		}
		issued := 0
		issue := func(DeviceCode) ([]RefreshToken, error) {
			issued++
			return []RefreshToken{{Hash: []byte("rt-hash-device-code"), Family: "fam-dc", Device: "SEP1", Origin: "device_code",
				IssuedAt: now, ExpiresAt: now.Add(time.Hour)}}, nil
		}
		poll := func(at time.Duration, want error) DeviceCode {
			t.Helper()
			got, err := dc.PollDeviceCode(ctx, h[:], now.Add(at), issue)
			if !errors.Is(err, want) && !(want == nil && err == nil) {
				t.Fatalf("poll at +%v: %v, want %v", at, err, want)
			}
			return got
		}
		poll(time.Second, ErrSlowDown) // sooner than 5 s after the request
		if got := poll(6*time.Second, ErrSlowDown); got.Interval != 15*time.Second {
			t.Fatalf("interval after two slow_downs: %v, want 15s", got.Interval)
		}
		poll(21*time.Second, ErrAuthorizationPending)
		if list, err := dc.PendingDeviceCodes(ctx, now.Add(21*time.Second)); err != nil || len(list) != 1 || list[0].UserCode != "BCDFGHJK" {
			t.Fatalf("pending: %+v %v", list, err)
		}
		if _, err := dc.DecideDeviceCode(ctx, "ZZZZZZZZ", true, "admin", now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("decide unknown: %v", err)
		}
		if got, err := dc.DecideDeviceCode(ctx, "BCDFGHJK", true, "admin", now.Add(22*time.Second)); err != nil || got.Status != DeviceCodeApproved {
			t.Fatalf("approve: %+v %v", got, err)
		}
		if _, err := dc.DecideDeviceCode(ctx, "BCDFGHJK", false, "admin", now.Add(23*time.Second)); !errors.Is(err, ErrConflict) {
			t.Fatalf("deny after approve: %v, want ErrConflict", err)
		}
		// An error from issue undoes the poll: nothing is redeemed.
		boom := errors.New("boom")
		if _, err := dc.PollDeviceCode(ctx, h[:], now.Add(40*time.Second), func(DeviceCode) ([]RefreshToken, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("poll with a failing issue: %v", err)
		}
		if got := poll(40*time.Second, nil); got.RedeemedAt.IsZero() || issued != 1 {
			t.Fatalf("redeemed %+v, issue called %d times", got, issued)
		}
		if n := rawCount(t, s, `SELECT COUNT(*) FROM refresh_tokens WHERE family = 'fam-dc'`); n != 1 {
			t.Fatalf("refresh tokens stored with the redemption: %d, want 1", n)
		}
		poll(60*time.Second, ErrAlreadyUsed)

		// Denied and expired.
		h2 := sha256.Sum256([]byte("ewd_test2"))
		c2 := DeviceCode{Hash: h2[:], UserCode: "CDFGHJKL", Device: "SEP1", CreatedAt: now, ExpiresAt: now.Add(time.Minute), Interval: 5 * time.Second}
		if err := dc.PutDeviceCode(ctx, c2); err != nil {
			t.Fatal(err)
		}
		if _, err := dc.DecideDeviceCode(ctx, "CDFGHJKL", false, "admin", now); err != nil {
			t.Fatal(err)
		}
		if _, err := dc.PollDeviceCode(ctx, h2[:], now.Add(10*time.Second), issue); !errors.Is(err, ErrDenied) {
			t.Fatalf("denied: %v", err)
		}
		if _, err := dc.PollDeviceCode(ctx, h2[:], now.Add(2*time.Minute), issue); !errors.Is(err, ErrExpired) {
			t.Fatalf("expired: %v", err)
		}
		if _, err := dc.PollDeviceCode(ctx, []byte("nope"), now, issue); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
	})
}
