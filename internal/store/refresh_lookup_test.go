package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// RefreshTokenByHash (RFC 7662 introspection) reads a refresh token as it
// is stored, rotated or not, and changes nothing: the token it read still
// rotates once.
func TestRefreshTokenByHash(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		s := db.open()
		ctx := context.Background()
		start := time.Unix(1_700_000_000, 0)
		tok := RefreshToken{Hash: []byte("hash-1"), Family: "fam-1", Device: "SEP1", Username: "jsmith", Origin: "password", MRA: true,
			IssuedAt: start, ExpiresAt: start.Add(24 * time.Hour)}
		must(t, s.PutRefreshToken(ctx, tok))
		got, err := s.RefreshTokenByHash(ctx, tok.Hash)
		if err != nil || got.Family != "fam-1" || got.Device != "SEP1" || got.Username != "jsmith" || got.Origin != "password" || !got.MRA ||
			!got.IssuedAt.Equal(start) || !got.ExpiresAt.Equal(start.Add(24*time.Hour)) || !got.RotatedAt.IsZero() {
			t.Fatalf("RefreshTokenByHash = %+v, %v; want the stored token, not rotated", got, err)
		}
		if _, err := s.RefreshTokenByHash(ctx, []byte("no-such-hash")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown hash: %v, want ErrNotFound", err)
		}
		if _, err := s.RotateRefreshToken(ctx, tok.Hash, start.Add(time.Minute), nil); err != nil {
			t.Fatalf("rotating the token read: %v", err)
		}
		got, err = s.RefreshTokenByHash(ctx, tok.Hash)
		if err != nil || !got.RotatedAt.Equal(start.Add(time.Minute)) {
			t.Fatalf("after rotation: %+v, %v; want RotatedAt %v", got, err, start.Add(time.Minute))
		}
	})
}
