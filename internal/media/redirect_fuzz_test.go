package media

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

func signed300(key stun.MessageIntegrity, alt netip.AddrPort) []byte {
	setters := []stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeTryAlternate}, &stun.AlternateServer{IP: alt.Addr().AsSlice(), Port: int(alt.Port())}}
	if key != nil {
		setters = append(setters, key)
	}
	return stun.MustBuild(setters...).Raw
}

// FuzzRedirectWatch feeds what a TURN server might send to the watch on
// the client's socket. It never panics, and it takes an alternate server
// only from an Allocate 300 whose MESSAGE-INTEGRITY checks under the
// client's key (RFC 8489 §10).
func FuzzRedirectWatch(f *testing.F) {
	const user, realm, pass = "1767225600:SEP001122334401", "edgeway.test", "credential"
	key := stun.NewLongTermIntegrity(user, realm, pass)
	alt := netip.MustParseAddrPort("10.77.2.12:3478")
	f.Add(signed300(key, alt))
	f.Add(signed300(nil, alt))
	f.Add(signed300(stun.NewLongTermIntegrity(user, realm, "forged"), alt))
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeUnauthorized}, stun.NewRealm(realm), stun.NewNonce("n")).Raw)
	f.Add([]byte{0x01, 0x13, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, raw []byte) {
		w := &redirectWatch{username: user, password: pass, realm: realm}
		w.inspect(raw)
		got := w.alternate()
		if !got.IsValid() {
			return
		}
		m := &stun.Message{Raw: append([]byte(nil), raw...)}
		if err := m.Decode(); err != nil {
			t.Fatalf("alternate %s taken from an undecodable message: %v", got, err)
		}
		var code stun.ErrorCodeAttribute
		if m.Type != allocateErrorType || code.GetFrom(m) != nil || code.Code != stun.CodeTryAlternate {
			t.Fatalf("alternate %s taken from %v", got, m)
		}
		if err := key.Check(m); err != nil {
			t.Fatalf("alternate %s taken from a 300 whose MESSAGE-INTEGRITY fails: %v", got, err)
		}
		var as stun.AlternateServer
		if as.GetFrom(m) != nil || !net.IP(got.Addr().AsSlice()).Equal(as.IP) || int(got.Port()) != as.Port {
			t.Fatalf("alternate %s is not the message's ALTERNATE-SERVER %v", got, as)
		}
	})
}

// The watch takes the ALTERNATE-SERVER of a 300 signed with the client's
// key, and nothing from an unsigned or forged one.
func TestRedirectWatchTakesOnlySignedAlternate(t *testing.T) {
	const user, realm, pass = "u", "edgeway.test", "p"
	alt := netip.MustParseAddrPort("10.77.2.12:3478")
	for name, tc := range map[string]struct {
		key  stun.MessageIntegrity
		want bool
	}{
		"signed":   {stun.NewLongTermIntegrity(user, realm, pass), true},
		"unsigned": {nil, false},
		"forged":   {stun.NewLongTermIntegrity(user, realm, "x"), false},
	} {
		w := &redirectWatch{username: user, password: pass, realm: realm}
		w.inspect(signed300(tc.key, alt))
		if got := w.alternate(); got.IsValid() != tc.want || (tc.want && got != alt) {
			t.Errorf("%s: alternate %v, want taken=%v (%s)", name, got, tc.want, alt)
		}
	}
}
