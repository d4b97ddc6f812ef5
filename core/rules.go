package core

import (
	"net/url"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/configfile"
	"github.com/edgeway/edgeway/core/oauth"
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
	// Token lifetimes can also be set as parameters; they override the config.
	ParamAccessTokenTTL  = policy.ParamAccessTokenTTL
	ParamRefreshTokenTTL = policy.ParamRefreshTokenTTL
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

// Trust store names (S-8, S-11).
const (
	TrustTomcat    = policy.TrustTomcat
	TrustPhoneEdge = policy.TrustPhoneEdge
)

// Node roles (S-13).
const (
	RolePublisher  = policy.RolePublisher
	RoleSubscriber = policy.RoleSubscriber
)

// ErrPortRange is returned for a SIP port outside 1024-49151 (S-11).
var ErrPortRange = policy.ErrPortRange

// ValidatePort checks a SIP Phone OAuth or MRA port (S-11).
func ValidatePort(name string, p int) error { return policy.ValidatePort(name, p) }

// OAuthCapable reports whether a device model may use SIP OAuth (S-5).
func OAuthCapable(model string) bool { return policy.OAuthCapable(model) }

// ValidateProfile checks a phone security profile's settings together
// (S-5, S-15, S-16).
func ValidateProfile(p store.SecurityProfile) error { return policy.ValidateProfile(p) }

// OAuth names (see core/oauth).
const (
	// GrantTypeActivationCode is the grant a phone uses to redeem its
	// activation code (S-17).
	GrantTypeActivationCode = oauth.GrantTypeActivationCode
	// ClientAddressHeader is believed only from admitted edges (S-12).
	ClientAddressHeader = oauth.ClientAddressHeader
	// RevokedFamiliesPath lists revoked refresh-token families to edges.
	RevokedFamiliesPath = oauth.RevokedFamiliesPath
	// DefaultRefreshGrace and MaxRefreshGrace bound Config.RefreshGrace.
	DefaultRefreshGrace = oauth.DefaultRefreshGrace
	MaxRefreshGrace     = oauth.MaxRefreshGrace
)

// PhoneEdgeTrustFile is the path of the Phone-Edge-Trust bundle (S-8) on
// the config port (see core/configfile).
const PhoneEdgeTrustFile = configfile.PhoneEdgeTrustFile

// A device's config file and its parts (see core/configfile).
type (
	DeviceConfig         = configfile.DeviceConfig
	DeviceConfigSecurity = configfile.DeviceConfigSecurity
	DeviceConfigSIP      = configfile.DeviceConfigSIP
	DeviceConfigLine     = configfile.DeviceConfigLine
	DeviceConfigTURN     = configfile.DeviceConfigTURN
)

// ConfigFileDevice returns the device a config file path names
// (/SEP0011223344AA.cnf.xml → SEP0011223344AA), or ok false.
func ConfigFileDevice(path string) (device string, ok bool) { return configfile.ConfigFileDevice(path) }

// ConfigRequestFile is the config port's path rule (S-2, S-16): the file a
// request URL names, or ok false.
func ConfigRequestFile(u *url.URL) (file, device string, ok bool) {
	return configfile.ConfigRequestFile(u)
}

// The admin API's views, as the `edgeway admin` CLI decodes them (see
// core/admin).
type (
	APITokenView        = admin.APITokenView
	AuditView           = admin.AuditView
	CodeView            = admin.CodeView
	DeviceView          = admin.DeviceView
	ExpresswayEntryView = admin.ExpresswayEntryView
	FoundName           = admin.FoundName
	IssuedCode          = admin.IssuedCode
	ModeStatus          = admin.ModeStatus
	NodeView            = admin.NodeView
	ParamView           = admin.ParamView
	ProfileView         = admin.ProfileView
	RegistrationView    = admin.RegistrationView
	TrustCertView       = admin.TrustCertView
)

// API token lifetimes (issue 9 item 13; see core/admin).
const (
	LoginTokenTTL     = admin.LoginTokenTTL
	MaxLoginTokenTTL  = admin.MaxLoginTokenTTL
	ScriptTokenTTL    = admin.ScriptTokenTTL
	MaxScriptTokenTTL = admin.MaxScriptTokenTTL
	BootstrapTokenTTL = admin.BootstrapTokenTTL
)

// Errors of `utils sipOAuth-mode` (see core/admin).
var (
	ErrNotPublisher     = admin.ErrNotPublisher
	ErrNotExportAllowed = admin.ErrNotExportAllowed
)
