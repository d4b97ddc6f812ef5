package lookups

import (
	"context"
	"time"

	"github.com/edgeway/edgeway/internal/expirable"
	"github.com/edgeway/edgeway/internal/store"
)

// TTL is how long a node trusts what it read of configuration that
// every REGISTER consults: Expressway-C entries (S-12), devices, security
// profiles and enterprise parameters. Changes made through this node take
// effect at once (every write through the admin API purges the caches);
// changes made through another node of the cluster reach this one through
// the store's change feed (core/feed.go), which purges the caches within
// feedEvery. The TTL is only the backstop should the feed fail to be read.
const TTL = 30 * time.Second

// Source is the store reads the cache serves.
type Source interface {
	ListExpressways(ctx context.Context) ([]store.ExpresswayEntry, error)
	GetDevice(ctx context.Context, name string) (store.Device, error)
	GetSecurityProfile(ctx context.Context, name string) (store.SecurityProfile, error)
	GetParam(ctx context.Context, name string) (string, bool, error)
}

// Cache is the store with those reads cached, for the per-REGISTER path
// only: the admin API reads the store itself. Revocation checks and
// registrations are never cached.
type Cache struct {
	st          Source
	expressways *expirable.LRU[string, []store.ExpresswayEntry]
	devices     *expirable.LRU[string, store.Device]
	profiles    *expirable.LRU[string, store.SecurityProfile]
	params      *expirable.LRU[string, paramValue]
}

type paramValue struct {
	v  string
	ok bool
}

// New caches st's reads for ttl.
func New(st Source, ttl time.Duration) *Cache {
	return &Cache{st: st,
		expressways: expirable.NewLRU[string, []store.ExpresswayEntry](1, nil, ttl),
		devices:     expirable.NewLRU[string, store.Device](100_000, nil, ttl),
		profiles:    expirable.NewLRU[string, store.SecurityProfile](1_000, nil, ttl),
		params:      expirable.NewLRU[string, paramValue](1_000, nil, ttl),
	}
}

// Purge forgets everything: after any write through this node's admin API.
func (l *Cache) Purge() {
	l.expressways.Purge()
	l.devices.Purge()
	l.profiles.Purge()
	l.params.Purge()
}

// cachedGet returns the cached value or loads it; only successes are kept.
func cachedGet[V any](c *expirable.LRU[string, V], key string, load func() (V, error)) (V, error) {
	if v, ok := c.Get(key); ok {
		return v, nil
	}
	v, err := load()
	if err == nil {
		c.Add(key, v)
	}
	return v, err
}

func (l *Cache) ListExpressways(ctx context.Context) ([]store.ExpresswayEntry, error) {
	return cachedGet(l.expressways, "", func() ([]store.ExpresswayEntry, error) { return l.st.ListExpressways(ctx) })
}

func (l *Cache) GetDevice(ctx context.Context, name string) (store.Device, error) {
	return cachedGet(l.devices, name, func() (store.Device, error) { return l.st.GetDevice(ctx, name) })
}

func (l *Cache) GetSecurityProfile(ctx context.Context, name string) (store.SecurityProfile, error) {
	return cachedGet(l.profiles, name, func() (store.SecurityProfile, error) { return l.st.GetSecurityProfile(ctx, name) })
}

func (l *Cache) GetParam(ctx context.Context, name string) (string, bool, error) {
	p, err := cachedGet(l.params, name, func() (paramValue, error) {
		v, ok, err := l.st.GetParam(ctx, name)
		return paramValue{v, ok}, err
	})
	return p.v, p.ok, err
}
