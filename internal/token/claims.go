package token

import (
	"github.com/golang-jwt/jwt/v5"
)

// GrantTypeActivationCode is the OAuth grant_type a phone redeems its
// activation code with at /oauth2/token (S-17).
const GrantTypeActivationCode = "urn:edgeway:params:oauth:grant-type:activation-code"

// GrantTypeDeviceCode is the device authorization grant's grant_type (RFC
// 8628 §3.4): the phone polls /oauth2/token with its device_code.
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// How a token was obtained. Origin is the grant that started the refresh
// family; Grant is the grant that produced this particular token.
const (
	GrantActivationCode = "activation_code"
	GrantPassword       = "password"
	GrantRefresh        = "refresh_token"
)

// GrantDeviceCode is the origin of a family started by the device grant
// (RFC 8628) an administrator approved for a provisioned device: an
// explicit onboarding like an activation code, so S-9's explicit setting
// admits it (core/registrar checkExplicit).
const GrantDeviceCode = "device_code"

// Claims are the claims of an Edgeway access token. The subject is the device
// name (for example SEP0011223344AA).
type Claims struct {
	jwt.RegisteredClaims
	Grant  string `json:"grant"`         // grant that produced this token
	Origin string `json:"origin"`        // grant that started the family (S-9)
	Family string `json:"fam,omitempty"` // refresh-token family id
	MRA    bool   `json:"mra,omitempty"` // obtained through the edge (S-17, S-18)
	User   string `json:"usr,omitempty"` // username for password-grant tokens
	// ClientID is RFC 9068's client_id: the OAuth client the token was
	// issued to. Edgeway registers no clients: the phone is the client, so
	// it is the device (the subject) for every grant; a grant whose request
	// names a client_id would set that. Absent from the untyped tokens of
	// earlier releases.
	ClientID string `json:"client_id,omitempty"`
	// Cnf binds the token to the client certificate the phone presented
	// when it got it (RFC 8705 §3.1); nil for a bearer token.
	Cnf *Confirmation `json:"cnf,omitempty"`
}

// Device is the device the token was issued to.
func (c *Claims) Device() string { return c.Subject }
