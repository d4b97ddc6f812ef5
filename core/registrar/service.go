package registrar

import (
	"context"
	"log/slog"
	"time"

	"github.com/edgeway/edgeway/internal/store"
)

// Location is the node's location service (location.go): the bindings in
// memory, made durable by group commit. The registrar writes it; calls
// (core/proxy) and the admin API read and drop from it.
type Location = location

// LocationStore is what the location service needs of the store.
type LocationStore = locationStore

// NewLocation loads the live bindings from st and starts the writer and
// the purge; Close stops them.
func NewLocation(ctx context.Context, st LocationStore, now func() time.Time, log *slog.Logger) (*Location, error) {
	return newLocation(ctx, st, now, log)
}

// DropDevice removes every binding of device held in memory, durably.
func (l *location) DropDevice(ctx context.Context, device string) ([]store.Registration, error) {
	return l.dropDevice(ctx, device)
}

// BindingChange is what one update does to an AOR's bindings (Location.Update).
type BindingChange = bindingChange
