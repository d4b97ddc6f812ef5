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
	MinRefresh time.Duration    // at most one refetch per this; default 10s
	Now        func() time.Time // default time.Now

	sf      singleflight.Group
	mu      sync.RWMutex
	keys    map[string]*ecdsa.PublicKey
	fetched time.Time
	lastErr error
}

func (r *RemoteJWKS) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// PublicKey implements KeySource.
func (r *RemoteJWKS) PublicKey(ctx context.Context, kid string) (crypto.PublicKey, error) {
	maxAge, minRefresh := r.MaxAge, r.MinRefresh
	if maxAge == 0 {
		maxAge = time.Hour
	}
	if minRefresh == 0 {
		minRefresh = 10 * time.Second
	}
	r.mu.RLock()
	k, ok := r.keys[kid]
	age := r.now().Sub(r.fetched)
	never := r.fetched.IsZero()
	r.mu.RUnlock()
	if ok && age < maxAge {
		return k, nil
	}
	if never || age >= minRefresh {
		if err := r.Refresh(ctx); err != nil && !ok {
			return nil, err
		}
		r.mu.RLock()
		k, ok = r.keys[kid]
		r.mu.RUnlock()
	}
	if !ok {
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	return k, nil
}

// Refresh fetches the key set now (shared by concurrent callers).
func (r *RemoteJWKS) Refresh(ctx context.Context) error {
	_, err, _ := r.sf.Do("jwks", func() (any, error) {
		err := r.fetch(ctx)
		r.mu.Lock()
		r.lastErr = err
		if err != nil && r.fetched.IsZero() {
			// Remember the failed attempt so MinRefresh also paces retries.
			r.fetched = r.now().Add(-time.Hour * 24 * 365)
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

