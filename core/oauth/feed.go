package oauth

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/edgeway/edgeway/internal/store"
)

// feedStore is what the change feed reads.
type feedStore interface {
	Changes(ctx context.Context, after int64, limit int) ([]store.Change, error)
	ChangeCursor(ctx context.Context) (int64, error)
	RevokedAccessTokens(ctx context.Context, now time.Time) ([]string, error)
	RevokedFamilies(ctx context.Context, after time.Time, limit int) ([]store.RevokedFamily, error)
	TokenRevocation(ctx context.Context, jti, family string) (store.Revocation, error)
}

// feedEvery is how often a node reads the change feed: changes made
// through another node reach it within that (issue 10: within a second).
// On a store that announces its changes (changeListener: PostgreSQL's
// LISTEN/NOTIFY) the node also reads on each notice. A variable for tests.
var feedEvery = 500 * time.Millisecond

// changeListener is a store that announces committed changes from any
// node: the channel receives after each and closes when listening ends.
type changeListener interface {
	ListenChanges(ctx context.Context) (<-chan struct{}, error)
}

const (
	feedPage = 1000
	// liveFamilies bounds the families remembered as existing and not
	// revoked; one not remembered costs one store read.
	liveFamilies = 100_000
)

// feed keeps this node's answer to "is this access token revoked?" in
// memory, current from the store's change feed (migration 8): the revoked
// access tokens and the revoked or deleted grant families of the last
// keep (an access token never outlives it), and a bounded set of
// families seen alive. A revocation made through this node is read back
// from the feed before the request that made it is answered (sync), so it
// holds at once; one made through another node holds within feedEvery.
// Config changes in the feed purge the lookups cache.
type feed struct {
	st       feedStore
	now      func() time.Time
	keep     func() time.Duration
	onConfig func()
	log      *slog.Logger

	mu       sync.RWMutex
	tokens   map[string]time.Time // revoked jti → when it stops mattering
	families map[string]time.Time // revoked or deleted family → same
	live     *lru.Cache[string, struct{}]

	syncMu sync.Mutex // one reader of the feed at a time
	cursor int64

	// notices is the store's announcement of changes (nil: poll only);
	// unlisten ends it.
	notices  <-chan struct{}
	unlisten context.CancelFunc

	stop chan struct{}
	wg   sync.WaitGroup
}

// newFeed loads the revocations that still matter and starts following
// the feed; Close stops it.
func newFeed(ctx context.Context, st feedStore, now func() time.Time, keep func() time.Duration, onConfig func(), log *slog.Logger) (*feed, error) {
	live, err := lru.New[string, struct{}](liveFamilies)
	if err != nil {
		return nil, err
	}
	f := &feed{st: st, now: now, keep: keep, onConfig: onConfig, log: log, live: live,
		tokens: map[string]time.Time{}, families: map[string]time.Time{}, stop: make(chan struct{})}
	// The cursor first: a change made while loading is then read again
	// from the feed, and applying it twice is harmless.
	if f.cursor, err = st.ChangeCursor(ctx); err != nil {
		return nil, fmt.Errorf("core: change feed: %w", err)
	}
	t := now()
	until := t.Add(keep())
	jtis, err := st.RevokedAccessTokens(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("core: loading revocations: %w", err)
	}
	for _, j := range jtis {
		f.tokens[j] = until
	}
	for after := t.Add(-keep()); ; {
		fams, err := st.RevokedFamilies(ctx, after, feedPage)
		if err != nil {
			return nil, fmt.Errorf("core: loading revocations: %w", err)
		}
		for _, fam := range fams {
			f.families[fam.ID] = until
			after = fam.RevokedAt
		}
		if len(fams) < feedPage {
			break
		}
	}
	if l, ok := st.(changeListener); ok {
		lctx, cancel := context.WithCancel(context.Background())
		if f.notices, err = l.ListenChanges(lctx); err != nil {
			cancel()
			log.Warn("not listening for the store's change notices; reading the feed every interval", "every", feedEvery, "err", err)
		} else {
			f.unlisten = cancel
		}
	}
	f.wg.Add(1)
	go f.follow()
	return f, nil
}

