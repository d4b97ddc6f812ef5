package token

// Confirmation is the RFC 7800 "cnf" claim of a certificate-bound access
// token (RFC 8705 §3.1).
type Confirmation struct {
	// X5tS256 is the base64url SHA-256 thumbprint of the DER of the client
	// certificate the token is bound to.
	X5tS256 string `json:"x5t#S256,omitempty"`
}

// BoundTo is the confirmation claim of a token bound to the certificate
// with thumbprint x5t, nil (a bearer token) when x5t is "".
func BoundTo(x5t string) *Confirmation {
	if x5t == "" {
		return nil
	}
	return &Confirmation{X5tS256: x5t}
}

// CertThumbprint is the x5t#S256 the token is bound to (RFC 8705 §3.1),
// "" for a bearer token.
func (c *Claims) CertThumbprint() string {
	if c == nil || c.Cnf == nil {
		return ""
	}
	return c.Cnf.X5tS256
}
