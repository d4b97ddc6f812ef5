// Package oauth is the core's OAuth authorization server: the token
// endpoint (/oauth2/token) with the activation-code grant (S-17, activation
// via MRA only for devices that allow it, in the entry's domain), the
// refresh grant with rotation, replay detection and the refresh grace
// (S-10, RFC 9700 §4.14.2), the on-premises password grant for soft
// clients (S-18: never over MRA); RFC 7009 revocation; the signing
// key ring and JWKS (R-1, Keys); the access-token check the registrar and
// the config server run (S-2, R-2, CheckAccessToken), answered from the
// change feed (feed.go); and the revoked-families list edges poll.
//
// Which peer is calling is decided by the connection only: a client
// certificate admitted as an Expressway-C (core/admission, S-12) makes a
// request MRA traffic (PeerOf). core.Server builds one Server and mounts
// its handlers.
package oauth
