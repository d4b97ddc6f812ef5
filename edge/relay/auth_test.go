package relay

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/edgeway/edgeway/internal/turncred"
)

// No credential, a forged one, an expired one and a malformed username
// are all refused with 401 (RFC 8656 §7.2 / RFC 8489 §9.2).
func TestTURNRefusesBadCredentials(t *testing.T) {
	f := startTURN(t, turnFixtureOptions{})
	user, _ := creds("SEP001122334401", time.Hour)
	expUser, expPass := creds("SEP001122334401", -time.Minute)
	for _, tc := range []struct{ name, user, pass string }{
		{"no credentials", "", ""},
		{"forged", user, turncred.Password([]byte(strings.Repeat("f", 40)), user)},
		{"wrong password", user, "password"},
		{"expired", expUser, expPass},
		{"not a TURN REST username", "SEP001122334401", turncred.Password(testTURNSecret, "SEP001122334401")},
		{"another device's credential", strings.Replace(user, "SEP001122334401", "SEP001122334402", 1), turncred.Password(testTURNSecret, user)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.dial(t, "udp", tc.user, tc.pass)
			relay, err := c.c.Allocate()
			if err == nil {
				relay.Close()
				t.Fatal("allocation succeeded")
			}
			if code := turnCode(err); code != 401 {
				t.Fatalf("refused with %v (code %d), want 401", err, code)
			}
		})
	}
	if n := f.srv.Allocations(); n != 0 {
		t.Errorf("Allocations() = %d after refusals", n)
	}

	// An Allocate without MESSAGE-INTEGRITY gets the 401 challenge naming
	// the realm.
	c, err := net.Dial("udp4", f.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}, stun.Fingerprint)
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	res := &stun.Message{Raw: buf[:n]}
	if err := res.Decode(); err != nil {
		t.Fatal(err)
	}
	var code stun.ErrorCodeAttribute
	var realm stun.Realm
	if err := code.GetFrom(res); err != nil || code.Code != stun.CodeUnauthorized {
		t.Errorf("unauthenticated Allocate: %v %v, want 401", code, err)
	}
	if err := realm.GetFrom(res); err != nil || realm.String() != testRealm {
		t.Errorf("challenge realm %q, %v; want %q", realm, err, testRealm)
	}
}
