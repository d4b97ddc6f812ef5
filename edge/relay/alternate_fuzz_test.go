package relay

import (
	"net"
	"net/netip"
	"testing"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/pion/stun/v4"
)

// FuzzTURNTryAlternate feeds tryAlternate what pion might write to a
// client for which a redirect is pending. It never panics; it rewrites
// only an Allocate 486 that carries MESSAGE-INTEGRITY, and what it writes
// instead is a 300 Try Alternate with the same transaction ID, the chosen
// ALTERNATE-SERVER and a MESSAGE-INTEGRITY under the request's key.
func FuzzTURNTryAlternate(f *testing.F) {
	key := stun.NewLongTermIntegrity("1767225600:SEP001122334401", testRealm, "credential")
	allocErr := stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse)
	f.Add(stun.MustBuild(stun.TransactionID, allocErr, &stun.ErrorCodeAttribute{Code: stun.CodeAllocQuotaReached}, key).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, allocErr, &stun.ErrorCodeAttribute{Code: stun.CodeAllocQuotaReached}).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, allocErr, &stun.ErrorCodeAttribute{Code: stun.CodeInsufficientCapacity}, key).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse), key).Raw)
	f.Add([]byte{0x01, 0x13, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	alt := netip.MustParseAddrPort("10.77.2.12:3478")
	to := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 50000}
	f.Fuzz(func(t *testing.T, p []byte) {
		redirects, _ := lru.New[string, alternateRedirect](4)
		tt := &Server{alternates: []netip.AddrPort{alt}, redirects: redirects}
		redirects.Add(to.String(), alternateRedirect{key: key, to: alt})
		out, ok := tt.tryAlternate(p, to)
		in := &stun.Message{Raw: append([]byte(nil), p...)}
		if !ok {
			return
		}
		var code stun.ErrorCodeAttribute
		if in.Decode() != nil || in.Type != allocErr || code.GetFrom(in) != nil || code.Code != stun.CodeAllocQuotaReached || !in.Contains(stun.AttrMessageIntegrity) {
			t.Fatalf("rewrote %v, which is not an Allocate 486 with MESSAGE-INTEGRITY", in)
		}
		m := &stun.Message{Raw: out}
		if err := m.Decode(); err != nil {
			t.Fatalf("the 300 does not decode: %v", err)
		}
		var as stun.AlternateServer
		if m.Type != allocErr || m.TransactionID != in.TransactionID || code.GetFrom(m) != nil || code.Code != stun.CodeTryAlternate ||
			as.GetFrom(m) != nil || !as.IP.Equal(alt.Addr().AsSlice()) || as.Port != int(alt.Port()) {
			t.Fatalf("rewritten to %v", m)
		}
		if err := key.Check(m); err != nil {
			t.Fatalf("the 300's MESSAGE-INTEGRITY: %v", err)
		}
		if _, pending := redirects.Peek(to.String()); pending {
			t.Fatal("the redirect is still pending after its 300 was written")
		}
	})
}
