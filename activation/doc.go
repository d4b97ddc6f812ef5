// Package activation issues and redeems device activation codes: the
// one-time onboarding secret of S-17 ("Activation Code Onboarding via MRA").
//
// # Codes
//
// A code is 16 decimal digits drawn uniformly from crypto/rand (rejection
// sampling, so every one of the 10^16 values is equally likely). It is shown
// to the administrator grouped as "1234-5678-9012-3456"; Parse also accepts
// groups separated by single spaces and the bare 16 digits, and nothing else.
//
// A code is bound to exactly one device when it is issued. Only
// HMAC-SHA256(secret, digits) is stored, keyed by a secret of at least 32
// bytes that every core node shares (see store.Store.Secret); the plaintext
// exists only in the Issue result (and the CSV written from it), so a copy of
// the database reveals no usable code. Each code also gets a random ID,
// unrelated to the code, by which it is listed and revoked.
//
// A code expires after Config.Validity (default 168 hours, as on Unified CM),
// is redeemed at most once across all core nodes (the store's conditional
// UPDATE decides), and issuing a new code for a device revokes that device's
// older unused codes.
//
// # Throttling
//
// With 10^16 codes, online guessing is already hopeless; the throttle makes it
// more so and keeps the store out of reach of brute force, without letting an
// attacker lock a legitimate phone out. Redemption uses a throttle.Limiter
// (internal/throttle, which documents the rules in full) with the source
// address as the source and the device named in the request as the subject:
//
//   - Sources are IPv4 addresses, or IPv6 /64 prefixes (one subscriber
//     holds a whole /64).
//   - Every failed redemption (malformed, unknown, wrong device, already
//     used, expired, revoked or locked code) counts one failure for the source and
//     one for the device, when the store has answered. Infrastructure
//     errors (the store is unreachable, the context ends) count nothing. A
//     success clears the history of its source and of its device.
//   - A source with at least MaxFailures failures (default 5) is locked for
//     BaseDelay·2^(failures−MaxFailures) (default base 1 s, so 1 s, 2 s,
//     4 s, ...), capped at MaxDelay (default 15 min), counted from its last
//     failure. A failure history is forgotten after Forget (default 1 h)
//     without failures; Forget must be at least MaxDelay.
//   - A device is locked by the same formula from its own failure count, but
//     the device lock applies only to sources that have themselves failed at
//     least once. A clean source, such as the legitimate phone arriving from
//     a new network, is never blocked by somebody else's failures on its
//     device; an attacker spreading guesses over many addresses gets one
//     guess per address while the device is locked.
//   - A source may have at most MaxInFlight redemptions (default 32) in
//     flight at once.
//   - While refused, Redeem returns a *ThrottledError (Scope ScopeSource,
//     ScopeDevice or ScopeInFlight, and RetryAfter) without touching the
//     store, and the refusal counts nothing and does not extend a lock.
//
// Because failures are counted when they are known rather than when an
// attempt is admitted, many phones behind one NAT address onboarding at once
// are not throttled for one another; the price is that a source can get up
// to MaxInFlight guesses through per lock window instead of one, each of
// which counts.
//
// A caller that refuses a request before redemption (the core's S-17 check)
// obtains the attempt with Service.Attempt, ends it with Fail when it
// refuses, and otherwise redeems within it with Service.RedeemAttempt, so
// such refusals are throttled and counted like wrong codes.
//
// # Per-device budget
//
// The throttle above is per process and per source: 2,000 addresses still
// got about 141 guesses a second through (issue 9). The per-device budget
// lives in the store of record instead, so it holds whatever the source
// and across every edge and core node sharing the store:
//
//   - A wrong guess naming a device is a well-formed code that matches no
//     code (ErrUnknown) or another device's code (ErrWrongDevice), sent
//     while the device has an outstanding code (unused, unrevoked,
//     unexpired). It is counted in the same store transaction that
//     looked the code up, so concurrent guesses are counted one by one:
//     at most MaxWrongGuesses are ever evaluated per window, never more.
//   - Not counted: malformed codes (they cannot match anything; they
//     still cost the source), a code of the device itself that is used,
//     revoked or expired (the caller holds a real code: not a guess),
//     guesses on a device without an outstanding code (nothing to guess
//     or lock), and requests refused before the code is looked up
//     (an unknown device, which still costs the source and, being
//     invalid_grant, an edge's failure budget; S-17 and S-5 policy
//     refusals, which cost the source). The grant requires the device
//     parameter: a request without it (or without a code) is refused
//     400 invalid_request before any code is looked up, so it is no guess
//     and nothing counts it.
//   - The guess that reaches DeviceBudget.MaxWrongGuesses (default 10) in
//     one Window (default 1 h, fixed, opened by its first wrong guess)
//     locks the device's outstanding code: from then on every redemption
//     naming the device fails with ErrLocked without the code even being
//     looked up, the right code included, so the lock is no oracle.
//   - Issue (the administrator re-issuing the code) revokes the locked
//     code, resets the count and clears this node's in-memory device
//     lock.
//
// The price is a denial of service the issue accepts: anyone who knows a
// device name can lock its code with MaxWrongGuesses wrong guesses; the
// administrator re-issues it. The core logs each lock at WARN with the
// device and the count.
//
// The throttle state lives in memory, per process, in two bounded LRU caches
// (sources and devices, MaxEntries each, default 100000), so memory stays
// bounded whatever an attacker sends; evicting an entry only forgets that
// key's history. In a cluster each core node throttles on its own and a
// restart forgets everything: an attacker gains at most a constant factor
// (the number of nodes) and, against 10^16 codes valid for a week, that is
// still hopeless.
package activation
