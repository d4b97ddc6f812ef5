// Package token holds what the core and the edge share about access tokens:
// the claims, the signing key set and its JWKS form, a verifier that pins
// algorithm, issuer, audience and expiry, a bounded cache of verified tokens,
// and a JWKS source fetched from the core (the edge's pre-check).
//
// Access tokens are JWTs signed with ES256 and carry a kid (R-1: keys can be
// regenerated; old keys stay published until their tokens expire). Refresh
// tokens are opaque and never pass through this package.
//
// Used by core (signing, registrar verification) and edge (pre-check against
// the core's JWKS).
package token
