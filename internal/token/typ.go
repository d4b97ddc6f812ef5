package token

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// TypeAccess is the JOSE "typ" of every access token (RFC 9068 §2.1).
// KeySet.Sign sets it; Verify refuses any other (RFC 9068 §4, RFC 8725
// §3.11), so a JWT of another kind signed with the same key can never pass
// for an access token. Edgeway signs no other JWT today: refresh tokens are
// opaque ("ewr_…", looked up by hash), TURN credentials are HMACs and the
// refresh grace seals with AES-GCM. A JWT of another kind added later must
// carry its own typ.
const TypeAccess = "at+jwt"

// typeLegacy is the typ of the access tokens of releases before RFC 9068
// typing: golang-jwt's default header, {"typ": "JWT"}. Those releases
// signed no other JWT with the key, so a token of that type issued before
// the cutover (VerifierConfig.LegacyBefore) is an access token.
const typeLegacy = "JWT"

// ErrWrongType is wrapped (with ErrInvalid) by Verify's answer to a token
// whose typ is not at+jwt: of another type, or of the legacy format (typ
// JWT or none) and issued after the verifier's cutover.
var ErrWrongType = errors.New("token: not an access token (RFC 9068 §4, RFC 8725 §3.11: typ must be at+jwt)")

// IsAccessType tells whether a JOSE typ names an RFC 9068 access token:
// "at+jwt" or its full media type "application/at+jwt", compared without
// regard to case (RFC 7515 §4.1.9).
func IsAccessType(typ string) bool {
	t := strings.ToLower(typ)
	return t == TypeAccess || t == "application/"+TypeAccess
}

// checkType is the typ rule of Verify: at+jwt; or, during the transition
// from earlier releases, the legacy format (typ JWT, or no typ) on a token
// issued before the cutover. A token of any other type is never accepted.
func (v *Verifier) checkType(t *jwt.Token, c *Claims) error {
	raw, present := t.Header["typ"]
	typ, isString := raw.(string)
	switch {
	case present && isString && IsAccessType(typ):
		return nil
	case !present || (isString && strings.EqualFold(typ, typeLegacy)):
		if !v.cfg.LegacyBefore.IsZero() && c.IssuedAt != nil && c.IssuedAt.Before(v.cfg.LegacyBefore) {
			return nil
		}
		return fmt.Errorf("%w: %w: typ %q (the format before RFC 9068 typing) on a token issued after the upgrade", ErrInvalid, ErrWrongType, typ)
	}
	return fmt.Errorf("%w: %w: typ %q", ErrInvalid, ErrWrongType, fmt.Sprint(raw))
}

// SignTyped signs claims with the active key under the JOSE typ given ("":
// no typ header). Tests use it to make tokens of another type, or of the
// format of earlier releases, signed by a key verifiers trust; access
// tokens are signed with Sign.
func (ks *KeySet) SignTyped(typ string, c jwt.Claims) (string, error) {
	ks.mu.RLock()
	k := ks.active
	ks.mu.RUnlock()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = k.KID
	if typ == "" {
		delete(t.Header, "typ")
	} else {
		t.Header["typ"] = typ
	}
	s, err := t.SignedString(k.Private)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return s, nil
}
