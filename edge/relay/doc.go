// Package relay is the edge's TURN relay (RFC 8656, pion/turn): phones outside the
// enterprise relay their SRTP through it. Credentials are the TURN REST
// API kind (internal/turncred), handed out with each token response and
// expiring no later than the access token.
//
// What pion/turn decides and what this package adds:
//   - 401: pion, when the AuthHandler (turncred.Verify) refuses the
//     username (malformed, expired, wrong realm) or MESSAGE-INTEGRITY does
//     not match the key (a forged credential).
//   - 486 Allocation Quota Reached: pion, when the QuotaHandler says the
//     device already holds turn.max_allocations_per_device allocations.
//   - 508 Insufficient Capacity: pion answers 508 whenever the relay
//     address generator fails, so the generator refuses when
//     turn.max_allocations are live (and, for the rare race of two
//     concurrent allocations by one device past the QuotaHandler, when the
//     device's quota is full), and for TCP relays (RFC 6062), which the
//     edge does not offer: pion has no hook to answer 442 for them.
//   - 300 Try Alternate instead of 508 when the relay is full and
//     turn.alternate_servers names other edges (alternate.go).
//   - 508, or 300 Try Alternate with turn.alternate_servers, for every new
//     Allocate once the edge drains (drain.go); live allocations
//     keep refreshing and relaying.
//   - 401 also when the credential's refresh-token family was revoked
//     (revoke.go); the family's live allocations are closed.
//   - 403: pion, when the PermissionHandler (the peer policy,
//     policy.go) refuses a peer in CreatePermission or RFC 6062
//     Connect. pion answers a refused ChannelBind with 401; the sockets
//     (sock.go, limiter.go) turn that one answer into the 403 RFC 8656 §12.2
//     prescribes.
//   - Relayed datagrams are metered per allocation and direction with a
//     token bucket (turn.max_bitrate) and dropped beyond it; datagrams to
//     a peer the policy refuses (the edge's own TURN, SIP and HTTPS ports
//     among them) are dropped and counted.
//   - TCP and TLS connections that hold no allocation are closed after
//     turn.tcp_idle_timeout (limiter.go).
//
// The parts, each in its own file: Config and its Validate (config.go);
// New, Close and the counts of live allocations (server.go); the
// credential check (auth.go) and revocation of token families
// (revoke.go); the per-device quota and the relay's capacity (quota.go);
// the peer policy (policy.go); metering (meter.go) and the token bucket
// (tokenbucket.go) of the relay sockets (relayconn.go); the UDP socket's
// answer rewriting (sock.go), over the listener batched by Config.BatchIO
// (internal/udpbatch: recvmmsg/sendmmsg); the TCP/TLS connection limiter and idle
// timeout (limiter.go); the ALTERNATE-SERVER redirect (alternate.go); the
// drain (drain.go). The field names of Config are the turn.* keys of the
// edge's configuration, which the edge maps to it (edge/turn.go).
//
// Goroutines: pion runs one read loop per UDP socket and listener, one
// per accepted TCP/TLS connection and one per allocation; all of them end
// when Server.Close closes the sockets, listeners, accepted connections and
// relay sockets. Idle timers of TCP connections are stopped when their
// connection closes.
package relay
