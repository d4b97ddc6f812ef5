package relay

// TURN credentials die with their refresh-token family (issue 9, item 7;
// an administrator revokes a device's tokens; a replayed refresh
// token revokes its family). Each credential names the tag of its access
// token's family (turncred.FamilyTag). The edge asks the core every
// turn.revocation_poll which families were revoked
// (GET /internal/v1/revoked-families over the mTLS link, core/revocations.go),
// keeps their tags for as long as a credential of theirs can live, refuses
// those credentials on Allocate, Refresh and every other authenticated
// request (401), and closes the live allocations that were made with them.
//
// While the core cannot be reached the edge keeps what it knows and keeps
// asking: credentials of families revoked meanwhile work until it answers
// again (they expire with their access token anyway).

import (
	"sync"
	"time"

	"github.com/edgeway/edgeway/internal/turncred"
)

// maxRevokedFamilies bounds the revoked families an edge remembers.
const maxRevokedFamilies = 100_000

// revokedFamilies is a bounded set of family tags, each remembered until
// credentials of its family can no longer be valid. Safe for concurrent
// use.
type revokedFamilies struct {
	mu    sync.Mutex
	max   int
	until map[string]time.Time
}

func newRevokedFamilies(max int) *revokedFamilies {
	return &revokedFamilies{max: max, until: map[string]time.Time{}}
}

// add remembers tag until then; it reports whether tag is new.
func (r *revokedFamilies) add(tag string, until, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, known := r.until[tag]
	if known && old.After(now) {
		if until.After(old) {
			r.until[tag] = until
		}
		return false
	}
	if len(r.until) >= r.max {
		r.sweepLocked(now)
	}
	for len(r.until) >= r.max { // still full: forget the one that ends first
		var first string
		var at time.Time
		for k, v := range r.until {
			if first == "" || v.Before(at) {
				first, at = k, v
			}
		}
		delete(r.until, first)
	}
	r.until[tag] = until
	return true
}

func (r *revokedFamilies) has(tag string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.until[tag]
	return ok && until.After(now)
}

func (r *revokedFamilies) sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
}

func (r *revokedFamilies) sweepLocked(now time.Time) {
	for k, v := range r.until {
		if !v.After(now) {
			delete(r.until, k)
		}
	}
}

func (r *revokedFamilies) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.until)
}

// RevokeFamilies refuses, from now on and for keep, the TURN credentials
// of the refresh-token families ids (the core's family ids), and closes
// the live allocations made with them. It returns how many it closed.
func (t *Server) RevokeFamilies(ids []string, keep time.Duration) int {
	now := t.now()
	fresh := map[string]bool{}
	for _, id := range ids {
		if tag := turncred.FamilyTag(id); tag != "" && t.revoked.add(tag, now.Add(keep), now) {
			fresh[tag] = true
		}
	}
	if len(fresh) == 0 {
		return 0
	}
	// Added to the set before the relays are looked at: an allocation
	// registered after this scan is caught by AllocatePacketConn's check.
	t.mu.Lock()
	var doomed []*relayConn
	for r := range t.relays {
		if r.family != "" && fresh[r.family] {
			doomed = append(doomed, r)
		}
	}
	t.mu.Unlock()
	for _, r := range doomed {
		t.log.Info("closing a TURN allocation: its token family was revoked", "device", r.device, "relay", r.relayed)
		_ = r.Close() // pion's relay loop ends and deletes the allocation
	}
	return len(doomed)
}

// familyRevoked reports whether the family tag was revoked.
func (t *Server) familyRevoked(tag string) bool {
	return tag != "" && t.revoked.has(tag, t.now())
}