func (f *feed) Close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.wg.Wait()
	if f.unlisten != nil {
		f.unlisten()
		for range f.notices { // until the store's listener has stopped
		}
	}
}

func (f *feed) follow() {
	defer f.wg.Done()
	t := time.NewTicker(feedEvery)
	defer t.Stop()
	notices := f.notices
	for n := 0; ; n++ {
		select {
		case <-f.stop:
			return
		case <-t.C:
		case _, ok := <-notices:
			if !ok {
				notices = nil // the listener ended: poll only
				f.log.Warn("the store stopped announcing changes; reading the feed every interval", "every", feedEvery)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := f.sync(ctx); err != nil {
			f.log.Warn("reading the change feed", "err", err)
		}
		cancel()
		if n%120 == 0 {
			f.prune(f.now())
		}
	}
}

// sync applies every change after the cursor.
func (f *feed) sync(ctx context.Context) error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	for {
		changes, err := f.st.Changes(ctx, f.cursor, feedPage)
		if err != nil {
			return err
		}
		config := false
		until := f.now().Add(f.keep())
		f.mu.Lock()
		for _, c := range changes {
			switch c.Kind {
			case store.ChangeToken:
				f.tokens[c.Key] = until
			case store.ChangeFamily:
				f.families[c.Key] = until
				f.live.Remove(c.Key)
			case store.ChangeConfig:
				config = true
			}
			f.cursor = c.ID
		}
		f.mu.Unlock()
		if config && f.onConfig != nil {
			f.onConfig()
		}
		if len(changes) < feedPage {
			return nil
		}
	}
}

// prune forgets revocations that no longer matter at now.
func (f *feed) prune(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, until := range f.tokens {
		if now.After(until) {
			delete(f.tokens, k)
		}
	}
	for k, until := range f.families {
		if now.After(until) {
			delete(f.families, k)
		}
	}
}

// revocation answers what store.TokenRevocation answers, from memory: a
// token or family in the revoked sets is refused; a family seen alive
// since its last change is accepted; any other family is read from the
// store once (and remembered when alive).
func (f *feed) revocation(ctx context.Context, jti, family string) (store.Revocation, error) {
	f.mu.RLock()
	_, revoked := f.tokens[jti]
	_, dead := f.families[family]
	f.mu.RUnlock()
	if revoked {
		return store.Revocation{Revoked: true}, nil
	}
	if family == "" {
		return store.Revocation{}, nil
	}
	if dead {
		return store.Revocation{FamilyRevoked: true}, nil
	}
	if f.live.Contains(family) {
		return store.Revocation{}, nil
	}
	rv, err := f.st.TokenRevocation(ctx, jti, family)
	if err != nil {
		return rv, err
	}
	if !rv.Revoked && !rv.FamilyRevoked && !rv.FamilyMissing {
		// A revocation the feed applies after this read lands in
		// families, which is checked first: remembering the family
		// alive cannot hide it.
		f.live.Add(family, struct{}{})
	}
	return rv, nil
}

// mark records a revocation this node made, before the feed carries it.
func (f *feed) mark(kind, key string) {
	until := f.now().Add(f.keep())
	f.mu.Lock()
	defer f.mu.Unlock()
	switch kind {
	case store.ChangeToken:
		f.tokens[key] = until
	case store.ChangeFamily:
		f.families[key] = until
		f.live.Remove(key)
	}
}

// NoteRevoked makes a revocation just written through this node hold on
// this node at once: the token or family named (kind, key) is marked, and
// the feed is read up to now (a device's families are known only from
// it). An error means the revocation is durable but may not hold here
// until the next read of the feed.
func (s *Server) NoteRevoked(ctx context.Context, kind, key string) error {
	if s.feed == nil {
		return nil // not serving: every check reads the store
	}
	if key != "" {
		s.feed.mark(kind, key)
	}
	return s.feed.sync(ctx)
}
