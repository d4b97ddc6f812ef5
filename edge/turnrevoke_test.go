package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/edgeway/edgeway/internal/turncred"
)

func familyCreds(device, family string, ttl time.Duration) (string, string) {
	return turncred.IssueName(testTURNSecret, turncred.Name{Device: device, Family: turncred.FamilyTag(family)}, time.Now().Add(ttl))
}

// Issue 9, item 7 (the edge's half): once a family is revoked, Allocate
// and Refresh with its credentials get 401 and its live allocations are
// closed; another family of the same device is untouched.
func TestTURNRevokedFamily(t *testing.T) {
	f := startTURN(t, turnFixtureOptions{})
	const device = "SEP00AABBCC04"
	u, p := familyCreds(device, "family-1", time.Hour)
	c := dialRaw(t, "udp4", f.udp, u, p)
	if res := c.allocate(false); !isSuccess(res) {
		t.Fatalf("Allocate: %v (code %d)", res, errorCode(res))
	}
	other, _ := f.allocate(t, "udp", device) // no family
	u2, p2 := familyCreds(device, "family-2", time.Hour)
	c2 := dialRaw(t, "tcp4", f.tcp, u2, p2)
	if res := c2.allocate(false); !isSuccess(res) {
		t.Fatalf("Allocate (family 2): %v", res)
	}
	if n := f.srv.DeviceAllocations(device); n != 3 {
		t.Fatalf("DeviceAllocations = %d, want 3", n)
	}

	if n := f.srv.RevokeFamilies([]string{"family-1", "unknown"}, time.Hour); n != 1 {
		t.Errorf("RevokeFamilies closed %d allocations, want 1", n)
	}
	waitFor(t, "the revoked family's allocation to close", func() bool { return f.srv.DeviceAllocations(device) == 2 })
	if n := f.srv.RevokeFamilies([]string{"family-1"}, time.Hour); n != 0 {
		t.Errorf("revoking again closed %d", n)
	}
	if res := c.refresh(600); errorCode(res) != stun.CodeUnauthorized {
		t.Errorf("Refresh with a revoked family's credential: %v (code %d), want 401", res, errorCode(res))
	}
	fresh := dialRaw(t, "udp4", f.udp, u, p)
	if res := fresh.allocate(false); errorCode(res) != stun.CodeUnauthorized {
		t.Errorf("Allocate with a revoked family's credential: %v (code %d), want 401", res, errorCode(res))
	}
	// Family 2 and the family-less credential keep working.
	if res := c2.refresh(600); !isSuccess(res) {
		t.Errorf("Refresh of another family: %v (code %d)", res, errorCode(res))
	}
	peer := udpPeer(t)
	relayUntilReceived(t, other, peer, []byte("still relaying"))
}

// The revoked set is bounded and forgets a family once its credentials
// cannot be valid any more.
func TestRevokedFamiliesBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	r := newRevokedFamilies(3)
	for i, tag := range []string{"a", "b", "c"} {
		if !r.add(tag, now.Add(time.Duration(i+1)*time.Hour), now) {
			t.Fatalf("%s not new", tag)
		}
	}
	if r.add("b", now.Add(time.Hour), now) {
		t.Error("b added twice")
	}
	r.add("d", now.Add(time.Hour), now) // full: "a" ends first and goes
	if r.has("a", now) || !r.has("d", now) || r.len() != 3 {
		t.Errorf("after overflow: a %v, d %v, len %d", r.has("a", now), r.has("d", now), r.len())
	}
	if r.has("c", now.Add(3*time.Hour)) {
		t.Error("c remembered past its end")
	}
	r.add("e", now.Add(time.Hour), now.Add(2*time.Hour+time.Minute)) // expired ones are swept first
	if r.len() != 2 || !r.has("c", now.Add(2*time.Hour+time.Minute)) {
		t.Errorf("after sweep: len %d", r.len())
	}
}

// The watcher pages through the core's answer, asks again from its cursor
// (looking back revocationOverlap), and hands every id over.
func TestRevocationWatcher(t *testing.T) {
	var mu sync.Mutex
	var sinces []string
	base := int64(1_700_000_000_000_000_000)
	core := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != RevokedFamiliesPath {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		sinces = append(sinces, r.URL.Query().Get("since"))
		n := len(sinces)
		mu.Unlock()
		page := RevokedFamilies{KeepSeconds: 3600}
		switch n {
		case 1:
			page.Families, page.Cursor, page.More = []string{"f1", "f2"}, strconv.FormatInt(base+2, 10), true
		case 2:
			page.Families, page.Cursor = []string{"f3"}, strconv.FormatInt(base+3, 10)
		default:
			page.Cursor = strconv.FormatInt(base+3, 10)
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	defer core.Close()
	u, _ := url.Parse(core.URL + RevokedFamiliesPath)
	got := make(chan []string, 10)
	w := &revocationWatcher{client: core.Client(), url: u, every: 10 * time.Millisecond, log: slog.New(slog.DiscardHandler),
		apply: func(ids []string, keep time.Duration) int {
			if keep != time.Hour {
				t.Errorf("keep %v, want 1h", keep)
			}
			got <- ids
			return 0
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	var all []string
	for len(all) < 3 {
		select {
		case ids := <-got:
			all = append(all, ids...)
		case <-time.After(10 * time.Second):
			t.Fatal("watcher handed over nothing")
		}
	}
	waitFor(t, "a third poll", func() bool { mu.Lock(); defer mu.Unlock(); return len(sinces) >= 3 })
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	want := []string{"", strconv.FormatInt(base+2, 10), strconv.FormatInt(base+3-int64(revocationOverlap), 10)}
	for i, s := range want {
		if sinces[i] != s {
			t.Errorf("request %d: since=%q, want %q", i+1, sinces[i], s)
		}
	}
	if len(all) != 3 || all[0] != "f1" || all[2] != "f3" {
		t.Errorf("ids %v", all)
	}
}
