package store

import (
	"context"
	"strings"
)

// OpenURL opens the store core.yaml's `store:` names: a PostgreSQL server
// shared by a cluster's nodes when it is a postgres:// or postgresql://
// URL, else the embedded SQLite database at that path (the default, and
// quickstart's).
func OpenURL(ctx context.Context, s string) (Store, error) {
	if IsPostgresURL(s) {
		return OpenPostgres(ctx, s)
	}
	return Open(ctx, s)
}

// IsPostgresURL reports whether s names a PostgreSQL server.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}
