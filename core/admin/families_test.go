package admin

import (
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/store"
)

// a family's state as the API shows it: revoked wins; a family
// whose current refresh token has expired (or that has none) is expired.
func TestFamilyViewState(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tt := range []struct {
		name string
		f    store.FamilyInfo
		want string
	}{
		{"current token valid", store.FamilyInfo{ExpiresAt: now.Add(time.Hour)}, "active"},
		{"current token expired", store.FamilyInfo{ExpiresAt: now}, "expired"},
		{"no token left", store.FamilyInfo{}, "expired"},
		{"revoked", store.FamilyInfo{ExpiresAt: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute)}, "revoked"},
		{"revoked and expired", store.FamilyInfo{ExpiresAt: now.Add(-time.Hour), RevokedAt: now.Add(-2 * time.Hour)}, "revoked"},
	} {
		if got := familyView(tt.f, now).State; got != tt.want {
			t.Errorf("%s: state %q, want %q", tt.name, got, tt.want)
		}
	}
}
