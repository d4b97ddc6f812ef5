// Package httpx builds the HTTP servers both tiers run: every timeout set,
// small header limits, errors into the tier's log.
package httpx

import (
	"bytes"
	"errors"
	"io"
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

// BufferBody reads r's body into memory, at most limit bytes, and puts it
// back as r.Body (with ContentLength set), so what runs next — a handler or
// a reverse proxy — never meets a body that fails half way. A body over the
// limit, whether its Content-Length says so or it turns out so while being
// read, is a *http.MaxBytesError: the caller answers 413 (RFC 9110 §15.5.14)
// and the connection is closed after the answer rather than drained.
func BufferBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		return &http.MaxBytesError{Limit: limit}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			w.Header().Set("Connection", "close")
		}
		return err
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	// Replayable: a proxy may send it to a second upstream when the first
	// could not be connected to (edge/cores.go).
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.TransferEncoding = nil
	return nil
}

// TooLarge reports whether err (from BufferBody or a MaxBytesReader) means
// the body was over its limit.
func TooLarge(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge)
}
