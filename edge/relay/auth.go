package relay

// The credential check: TURN REST API credentials (internal/turncred) in
// this realm, whose token family is not revoked (revoke.go).

import (
	"errors"
	"strings"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/edgeway/edgeway/internal/turncred"
)

// errTURNFamilyRevoked: the credential's token family was revoked (401).
var errTURNFamilyRevoked = errors.New("relay: the credential's token family was revoked")

// authenticate is the pion AuthHandler: the username must be a live
// turncred username in this realm whose token family (if it names one) is
// not revoked; pion checks MESSAGE-INTEGRITY with the key. The user ID
// pion keys allocations by is the device and family (turnUserID).
func (t *Server) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	if ra.Realm != t.cfg.Realm {
		t.log.Debug("TURN request for another realm", "realm", ra.Realm, "remote", ra.SrcAddr)
		return "", nil, false
	}
	name, key, err := turncred.Verify(t.secret, ra.Realm, ra.Username, t.now())
	if err == nil && name.Family != "" && t.revoked.has(name.Family, t.now()) {
		err = errTURNFamilyRevoked
	}
	if err != nil {
		t.log.Debug("TURN credential refused", "username", ra.Username, "remote", ra.SrcAddr, "method", ra.Method.String(), "err", err)
		return "", nil, false
	}
	if ra.Method == stun.MethodChannelBind && ra.SrcAddr != nil {
		t.chanBindKeys.Add(ra.SrcAddr.String(), key)
	}
	if ra.Method == stun.MethodAllocate && ra.SrcAddr != nil && len(t.alternates) > 0 && (t.full() || t.isDraining()) {
		t.allocKeys.Add(ra.SrcAddr.String(), key) // for a 300 (alternate.go)
	}
	return turnUserID(name), key, true
}

// turnUserID is the user ID pion keys allocations by: "<device>" or
// "<device>:<family tag>". A Refresh must come with a credential of the
// same device and family as the Allocate.
func turnUserID(n turncred.Name) string {
	if n.Family == "" {
		return n.Device
	}
	return n.Device + ":" + n.Family
}

// splitUserID undoes turnUserID (device names hold no colon).
func splitUserID(id string) (device, family string) {
	device, family, _ = strings.Cut(id, ":")
	return device, family
}
