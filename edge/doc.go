// Package edge is the Expressway role of Edgeway, in the DMZ: public HTTPS
// for onboarding and token refresh (forwarded to the core over mutual TLS,
// S-17/S-18 are decided by the core, which can tell MRA traffic by the
// edge's certificate), config download (GET /<device>.cnf.xml and
// /phone-edge-trust.pem, proxied to the core's config server with the
// edge's public SIP address and URL, S-16/S-20), and a public SIP/TLS front
// that refuses a message missing, duplicating or garbling a mandatory
// header before anything else (400 naming the header, RFC 3261 §8.2 and
// §16.3, sipx.Guard), pre-checks bearer
// tokens against the core's JWKS, adds Path (RFC 3327) and Via, forwards
// over mutual TLS to the core's MRA port (S-11), and relays responses back
// on the phone's own connection. Its TURN relay (package edge/relay,
// started by turn.go) relays only to peers its policy allows (never the
// core, its own listeners or, by default, non-public addresses), closes
// idle TCP/TLS connections, drops credentials whose token family the core
// revoked (revocations.go polls the core) and, when full, sends clients
// to another edge's relay with 300 Try Alternate (turn.alternate_servers);
// the token proxy hands phones its credentials with each token response
// (tokenproxy.go).
//
// The core is an ordered list of core nodes (cores.go, corecheck.go;
// Unified CM's Call Manager Group order, issue 11): every node is
// health-checked with SIP OPTIONS over a mutual-TLS connection the edge
// keeps to each, and new SIP requests and all HTTPS go to the first node
// that is up, the next when it is not; requests inside a dialog go to the
// node whose Record-Route they carry.
//
// Activation-code grants pass a budget of failures shared by every source
// (edge/budget.go, issue 9): once too many of them have failed, the edge
// answers them 429 slow_down itself, without reaching the core.
//
// The certificate phones see on every public listener comes from files
// (tls.public_cert, re-read when they change) or from an ACME CA through
// certmagic (acme.go, tls.acme): obtained at start, renewed in the
// background and swapped in per handshake, so open phone connections keep
// theirs. The edge→core client certificate always comes from files (S-12).
//
// The edge keeps no state that cannot be lost (tls.acme.storage aside): tokens, codes and bindings
// live in the core (the failure budget is in memory and starts full). It never imports package core; the two talk over the
// network (internal/traversal).
package edge
