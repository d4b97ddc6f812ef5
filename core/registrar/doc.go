// Package registrar is the core's SIP registrar on its two listeners
// (S-11): Port is one listener (the Phone OAuth port, TLS, or the MRA
// port, mutual TLS, edges only) with its own sipgo user agent, the guard
// every request passes (RFC 3261 §8.2) and the request accounting
// (issue 9 item 10); Registrar handles REGISTER (RFC 3261 §10.3, RFC 8898,
// RFC 3327 Path); Location is the location service, bindings in memory made
// durable by group commit.
//
// A REGISTER passes one admission chain, registerChain in registrar.go,
// each check one rule, named, in order, and unit-tested alone
// (chain_test.go): S-13/S-14 SIP OAuth mode; S-12 the Expressway-C behind
// an MRA connection (core/admission); the Bearer token, no Digest (RFC
// 8898, S-2, S-16, R-2: core/oauth); the token's device; S-5/S-15 device
// model and security profile (core/policy); S-9 explicit tokens; the served
// domain; the device owns the line. Then RFC 3261 §10.3 step 7 ordering
// and the bindings bound (maxBindingsPerAOR) run inside the location
// service's change.
//
// core.Server builds the ports, the registrar and the location service;
// core/proxy routes calls over the same ports.
package registrar
