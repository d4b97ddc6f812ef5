package e2e

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/media"
	"github.com/edgeway/edgeway/internal/testenv"
)

// recordingConn keeps a copy of every datagram written through it: what
// the phone hands the TURN relay.
type recordingConn struct {
	net.PacketConn
	mu  sync.Mutex
	out [][]byte
}

func (c *recordingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	c.out = append(c.out, append([]byte(nil), b...))
	c.mu.Unlock()
	return c.PacketConn.WriteTo(b, addr)
}

// relayCall is a call from A to B (line 1002) in which each side holds a
// relay on the edge's TURN server, allocated with the credentials of its
// own token response, and the SDES keys travel in the SDP over TLS.
type relayCall struct {
	ra, rb           *media.Relay
	sessA, sessB     *media.Session
	peerOfA, peerOfB net.Addr // where A and B send: the other's relayed address
	call             *bench.Call
}

// setUpRelayCall places the call and permits each relay to the other.
// bSends, when set, picks the key B's session sends with, given the one
// its answer announced (a wrong-key test); by default it is that one.
func setUpRelayCall(t *testing.T, ctx context.Context, env *testenv.Env, a, b *bench.Phone, bSends func(media.Crypto) (media.Crypto, error)) *relayCall {
	t.Helper()
	ta, tb := a.Tokens().TURN, b.Tokens().TURN
	if ta == nil || tb == nil || ta.Username == "" || ta.TTL <= 0 || ta.TTL > int64(a.Tokens().ExpiresIn) {
		t.Fatalf("token responses carry no usable turn object: %+v %+v", ta, tb)
	}
	rc := &relayCall{}
	var err error
	if rc.ra, err = media.AllocateRelay(ctx, env.Info.EdgeTURN, "udp", ta.Username, ta.Credential, env.Info.TURNRealm); err != nil {
		t.Fatalf("A's allocation: %v", err)
	}
	t.Cleanup(func() { rc.ra.Close() })
	if rc.rb, err = media.AllocateRelay(ctx, env.Info.EdgeTURN, "udp", tb.Username, tb.Credential, env.Info.TURNRealm); err != nil {
		t.Fatalf("B's allocation: %v", err)
	}
	t.Cleanup(func() { rc.rb.Close() })
	offer, err := media.NewOffer(rc.ra.Addr())
	if err != nil {
		t.Fatal(err)
	}
	type answered struct {
		sess *media.Session
		peer netip.AddrPort
	}
	bSide := make(chan answered, 1)
	b.SetAnswerer(func(body []byte) ([]byte, int) {
		off, err := media.ParseSDP(body)
		if err != nil {
			return nil, 488
		}
		ans, chosen, err := media.Answer(off, rc.rb.Addr())
		if err != nil {
			return nil, 488
		}
		send := ans.Crypto[0]
		if bSends != nil {
			if send, err = bSends(send); err != nil {
				return nil, 500
			}
		}
		sess, err := media.NewSession(send, chosen)
		if err != nil {
			return nil, 500
		}
		bSide <- answered{sess, off.Addr}
		return ans.Marshal(), 0
	})
	if rc.call, err = a.Dial(ctx, "1002", offer.Marshal()); err != nil {
		t.Fatalf("dial: %v", err)
	}
	ans, err := media.ParseSDP(rc.call.RemoteSDP)
	if err != nil {
		t.Fatal(err)
	}
	local, remote, err := media.AcceptAnswer(offer, ans)
	if err != nil {
		t.Fatal(err)
	}
	if rc.sessA, err = media.NewSession(local, remote); err != nil {
		t.Fatal(err)
	}
	bs := <-bSide
	rc.sessB = bs.sess
	if ans.Addr != rc.rb.Addr() || bs.peer != rc.ra.Addr() {
		t.Fatalf("SDP addresses %v / %v are not the relayed addresses %v / %v", ans.Addr, bs.peer, rc.rb.Addr(), rc.ra.Addr())
	}
	rc.peerOfA, rc.peerOfB = net.UDPAddrFromAddrPort(rc.rb.Addr()), net.UDPAddrFromAddrPort(rc.ra.Addr())
	if err := rc.ra.Permit(rc.peerOfA); err != nil {
		t.Fatal(err)
	}
	if err := rc.rb.Permit(rc.peerOfB); err != nil {
		t.Fatal(err)
	}
	return rc
}

