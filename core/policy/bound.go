package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/edgeway/edgeway/internal/store"
)

// ErrBoundTokenRequired: the device's security profile requires
// certificate-bound tokens (RFC 8705; issue 15) and the token, or the
// token request, has no client certificate.
var ErrBoundTokenRequired = errors.New("RFC 8705: the device's security profile requires certificate-bound tokens")

// ErrBoundTokensNeedOAuth: "Require certificate-bound tokens" binds OAuth
// tokens, so a profile without OAuth cannot have it.
var ErrBoundTokensNeedOAuth = errors.New("RFC 8705: Require certificate-bound tokens needs Enable OAuth Authentication (S-15)")

// RequiresBoundTokens reports whether d's security profile has "Require
// certificate-bound tokens" ticked, and names the profile. A device with
// no profile (or one that is gone) has nothing that requires binding.
func RequiresBoundTokens(ctx context.Context, st ProfileReader, d store.Device) (string, bool, error) {
	if d.SecurityProfile == "" {
		return "", false, nil
	}
	p, err := st.GetSecurityProfile(ctx, d.SecurityProfile)
	if errors.Is(err, store.ErrNotFound) {
		return d.SecurityProfile, false, nil
	}
	if err != nil {
		return d.SecurityProfile, false, fmt.Errorf("policy: security profile %q of device %s: %w", d.SecurityProfile, d.Name, err)
	}
	return p.Name, p.RequireBoundTokens, nil
}
