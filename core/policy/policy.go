package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/edgeway/edgeway/internal/store"
)

// Enterprise parameters (names as stored; values documented beside each).
const (
	// ParamRefreshLoginFlow is "OAuth with Refresh Login Flow" (S-10):
	// "enabled" gives clients a refresh token with the access token.
	ParamRefreshLoginFlow = "oauth_refresh_login_flow"
	// ParamAccessTokenForDevices is "OAuth Access Token for Devices" (S-9):
	// "implicit" (default) or "explicit".
	ParamAccessTokenForDevices = "oauth_access_token_for_devices"
	// ParamClusterSIPOAuthMode is the read-only "Cluster SIPOAuth Mode"
	// (S-13): "enabled" or "disabled", set by `utils sipOAuth-mode`.
	ParamClusterSIPOAuthMode = "cluster_sipoauth_mode"
	// ParamExportControlled records that the cluster is registered with
	// export-controlled functionality allowed (S-7): "true" or "false".
	ParamExportControlled = "export_controlled_allowed"
	// ParamAccessTokenTTL and ParamRefreshTokenTTL set the token
	// lifetimes; they override the config.
	ParamAccessTokenTTL  = "access_token_ttl"
	ParamRefreshTokenTTL = "refresh_token_ttl"
)

// oauthModels are the device types whose security profile may enable
// OAuth (S-5). Keys are upper-case model names as stored on a device.
var oauthModels = map[string]string{
	"TCT": "Cisco Dual Mode for iPhone", "BOT": "Cisco Dual Mode for Android",
	"CSF": "Cisco Unified Client Services Framework", "TAB": "Cisco Jabber for Tablet",
	"UDT":  "Universal Device Template",
	"7811": "", "7821": "", "7832": "", "7841": "", "7861": "",
	"8811": "", "8832": "", "8832NR": "", "8841": "", "8845": "",
	"8851": "", "8851NR": "", "8861": "", "8865": "", "8865NR": "",
}

// softClients are the Jabber device types that may use the password grant
// on premises (S-18 forbids it over MRA).
var softClients = map[string]bool{"TCT": true, "BOT": true, "CSF": true, "TAB": true}

// SoftClient reports whether a device model is a Jabber soft client, the
// only devices the password grant serves (S-18: on premises only).
func SoftClient(model string) bool { return softClients[strings.ToUpper(model)] }

// ProfileReader is what CheckDeviceOAuth reads: the device's security
// profile.
type ProfileReader interface {
	GetSecurityProfile(ctx context.Context, name string) (store.SecurityProfile, error)
}

// ParamReader is what ParamIs reads: one enterprise parameter.
type ParamReader interface {
	GetParam(ctx context.Context, name string) (string, bool, error)
}

// OAuthCapable reports whether a device model may use SIP OAuth (S-5).
func OAuthCapable(model string) bool {
	_, ok := oauthModels[strings.ToUpper(strings.TrimSpace(model))]
	return ok
}

// Refusal reasons for registration; each names its rule.
var (
	ErrModelNotOAuth   = errors.New("S-5: device model cannot use SIP OAuth")
	ErrProfileNotOAuth = errors.New("S-15: security profile must be Encrypted, TLS, with Enable OAuth Authentication")
	ErrDigestInOAuth   = errors.New("S-16: digest authentication is not allowed in SIP OAuth mode")
	ErrModeDisabled    = errors.New("S-13/S-14: SIP OAuth mode is not enabled on this node")
	ErrExplicitOnly    = errors.New("S-9: OAuth Access Token for Devices is explicit: only tokens of an explicit onboarding (activation code, approved device grant) may register")
)

// CheckDeviceOAuth enforces S-5 and S-15 for one device.
func CheckDeviceOAuth(ctx context.Context, st ProfileReader, d store.Device) error {
	if !OAuthCapable(d.Model) {
		return fmt.Errorf("%w (device %s, model %q)", ErrModelNotOAuth, d.Name, d.Model)
	}
	p, err := st.GetSecurityProfile(ctx, d.SecurityProfile)
	if err != nil {
		return fmt.Errorf("%w (device %s has no usable profile %q: %v)", ErrProfileNotOAuth, d.Name, d.SecurityProfile, err)
	}
	if !p.OAuth || !strings.EqualFold(p.Mode, "encrypted") || !strings.EqualFold(p.Transport, "TLS") {
		return fmt.Errorf("%w (device %s, profile %q: mode=%s transport=%s oauth=%v)", ErrProfileNotOAuth, d.Name, p.Name, p.Mode, p.Transport, p.OAuth)
	}
	return nil
}

// ParamIs reports whether enterprise parameter name is want (case-blind),
// taking def when it is not set.
func ParamIs(ctx context.Context, st ParamReader, name, want, def string) (bool, error) {
	v, ok, err := st.GetParam(ctx, name)
	if err != nil {
		return false, err
	}
	if !ok {
		v = def
	}
	return strings.EqualFold(v, want), nil
}

// Profile refusals, each naming its rule.
var (
	ErrOAuthNeedsEncryptedTLS = errors.New("S-15: Enable OAuth Authentication needs Device Security Mode = Encrypted and Transport = TLS")
	ErrOAuthWithDigest        = errors.New("S-16: Digest Authentication is not supported with SIP OAuth")
	ErrOAuthWithTFTPEncrypted = errors.New("S-16: TFTP Encrypted Config is not supported with SIP OAuth (config is downloaded over HTTPS with the token)")
)

// ValidateProfile checks a phone security profile's settings together
// (S-5, S-15, S-16).
func ValidateProfile(p store.SecurityProfile) error {
	if p.Name == "" {
		return errors.New("a security profile needs a name")
	}
	switch p.Mode {
	case "non-secure", "authenticated", "encrypted":
	default:
		return fmt.Errorf("device security mode %q: want non-secure, authenticated or encrypted", p.Mode)
	}
	switch p.Transport {
	case "TCP", "UDP", "TLS", "TCP+UDP":
	default:
		return fmt.Errorf("transport %q: want TCP, UDP, TLS or TCP+UDP", p.Transport)
	}
	if p.Mode != "non-secure" && p.Transport != "TLS" {
		return fmt.Errorf("device security mode %s needs transport TLS", p.Mode)
	}
	if !p.OAuth {
		if p.RequireBoundTokens {
			return ErrBoundTokensNeedOAuth // core/policy/bound.go
		}
		return nil
	}
	if p.Mode != "encrypted" || p.Transport != "TLS" {
		return ErrOAuthNeedsEncryptedTLS
	}
	if p.Digest {
		return ErrOAuthWithDigest
	}
	if p.TFTPEncrypted {
		return ErrOAuthWithTFTPEncrypted
	}
	if p.DeviceType != "" && !OAuthCapable(p.DeviceType) {
		return fmt.Errorf("%w: OAuth is offered only to the device types of S-5, not %s", ErrModelNotOAuth, p.DeviceType)
	}
	return nil
}

// Trust store names (S-8, S-11).
const (
	TrustTomcat    = "tomcat-trust"
	TrustPhoneEdge = "phone-edge-trust"
)

// Node roles (S-13).
const (
	RolePublisher  = "publisher"
	RoleSubscriber = "subscriber"
)

// ErrPortRange is returned for a SIP port outside 1024-49151 (S-11).
var ErrPortRange = errors.New("S-11: SIP ports must be in 1024-49151")

// ValidatePort checks a SIP Phone OAuth or MRA port (S-11).
func ValidatePort(name string, p int) error {
	if p < 1024 || p > 49151 {
		return fmt.Errorf("%s %d: %w", name, p, ErrPortRange)
	}
	return nil
}