// S-4, issue 4 acceptance 1: two MRA phones onboard, register and call
// through edge and core; each allocates a relay on the edge's TURN server
// with the credentials from its token response; SDES keys travel in the
// SDP over TLS; SRTP flows both ways through the relays; the relay never
// sees the plaintext.
func TestSRTPCallThroughEdgeTURN(t *testing.T) {
	const talk = 10 * time.Second
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	rc := setUpRelayCall(t, ctx, env, a, b, nil)
	ca := &recordingConn{PacketConn: rc.ra.PacketConn()}
	cb := &recordingConn{PacketConn: rc.rb.PacketConn()}
	var sa, sb media.Stream
	if err := sa.Start(ctx, ca, rc.peerOfA, rc.sessA, talk); err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx, cb, rc.peerOfB, rc.sessB, talk); err != nil {
		t.Fatal(err)
	}
	statsA, errA := sa.Wait()
	statsB, errB := sb.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("streams: %v / %v", errA, errB)
	}
	for who, st := range map[string]media.Stats{"A": statsA, "B": statsB} {
		if st.Sent != 500 || st.Received != 500 || st.Lost != 0 || st.AuthFailures != 0 || st.PlayedOut != 500 {
			t.Errorf("%s: %+v; want 500 sent, 500 received and played, no loss, no auth failure", who, st)
		}
	}
	for who, c := range map[string]*recordingConn{"A": ca, "B": cb} {
		c.mu.Lock()
		for _, d := range c.out {
			if bytes.Contains(d, []byte(media.PlaintextMarker)) {
				t.Errorf("%s handed the relay plaintext", who)
				break
			}
		}
		if len(c.out) < 500 {
			t.Errorf("%s handed the relay %d datagrams, want ≥ 500", who, len(c.out))
		}
		c.mu.Unlock()
	}
	if err := rc.call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitCalls(t, env, 0)
	rc.ra.Close()
	rc.rb.Close()
	waitAllocations(t, env, 0)
}

// S-4, issue 4 acceptance 2: an MRA phone and an on-premises phone
// (registered on core 5090) call each other both ways with SRTP. The MRA
// phone relays through the edge's TURN server; the on-premises phone,
// which gets no TURN credentials from the core, offers its own socket, and
// the MRA phone's relay sends to it.
func TestSRTPCallMRAAndOnPrem(t *testing.T) {
	const talk = 3 * time.Second
	const packets = int(talk / (20 * time.Millisecond))
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mra := registered(t, env, phoneA, true)
	onprem := registered(t, env, csf, false)
	if mra.Tokens().TURN == nil {
		t.Fatal("the MRA phone's token response carries no TURN credentials")
	}
	if onprem.Tokens().TURN != nil {
		t.Fatal("the core handed the on-premises phone TURN credentials; this test needs its host path")
	}
	for _, tc := range []struct {
		name           string
		caller, callee *bench.Phone
		line           string
	}{
		{"MRA calls on-prem", mra, onprem, "1003"},
		{"on-prem calls MRA", onprem, mra, "1001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			actx, stop := context.WithCancel(ctx)
			answered := make(chan media.Stats, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				tc.callee.AnswerWithMedia(actx, talk, func(st media.Stats, err error) {
					if err != nil {
						t.Errorf("callee: %v", err)
					}
					answered <- st
				})
			}()
			defer func() { stop(); <-done }()
			allocs := make(chan int, 1)
			go func() { // the allocations in use mid-call
				time.Sleep(talk / 2)
				allocs <- env.Edge.TURN().Allocations()
			}()
			st, err := tc.caller.CallWithMedia(ctx, tc.line, talk)
			if err != nil {
				t.Fatalf("caller: %v", err)
			}
			var cst media.Stats
			select {
			case cst = <-answered:
			case <-ctx.Done():
				t.Fatal("the callee reported no call")
			}
			for who, s := range map[string]media.Stats{"caller": st, "callee": cst} {
				if s.Sent < packets*9/10 || s.Received < packets*9/10 || s.Lost != 0 || s.AuthFailures != 0 || s.PlayedOut != s.Received {
					t.Errorf("%s: %+v; want about %d sent and received, all played, no loss, no auth failure", who, s, packets)
				}
			}
			if n := <-allocs; n != 1 {
				t.Errorf("%d TURN allocations mid-call, want 1 (the MRA phone's)", n)
			}
			waitCalls(t, env, 0)
			waitAllocations(t, env, 0)
		})
	}
}

// Issue 4 acceptance 6, end to end: B answers with one SDES key and
// encrypts with another (a wrong key on one side). Every packet A receives
// through the relays fails SRTP authentication, is counted, and none is
// played out; B, whose keys are right, gets A's media intact.
func TestWrongSRTPKeyThroughRelay(t *testing.T) {
	const talk = 2 * time.Second
	const packets = int(talk / (20 * time.Millisecond))
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	// The key B sends with is not the one its answer announced.
	rc := setUpRelayCall(t, ctx, env, a, b, func(announced media.Crypto) (media.Crypto, error) {
		return media.NewCrypto(announced.Tag, announced.Suite)
	})
	defer rc.call.Hangup(context.WithoutCancel(ctx))
	var sa, sb media.Stream
	if err := sa.Start(ctx, rc.ra.PacketConn(), rc.peerOfA, rc.sessA, talk); err != nil {
		t.Fatal(err)
	}
	if err := sb.Start(ctx, rc.rb.PacketConn(), rc.peerOfB, rc.sessB, talk); err != nil {
		t.Fatal(err)
	}
	statsA, errA := sa.Wait()
	statsB, errB := sb.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("streams: %v / %v", errA, errB)
	}
	if statsA.Received != packets || statsA.AuthFailures != packets || statsA.PlayedOut != 0 {
		t.Errorf("A, receiving with the announced key: %+v; want all %d packets arriving, each failing authentication, none played out", statsA, packets)
	}
	if statsB.Received != packets || statsB.AuthFailures != 0 || statsB.PlayedOut != packets {
		t.Errorf("B, whose keys are right: %+v; want %d received and played", statsB, packets)
	}
}
