package media

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// fakeRedirector is a UDP TURN server that challenges an Allocate (401)
// and answers the authenticated one 300 Try Alternate naming alt, signed
// with key (nil: no MESSAGE-INTEGRITY).
func fakeRedirector(t *testing.T, alt *net.UDPAddr, key stun.MessageIntegrity) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() != nil || m.Type != stun.NewType(stun.MethodAllocate, stun.ClassRequest) {
				continue
			}
			errType := stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse)
			var res *stun.Message
			if !m.Contains(stun.AttrMessageIntegrity) {
				res = stun.MustBuild(&stun.Message{TransactionID: m.TransactionID}, errType,
					&stun.ErrorCodeAttribute{Code: stun.CodeUnauthorized}, stun.NewRealm("edgeway.test"), stun.NewNonce("n0nce"))
			} else {
				setters := []stun.Setter{&stun.Message{TransactionID: m.TransactionID}, errType,
					&stun.ErrorCodeAttribute{Code: stun.CodeTryAlternate}, &stun.AlternateServer{IP: alt.IP, Port: alt.Port}}
				if key != nil {
					setters = append(setters, key)
				}
				res = stun.MustBuild(setters...)
			}
			_, _ = pc.WriteTo(res.Raw, from)
		}
	}()
	return pc.LocalAddr().String()
}

// RFC 8489 §10: a 300 to an authenticated Allocate is followed only when
// its MESSAGE-INTEGRITY checks under the client's own key. A forged one
// (none, or another key) is dropped (pion's client discards a response
// to a signed request that fails the check; redirectWatch checks again),
// the allocation fails, and the alternate it names never hears from the
// client.
func TestAllocateRelayIgnoresForgedRedirect(t *testing.T) {
	alt, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer alt.Close()
	var hits atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := alt.ReadFrom(buf); err != nil {
				return
			}
			hits.Add(1)
		}
	}()
	altAddr := alt.LocalAddr().(*net.UDPAddr)
	for name, key := range map[string]stun.MessageIntegrity{
		"no integrity":  nil,
		"another's key": stun.NewLongTermIntegrity("someone", "edgeway.test", "else"),
	} {
		server := fakeRedirector(t, altAddr, key)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := AllocateRelay(ctx, server, "udp", "user", "secret", "")
		cancel()
		if err == nil {
			t.Errorf("%s: allocated", name)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("a forged 300 was followed: the alternate got %d datagrams", n)
	}
	// The genuine redirect is followed: the alternate is asked.
	server := fakeRedirector(t, altAddr, stun.NewLongTermIntegrity("user", "edgeway.test", "secret"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := AllocateRelay(ctx, server, "udp", "user", "secret", ""); err == nil {
		t.Fatal("allocated through an alternate that never answers")
	}
	if hits.Load() == 0 {
		t.Fatal("a genuine 300 was not followed to its ALTERNATE-SERVER")
	}
}
