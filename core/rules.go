package core

import (
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/store"
)

// The rules of core/policy under the names callers of core have always
// used (cmd/edgeway, internal/testenv, internal/e2e).

// Enterprise parameters (see core/policy).
const (
	ParamRefreshLoginFlow      = policy.ParamRefreshLoginFlow
	ParamAccessTokenForDevices = policy.ParamAccessTokenForDevices
	ParamClusterSIPOAuthMode   = policy.ParamClusterSIPOAuthMode
	ParamExportControlled      = policy.ParamExportControlled
)

// Refusal reasons, each naming its rule (see core/policy).
var (
	ErrModelNotOAuth          = policy.ErrModelNotOAuth
	ErrProfileNotOAuth        = policy.ErrProfileNotOAuth
	ErrDigestInOAuth          = policy.ErrDigestInOAuth
	ErrModeDisabled           = policy.ErrModeDisabled
	ErrExplicitOnly           = policy.ErrExplicitOnly
	ErrOAuthNeedsEncryptedTLS = policy.ErrOAuthNeedsEncryptedTLS
	ErrOAuthWithDigest        = policy.ErrOAuthWithDigest
	ErrOAuthWithTFTPEncrypted = policy.ErrOAuthWithTFTPEncrypted
)

// OAuthCapable reports whether a device model may use SIP OAuth (S-5).
func OAuthCapable(model string) bool { return policy.OAuthCapable(model) }

// ValidateProfile checks a phone security profile's settings together
// (S-5, S-15, S-16).
func ValidateProfile(p store.SecurityProfile) error { return policy.ValidateProfile(p) }
