// Package proxy routes calls: INVITE and everything in a dialog between
// registered lines, as a stateful proxy with Record-Route (RFC 3261 §16),
// across the core's two SIP ports (core/registrar.Port). A new INVITE needs
// the caller's valid Bearer token (RFC 8898, S-2, R-2; S-13 SIP OAuth mode;
// S-5/S-15 device) and comes from the caller's own line; requests inside an
// established dialog do not, so a token that expires mid-call does not drop
// the call. A phone is reached only over the connection its binding came
// in on, for an MRA phone the edge's with the binding's Path as Route
// (RFC 3327, RFC 5626).
//
// core.Server builds one Proxy and installs its handlers on both ports.
package proxy
