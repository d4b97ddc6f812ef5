package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// RemoteJWKS is a KeySource backed by a JWKS URL (the edge fetching the
// core's keys over mTLS). Keys are cached; an unknown kid triggers a refetch,
// at most once per MinRefresh so junk kids cannot make it hammer the core,
// and concurrent misses share one fetch.
type RemoteJWKS struct {
	URL        string
	Client     *http.Client
	MaxAge     time.Duration    // refetch keys older than this; default 1h
	MinRefresh time.Duration    // at most one refetch per this; default 1s
	Now        func() time.Time // default time.Now

	sf      singleflight.Group
	mu      sync.RWMutex
	keys    map[string]*ecdsa.PublicKey
	fetched time.Time
	gen     uint64 // fetch attempts so far
	lastErr error
}

func (r *RemoteJWKS) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// PublicKey implements KeySource. An unknown kid (the core rotated its
// key, R-1) triggers a refetch; refetches are paced to one per MinRefresh,
// and a lookup that arrives inside the pacing window waits for it to close
// (bounded by ctx) rather than failing, so a token signed right after a
// rotation is not refused while junk kids still cannot hammer the core.
func (r *RemoteJWKS) PublicKey(ctx context.Context, kid string) (crypto.PublicKey, error) {
	maxAge, minRefresh := r.MaxAge, r.MinRefresh
	if maxAge == 0 {
		maxAge = time.Hour
	}
	if minRefresh == 0 {
		minRefresh = time.Second
	}
	r.mu.RLock()
	k, ok := r.keys[kid]
	fetched, gen := r.fetched, r.gen
	r.mu.RUnlock()
	age := r.now().Sub(fetched)
	if ok && age < maxAge {
		return k, nil
	}
	if !fetched.IsZero() && age < minRefresh {
		if ok {
			return k, nil
		}
		t := time.NewTimer(minRefresh - age)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: kid %q: %w", ErrUnknownKey, kid, ctx.Err())
		case <-t.C:
		}
	}
	r.mu.RLock()
	refreshedMeanwhile := r.gen != gen
	r.mu.RUnlock()
	if !refreshedMeanwhile {
		_ = r.Refresh(ctx) // recorded in lastErr
	}
	r.mu.RLock()
	k, ok = r.keys[kid]
	lastErr := r.lastErr
	r.mu.RUnlock()
	switch {
	case ok:
		return k, nil
	case lastErr != nil:
		// We cannot tell a new key from a junk one while the core is
		// unreachable: say so, so the caller answers "try later", not
		// "your token is bad".
		return nil, fmt.Errorf("%w: kid %q: %w", ErrUnavailable, kid, lastErr)
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// Refresh fetches the key set now (shared by concurrent callers).
func (r *RemoteJWKS) Refresh(ctx context.Context) error {
	_, err, _ := r.sf.Do("jwks", func() (any, error) {
		err := r.fetch(ctx)
		r.mu.Lock()
		r.gen++
		r.lastErr = err
		if err != nil {
			// Remember the failed attempt so MinRefresh also paces retries
			// against a core that is down.
			r.fetched = r.now()
		}
		r.mu.Unlock()
		return nil, err
	})
	return err
}

// LastError is the result of the most recent fetch.
func (r *RemoteJWKS) LastError() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lastErr
}

func (r *RemoteJWKS) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return fmt.Errorf("token: JWKS request: %w", err)
	}
	client := r.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("token: fetching JWKS from %s: %w", r.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token: fetching JWKS from %s: HTTP %d", r.URL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("token: reading JWKS: %w", err)
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.keys, r.fetched = keys, r.now()
	r.mu.Unlock()
	return nil
}

var _ KeySource = (*RemoteJWKS)(nil)
var _ KeySource = (*KeySet)(nil)
