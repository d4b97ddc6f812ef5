package edge

// TURN credentials die with their refresh-token family (issue 9, item 7;
// an administrator revokes a device's tokens; a replayed refresh
// token revokes its family). Each credential names the tag of its access
// token's family (turncred.FamilyTag). The edge asks the core every
// turn.revocation_poll which families were revoked
// (GET /internal/v1/revoked-families over the mTLS link, core/revocations.go),
// keeps their tags for as long as a credential of theirs can live, refuses
// those credentials on Allocate, Refresh and every other authenticated
// request (401), and closes the live allocations that were made with them.
//
// While the core cannot be reached the edge keeps what it knows and keeps
// asking: credentials of families revoked meanwhile work until it answers
// again (they expire with their access token anyway).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/edgeway/edgeway/internal/turncred"
)

// RevokedFamiliesPath is the core's list of revoked refresh-token
// families, served to edges only (mTLS, S-12).
const RevokedFamiliesPath = "/internal/v1/revoked-families"

// maxRevokedFamilies bounds the revoked families an edge remembers.
const maxRevokedFamilies = 100_000

// revokedFamilies is a bounded set of family tags, each remembered until
// credentials of its family can no longer be valid. Safe for concurrent
// use.
type revokedFamilies struct {
	mu    sync.Mutex
	max   int
	until map[string]time.Time
}

func newRevokedFamilies(max int) *revokedFamilies {
	return &revokedFamilies{max: max, until: map[string]time.Time{}}
}

// add remembers tag until then; it reports whether tag is new.
func (r *revokedFamilies) add(tag string, until, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, known := r.until[tag]
	if known && old.After(now) {
		if until.After(old) {
			r.until[tag] = until
		}
		return false
	}
	if len(r.until) >= r.max {
		r.sweepLocked(now)
	}
	for len(r.until) >= r.max { // still full: forget the one that ends first
		var first string
		var at time.Time
		for k, v := range r.until {
			if first == "" || v.Before(at) {
				first, at = k, v
			}
		}
		delete(r.until, first)
	}
	r.until[tag] = until
	return true
}

func (r *revokedFamilies) has(tag string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.until[tag]
	return ok && until.After(now)
}

func (r *revokedFamilies) sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
}

func (r *revokedFamilies) sweepLocked(now time.Time) {
	for k, v := range r.until {
		if !v.After(now) {
			delete(r.until, k)
		}
	}
}

func (r *revokedFamilies) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.until)
}

// RevokeFamilies refuses, from now on and for keep, the TURN credentials
// of the refresh-token families ids (the core's family ids), and closes
// the live allocations made with them. It returns how many it closed.
func (t *TURN) RevokeFamilies(ids []string, keep time.Duration) int {
	now := t.now()
	fresh := map[string]bool{}
	for _, id := range ids {
		if tag := turncred.FamilyTag(id); tag != "" && t.revoked.add(tag, now.Add(keep), now) {
			fresh[tag] = true
		}
	}
	if len(fresh) == 0 {
		return 0
	}
	// Added to the set before the relays are looked at: an allocation
	// registered after this scan is caught by AllocatePacketConn's check.
	t.mu.Lock()
	var doomed []*relayConn
	for r := range t.relays {
		if r.family != "" && fresh[r.family] {
			doomed = append(doomed, r)
		}
	}
	t.mu.Unlock()
	for _, r := range doomed {
		t.log.Info("closing a TURN allocation: its token family was revoked", "device", r.device, "relay", r.relayed)
		_ = r.Close() // pion's relay loop ends and deletes the allocation
	}
	return len(doomed)
}

// familyRevoked reports whether the family tag was revoked.
func (t *TURN) familyRevoked(tag string) bool {
	return tag != "" && t.revoked.has(tag, t.now())
}

// RevokedFamilies is the core's answer on RevokedFamiliesPath.
type RevokedFamilies struct {
	// Families are the ids of refresh-token families revoked after the
	// cursor asked for.
	Families []string `json:"families"`
	// Cursor is the revocation time (Unix nanoseconds, as a string) of the
	// last family listed: ask with since=Cursor for the next ones.
	Cursor string `json:"cursor"`
	// More is true when there are more families after Cursor already.
	More bool `json:"more"`
	// KeepSeconds is how long a credential of a revoked family can still
	// be presented: the core's access-token lifetime and a margin.
	KeepSeconds int64 `json:"keep_seconds"`
}

// revocationOverlap is how far back each poll looks again, so a
// revocation that committed with an earlier time than one already seen is
// not missed.
const revocationOverlap = 5 * time.Second

// revocationWatcher polls the core for revoked families. It is owned by
// Serve: run returns when ctx ends.
type revocationWatcher struct {
	client *http.Client
	url    *url.URL // the core's RevokedFamiliesPath
	every  time.Duration
	apply  func(ids []string, keep time.Duration) int
	log    *slog.Logger

	cursor int64 // Unix nanoseconds; 0 before the first answer
}

func (w *revocationWatcher) run(ctx context.Context) {
	failing := false
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		err := w.poll(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			w.log.Warn("cannot learn revoked token families from the core; TURN credentials of families revoked meanwhile keep working until it answers", "every", w.every, "err", err)
		case err == nil && failing:
			w.log.Info("learning revoked token families from the core again")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll fetches every page of revocations after the cursor.
func (w *revocationWatcher) poll(ctx context.Context) error {
	since := w.cursor
	if since > 0 {
		since = max(0, since-int64(revocationOverlap))
	}
	for range 100 { // at most 100 pages per round
		page, err := w.fetch(ctx, since)
		if err != nil {
			return err
		}
		if len(page.Families) > 0 {
			if n := w.apply(page.Families, time.Duration(page.KeepSeconds)*time.Second); n > 0 {
				w.log.Info("closed TURN allocations of revoked token families", "allocations", n)
			}
		}
		if c, err := strconv.ParseInt(page.Cursor, 10, 64); err == nil && c > w.cursor {
			w.cursor = c
		}
		if !page.More {
			return nil
		}
		since = w.cursor
	}
	return nil
}

func (w *revocationWatcher) fetch(ctx context.Context, since int64) (RevokedFamilies, error) {
	var page RevokedFamilies
	u := *w.url
	if since > 0 {
		u.RawQuery = url.Values{"since": {strconv.FormatInt(since, 10)}}.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return page, err
	}
	res, err := w.client.Do(req)
	if err != nil {
		return page, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
		return page, fmt.Errorf("edge: %s: HTTP %d", RevokedFamiliesPath, res.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<20)).Decode(&page); err != nil {
		return page, fmt.Errorf("edge: %s: %w", RevokedFamiliesPath, err)
	}
	if page.KeepSeconds <= 0 {
		page.KeepSeconds = int64((24 * time.Hour) / time.Second)
	}
	return page, nil
}
