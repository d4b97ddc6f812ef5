package lookups

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/store"
)

// The per-REGISTER cache serves what it read until purged or until its
// TTL runs out; then it reads the store again. Failures are not kept.
func TestLookupsCacheUntilPurgeOrTTL(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := st.PutSecurityProfile(ctx, store.SecurityProfile{Name: "p", Mode: "encrypted", Transport: "TLS", OAuth: true}); err != nil {
		t.Fatal(err)
	}
	put := func(line string) {
		t.Helper()
		if err := st.PutDevice(ctx, store.Device{Name: "SEP000000000001", Model: "8845", Line: line, SecurityProfile: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	l := New(st, time.Hour)
	if _, err := l.GetDevice(ctx, "SEP000000000001"); err == nil {
		t.Fatal("an unknown device was found")
	}
	put("1001") // the failure above was not cached
	line := func() string {
		t.Helper()
		d, err := l.GetDevice(ctx, "SEP000000000001")
		if err != nil {
			t.Fatal(err)
		}
		return d.Line
	}
	if got := line(); got != "1001" {
		t.Fatalf("line %s, want 1001", got)
	}
	put("1002") // behind the cache's back, as another node would
	if got := line(); got != "1001" {
		t.Fatalf("line %s before purge or TTL, want the cached 1001", got)
	}
	l.Purge()
	if got := line(); got != "1002" {
		t.Fatalf("line %s after purge, want 1002", got)
	}

	short := New(st, 20*time.Millisecond)
	if v, _, err := short.GetParam(ctx, "x"); err != nil || v != "" {
		t.Fatalf("unset param: %q %v", v, err)
	}
	if err := st.SetParam(ctx, "x", "y"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, ok, err := short.GetParam(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		if ok && v == "y" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cached param never expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
