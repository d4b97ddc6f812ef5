package core_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/testenv"
)

func jwksKIDs(t *testing.T, s *core.Server) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, k := range s.JWKS().Keys {
		out[k.Kid] = true
	}
	return out
}

// a rotated-out key is published until its tokens have expired, and
// not after — also across a restart; regenerating drops old keys at once.
func TestSigningKeysSurviveRestartOnlyWhileUseful(t *testing.T) {
	ctx := context.Background()
	lay, err := quickstart.Prepare(t.TempDir(), quickstart.DefaultAddrs())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(lay.Dir, "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := testenv.NewClock(time.Now())
	log := slog.New(slog.DiscardHandler)
	s1, err := core.New(ctx, lay.Core, st, log, core.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	first := jwksKIDs(t, s1)
	if len(first) != 1 {
		t.Fatalf("a new core publishes %d keys, want 1", len(first))
	}
	second, err := s1.RotateSigningKey(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, s1); len(got) != 2 || !got[second] {
		t.Fatalf("after rotation: %v, want the old and the new key", got)
	}
	// A restart within the access-token lifetime still publishes both.
	s2, err := core.New(ctx, lay.Core, st, log, core.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, s2); len(got) != 2 {
		t.Fatalf("restart within the token lifetime: %v, want 2 keys", got)
	}
	// Past the lifetime, a restart must not bring the old key back.
	clk.Advance(2 * time.Hour)
	s3, err := core.New(ctx, lay.Core, st, log, core.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, s3); len(got) != 1 || !got[second] {
		t.Fatalf("restart after the lifetime: %v, want only %s", got, second)
	}
	// Regenerating drops the current key at once, also after a restart.
	third, err := s3.RotateSigningKey(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, s3); len(got) != 1 || !got[third] {
		t.Fatalf("after regen: %v, want only %s", got, third)
	}
	s4, err := core.New(ctx, lay.Core, st, log, core.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(t, s4); len(got) != 1 || !got[third] {
		t.Fatalf("restart after regen: %v, want only %s", got, third)
	}
}
