// Package throttle slows down online guessing of secrets (activation codes,
// passwords) by source address and by subject (the device or username the
// guess is about), without letting an attacker lock a legitimate user out
// and without throttling honest traffic that has not failed.
//
// # Attempts
//
// A caller asks Limiter.Begin to admit an attempt before it checks the
// secret, and ends the admitted attempt once the outcome is known:
//
//   - Fail: the secret was wrong (or the request was refused for a reason
//     that must cost the same, such as a policy refusal a prober could
//     otherwise use as an oracle). One failure is counted for the source
//     and one for the subject, at the time of the call.
//   - Succeed: the secret was right. The histories of the source and of
//     the subject are cleared.
//   - Abandon: no verdict (the store is unreachable, the context ended).
//     Nothing is counted.
//
// Ending an attempt again is a no-op, so `defer a.Abandon()` right after
// Begin releases an attempt on every path, panics included, without
// undoing a Fail or Succeed that came first.
//
// Failures are counted when they are known, not when an attempt is
// admitted: concurrent attempts that would all succeed (many phones behind
// one NAT address onboarding at once) are never throttled for one another.
//
// # Locks
//
// A key (a source or a subject) with at least MaxFailures failures (default
// 5) is locked for BaseDelay·2^(failures−MaxFailures) (default base 1 s, so
// 1 s, 2 s, 4 s, ...), capped at MaxDelay (default 15 min), counted from its
// last failure. A history is forgotten after Forget (default 1 h) without
// failures; Forget must be at least MaxDelay.
//
// Begin refuses, with an *Error saying which scope and for how long:
//
//   - Scope "source": the source is locked.
//   - Scope "subject": the subject is locked and this source has at least
//     one failure on record. A clean source, such as a legitimate phone
//     arriving from a new network, is never blocked by somebody else's
//     failures on its subject; an attacker spreading guesses over many
//     addresses gets one guess per address while the subject is locked.
//   - Scope "in-flight": the source already has MaxInFlight attempts
//     (default 32) in flight; RetryAfter is 1 s.
//
// A refused attempt changes nothing: it is not a failure and does not
// extend a lock. When a lock ends the source may try again, and a new
// failure locks it again, for twice as long.
//
// Because failures are counted when known, the attempts a source has in
// flight when it crosses MaxFailures are still decided: a source can get at
// most MaxInFlight guesses through per lock window instead of one, and each
// of them counts (a burst of 32 failures goes straight to the MaxDelay
// lock). MaxInFlight is the bound on that overshoot.
//
// # Sources
//
// Sources are keyed by SourceKey: an IPv4 address (also written
// IPv4-mapped) as itself, any other IPv6 address as its /64 prefix, since
// a single subscriber usually holds a whole /64 and could otherwise use a
// fresh address for every guess. A string that is not an IP address is
// used verbatim.
//
// # Budget
//
// A Limiter judges each source and subject apart, so an attacker who
// spreads guesses over thousands of addresses stays under every source's
// limit. A Budget is the complement: one token bucket of failures for
// everybody behind a node (the edge's budget of failed activation grants),
// Rate per second with Burst, refusing with Scope "budget" while it is
// spent. Like the Limiter it counts failures, not attempts, and when they
// are known: attempts in flight when it runs dry put it into debt, paid
// back before the next attempt is allowed.
//
// # Memory and scope
//
// The histories live in memory, per process, in two bounded LRU caches
// (sources and subjects, MaxEntries each, default 100000), so memory stays
// bounded whatever an attacker sends; evicting an entry only forgets that
// key's history. The in-flight counts live in a map whose entries are
// removed when their count returns to zero, so it is bounded by the
// number of attempts in flight. In a cluster each node throttles on its own
// and a restart forgets everything: an attacker gains at most a constant
// factor (the number of nodes).
package throttle
