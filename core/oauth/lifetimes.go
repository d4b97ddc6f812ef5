package oauth

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/edgeway/edgeway/core/policy"
)

// Lifetimes are the token lifetimes in force: the enterprise parameters
// (any node may set them), else the configured ones.
type Lifetimes struct {
	st                    policy.ParamReader
	cfgAccess, cfgRefresh time.Duration
	log                   *slog.Logger

	// access and refresh are the lifetimes in force (the parameters, else
	// the config), reloaded from the store by Reload.
	access, refresh atomic.Int64
}

// read reads the access and refresh token lifetimes in force.
func (l *Lifetimes) read(ctx context.Context) (access, refresh time.Duration, err error) {
	access, refresh = l.cfgAccess, l.cfgRefresh
	for name, d := range map[string]*time.Duration{policy.ParamAccessTokenTTL: &access, policy.ParamRefreshTokenTTL: &refresh} {
		v, ok, err := l.st.GetParam(ctx, name)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			if parsed, err := time.ParseDuration(v); err == nil {
				*d = parsed
			}
		}
	}
	return access, refresh, nil
}

// Access is the access-token lifetime in force.
func (l *Lifetimes) Access() time.Duration {
	if v := l.access.Load(); v > 0 {
		return time.Duration(v)
	}
	return l.cfgAccess
}

// Refresh is the refresh-token lifetime in force.
func (l *Lifetimes) Refresh() time.Duration {
	if v := l.refresh.Load(); v > 0 {
		return time.Duration(v)
	}
	return l.cfgRefresh
}

// Reload reads the token-lifetime parameters (any node may set them).
func (l *Lifetimes) Reload(ctx context.Context) {
	a, r, err := l.read(ctx)
	if err != nil {
		l.log.Warn("reading token lifetimes", "err", err)
		return
	}
	l.access.Store(int64(a))
	l.refresh.Store(int64(r))
}
