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
)

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
