package edge

// Revoked token families from the core (issue 9, item 7): the edge asks
// the core every turn.revocation_poll which refresh-token families were
// revoked and hands them to its relay (relay.Server.RevokeFamilies, which
// refuses their TURN credentials with 401 and closes their allocations).
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
	"time"
)

// RevokedFamiliesPath is the core's list of revoked refresh-token
// families, served to edges only (mTLS, S-12).
const RevokedFamiliesPath = "/internal/v1/revoked-families"

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
