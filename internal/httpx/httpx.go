// Package httpx builds the HTTP servers both tiers run: every timeout set,
// small header limits, errors into the tier's log.
package httpx

import (
	"log/slog"
	"net/http"
	"time"
)

// NewServer returns an http.Server for h with Edgeway's limits.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
