package relay

import (
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/edgeway/edgeway/internal/turncred"
)

func familyCreds(device, family string, ttl time.Duration) (string, string) {
	return turncred.IssueName(testTURNSecret, turncred.Name{Device: device, Family: turncred.FamilyTag(family)}, time.Now().Add(ttl))
}

// Issue 9, item 7 (the edge's half): once a family is revoked, Allocate
// and Refresh with its credentials get 401 and its live allocations are
// closed; another family of the same device is untouched.
func TestTURNRevokedFamily(t *testing.T) {
	f := startTURN(t, turnFixtureOptions{})
	const device = "SEP00AABBCC04"
	u, p := familyCreds(device, "family-1", time.Hour)
	c := dialRaw(t, "udp4", f.udp, u, p)
	if res := c.allocate(false); !isSuccess(res) {
		t.Fatalf("Allocate: %v (code %d)", res, errorCode(res))
	}
	other, _ := f.allocate(t, "udp", device) // no family
	u2, p2 := familyCreds(device, "family-2", time.Hour)
	c2 := dialRaw(t, "tcp4", f.tcp, u2, p2)
	if res := c2.allocate(false); !isSuccess(res) {
		t.Fatalf("Allocate (family 2): %v", res)
	}
	if n := f.srv.DeviceAllocations(device); n != 3 {
		t.Fatalf("DeviceAllocations = %d, want 3", n)
	}

	if n := f.srv.RevokeFamilies([]string{"family-1", "unknown"}, time.Hour); n != 1 {
		t.Errorf("RevokeFamilies closed %d allocations, want 1", n)
	}
	waitFor(t, "the revoked family's allocation to close", func() bool { return f.srv.DeviceAllocations(device) == 2 })
	if n := f.srv.RevokeFamilies([]string{"family-1"}, time.Hour); n != 0 {
		t.Errorf("revoking again closed %d", n)
	}
	if res := c.refresh(600); errorCode(res) != stun.CodeUnauthorized {
		t.Errorf("Refresh with a revoked family's credential: %v (code %d), want 401", res, errorCode(res))
	}
	fresh := dialRaw(t, "udp4", f.udp, u, p)
	if res := fresh.allocate(false); errorCode(res) != stun.CodeUnauthorized {
		t.Errorf("Allocate with a revoked family's credential: %v (code %d), want 401", res, errorCode(res))
	}
	// Family 2 and the family-less credential keep working.
	if res := c2.refresh(600); !isSuccess(res) {
		t.Errorf("Refresh of another family: %v (code %d)", res, errorCode(res))
	}
	peer := udpPeer(t)
	relayUntilReceived(t, other, peer, []byte("still relaying"))
}

// The revoked set is bounded and forgets a family once its credentials
// cannot be valid any more.
func TestRevokedFamiliesBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	r := newRevokedFamilies(3)
	for i, tag := range []string{"a", "b", "c"} {
		if !r.add(tag, now.Add(time.Duration(i+1)*time.Hour), now) {
			t.Fatalf("%s not new", tag)
		}
	}
	if r.add("b", now.Add(time.Hour), now) {
		t.Error("b added twice")
	}
	r.add("d", now.Add(time.Hour), now) // full: "a" ends first and goes
	if r.has("a", now) || !r.has("d", now) || r.len() != 3 {
		t.Errorf("after overflow: a %v, d %v, len %d", r.has("a", now), r.has("d", now), r.len())
	}
	if r.has("c", now.Add(3*time.Hour)) {
		t.Error("c remembered past its end")
	}
	r.add("e", now.Add(time.Hour), now.Add(2*time.Hour+time.Minute)) // expired ones are swept first
	if r.len() != 2 || !r.has("c", now.Add(2*time.Hour+time.Minute)) {
		t.Errorf("after sweep: len %d", r.len())
	}
}
