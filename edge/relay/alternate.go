package relay

// 300 Try Alternate (RFC 8656 §7.2 step 8, RFC 8489 §10 ALTERNATE-SERVER):
// when this relay holds turn.max_allocations and turn.alternate_servers
// names other edges, an authenticated Allocate is redirected to one of
// them (round robin), as an Expressway-E cluster peer does, instead of
// being refused 508.
//
// pion/turn has no hook that answers 300, and answering an Allocate before
// pion sees it would mean authenticating it here (nonce, realm,
// MESSAGE-INTEGRITY) a second time. So pion authenticates it as always;
// its QuotaHandler (TURN.quota, called only after authentication) refuses
// it when the relay is full, and the socket rewrites pion's answer — 486
// with MESSAGE-INTEGRITY — into 300 with ALTERNATE-SERVER, signed with the
// same long-term key, as channelBindRefusal does for ChannelBind (403).
// Only an answer the QuotaHandler marked for this client is rewritten; a
// device over its own quota still gets 486.

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/pion/stun/v4"
)

// alternateRedirect is an Allocate being redirected: the key of its
// authenticated request and the alternate server chosen for it.
type alternateRedirect struct {
	key []byte
	to  netip.AddrPort
}

// nextAlternate is the alternate server for the next redirect (round robin).
func (t *Server) nextAlternate() netip.AddrPort {
	n := t.altNext.Add(1) - 1
	return t.alternates[n%uint64(len(t.alternates))]
}

// Redirected counts the Allocate requests answered 300 Try Alternate.
func (t *Server) Redirected() uint64 { return t.redirected.Load() }

// redirect decides, for an authenticated Allocate from src that passed
// the device quota, whether it goes to an alternate server: the relay is
// full, or the edge drains (edge/drain.go), and alternates are
// configured. It records the redirect for the socket and reports true (the
// QuotaHandler then refuses, and pion's 486 becomes 300).
func (t *Server) redirect(src net.Addr) bool {
	if len(t.alternates) == 0 || src == nil {
		return false
	}
	why := "turn.max_allocations reached"
	switch {
	case t.isDraining():
		why = "the edge is draining"
	case !t.full():
		return false
	}
	key, ok := t.allocKeys.Get(src.String())
	if !ok {
		return false
	}
	to := t.nextAlternate()
	t.redirects.Add(src.String(), alternateRedirect{key: key, to: to})
	t.log.Debug("TURN allocation redirected: "+why, "remote", src, "alternate", to)
	return true
}

var allocateError = stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse).Value()

// tryAlternate rewrites pion's 486 to an Allocate that redirect marked for
// to into 300 Try Alternate with ALTERNATE-SERVER and MESSAGE-INTEGRITY
// under the request's key (RFC 8489 §10: the redirect of an authenticated
// request must be authenticated). ok is false for anything else, which is
// written unchanged.
func (t *Server) tryAlternate(p []byte, to net.Addr) ([]byte, bool) {
	if len(p) < 20 || binary.BigEndian.Uint16(p) != allocateError || to == nil || len(t.alternates) == 0 {
		return nil, false
	}
	r, ok := t.redirects.Peek(to.String())
	if !ok {
		return nil, false
	}
	m := &stun.Message{Raw: append([]byte(nil), p...)}
	var code stun.ErrorCodeAttribute
	if m.Decode() != nil || code.GetFrom(m) != nil || code.Code != stun.CodeAllocQuotaReached || !m.Contains(stun.AttrMessageIntegrity) {
		return nil, false
	}
	t.redirects.Remove(to.String())
	out, err := stun.Build(&stun.Message{TransactionID: m.TransactionID}, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeTryAlternate, Reason: []byte("Try Alternate")},
		&stun.AlternateServer{IP: r.to.Addr().AsSlice(), Port: int(r.to.Port())},
		stun.MessageIntegrity(r.key), stun.Fingerprint)
	if err != nil {
		return nil, false
	}
	t.redirected.Add(1)
	return out.Raw, true
}
