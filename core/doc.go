// Package core is the Unified CM role of Edgeway: the OAuth authorization
// server (activation-code, refresh and on-premises password grants; JWKS;
// RFC 7009 revocation), the SIP registrar on the Phone OAuth port (TLS,
// S-11) and the MRA port (mutual TLS, edge only, S-11/S-12), and the admin
// API the `edgeway admin` CLI speaks. Every SIP request passes sipx.Guard
// first (RFC 3261 §8.2: a missing, duplicated or garbled mandatory header
// is a 400 naming it; handler panics are recovered and counted).
//
// Rules owned here: S-2 (the registrar validates the token), S-5 (device
// models that may use OAuth), S-9 (implicit/explicit), S-10 (refresh login
// flow), S-11 (ports and listeners), S-12 (Expressway-C admission), S-13
// (cluster SIP OAuth mode), S-15/S-16 (security profile, no Digest),
// S-17/S-18 (activation via MRA only, no password over MRA), R-1 (key
// rotation), R-2 (revocation).
//
// cmd/edgeway builds a Server from a Config and runs it; tests hand Serve
// their own loopback listeners.
package core
