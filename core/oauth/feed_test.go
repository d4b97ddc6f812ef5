package oauth

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/pgtest"
	"github.com/edgeway/edgeway/internal/store"
)

// feedTestStore counts the revocation reads that reach the store.
type feedTestStore struct {
	*store.SQLite
	reads atomic.Int64
}

func (s *feedTestStore) TokenRevocation(ctx context.Context, jti, family string) (store.Revocation, error) {
	s.reads.Add(1)
	return s.SQLite.TokenRevocation(ctx, jti, family)
}

func startFeed(t *testing.T, st feedStore, onConfig func()) *feed {
	t.Helper()
	f, err := newFeed(context.Background(), st, time.Now, func() time.Duration { return time.Hour }, onConfig, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func openSQLite(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "feed.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func putFamily(t *testing.T, st *store.SQLite, family string) {
	t.Helper()
	now := time.Now()
	if err := st.PutRefreshToken(context.Background(), store.RefreshToken{Hash: []byte(family), Family: family, Device: "SEP1",
		Origin: "activation_code", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func revocationOf(t *testing.T, f *feed, jti, family string) store.Revocation {
	t.Helper()
	rv, err := f.revocation(context.Background(), jti, family)
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

// TestFeedAnswersFromMemory: a live family is read from the store once,
// then answered from memory; revocations in the store before start are
// known without a read.
func TestFeedAnswersFromMemory(t *testing.T) {
	ctx := context.Background()
	st := &feedTestStore{SQLite: openSQLite(t)}
	putFamily(t, st.SQLite, "fam-live")
	putFamily(t, st.SQLite, "fam-old")
	if err := st.RevokeFamily(ctx, "fam-old", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAccessToken(ctx, "jti-old", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	f := startFeed(t, st, nil)
	for range 3 {
		if rv := revocationOf(t, f, "jti-1", "fam-live"); rv != (store.Revocation{}) {
			t.Fatalf("live token: %+v", rv)
		}
	}
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for 3 checks of one live family, want 1", n)
	}
	if rv := revocationOf(t, f, "jti-2", "fam-old"); !rv.FamilyRevoked {
		t.Fatalf("family revoked before start: %+v", rv)
	}
	if rv := revocationOf(t, f, "jti-old", "fam-live"); !rv.Revoked {
		t.Fatalf("token revoked before start: %+v", rv)
	}
	if n := st.reads.Load(); n != 1 {
		t.Fatalf("%d store reads, want 1: revocations loaded at start are answered from memory", n)
	}
	if rv := revocationOf(t, f, "jti-3", "fam-unknown"); !rv.FamilyMissing {
		t.Fatalf("unknown family: %+v", rv)
	}
}

// TestFeedOtherNodesRevocations: a family or access token revoked through
// another node (straight in the shared store) is refused here once the
// feed is read, although the family was remembered alive; the follower
// reads it by itself within feedEvery.
func TestFeedOtherNodesRevocations(t *testing.T) {
	ctx := context.Background()
	st := &feedTestStore{SQLite: openSQLite(t)}
	putFamily(t, st.SQLite, "fam-a")
	putFamily(t, st.SQLite, "fam-b")
	var configs atomic.Int64
	f := startFeed(t, st, func() { configs.Add(1) })
	revocationOf(t, f, "jti-a", "fam-a")
	revocationOf(t, f, "jti-b", "fam-b")
	if err := st.RevokeFamily(ctx, "fam-a", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAccessToken(ctx, "jti-b", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.SetParam(ctx, policy.ParamAccessTokenForDevices, "explicit"); err != nil {
		t.Fatal(err)
	}
	// The follower (every feedEvery), not a sync of the test's own.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !revocationOf(t, f, "jti-a", "fam-a").FamilyRevoked {
		if time.Now().After(deadline) {
			t.Fatal("a family revoked by another node was still accepted after 5 s")
		}
		<-tick.C
	}
	if rv := revocationOf(t, f, "jti-b", "fam-b"); !rv.Revoked {
		t.Fatalf("token revoked by another node: %+v", rv)
	}
	if configs.Load() == 0 {
		t.Fatal("a parameter changed by another node did not purge the lookups")
	}
	if rv := revocationOf(t, f, "jti-b2", "fam-b"); rv != (store.Revocation{}) {
		t.Fatalf("another token of the live family: %+v", rv)
	}
}

// TestFeedMarkHoldsAtOnce: a revocation this node made holds before any
// read of the feed.
func TestFeedMarkHoldsAtOnce(t *testing.T) {
	st := &feedTestStore{SQLite: openSQLite(t)}
	putFamily(t, st.SQLite, "fam-a")
	f := startFeed(t, st, nil)
	revocationOf(t, f, "jti-a", "fam-a")
	f.mark(store.ChangeFamily, "fam-a")
	f.mark(store.ChangeToken, "jti-x")
	if rv := revocationOf(t, f, "jti-a", "fam-a"); !rv.FamilyRevoked {
		t.Fatalf("family marked revoked: %+v", rv)
	}
	if rv := revocationOf(t, f, "jti-x", ""); !rv.Revoked {
		t.Fatalf("token marked revoked: %+v", rv)
	}
}

// On PostgreSQL the feed reads on the store's notice: with the interval
// set to an hour, a token revoked through another node's store is still
// refused within seconds on this one, and Close ends the listener.
func TestFeedReadsOnNoticeOnPostgres(t *testing.T) {
	saved := feedEvery
	feedEvery = time.Hour
	t.Cleanup(func() { feedEvery = saved })
	srv := pgtest.Start(t)
	ctx := context.Background()
	open := func() *store.Postgres {
		p, err := store.OpenPostgres(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	here, there := open(), open()
	f := startFeed(t, here, nil)
	if f.notices == nil {
		t.Fatal("the feed is not listening on PostgreSQL")
	}
	start := time.Now()
	if err := there.RevokeAccessToken(ctx, "jti-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !revocationOf(t, f, "jti-1", "").Revoked {
		if time.Now().After(deadline) {
			t.Fatal("a token revoked through another node was not refused (no notice read)")
		}
		<-tick.C
	}
	t.Logf("refused %v after the other node's revocation", time.Since(start))
}
