package media

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/logx"
)

func udpAddr(ap netip.AddrPort) net.Addr { return net.UDPAddrFromAddrPort(ap) }

func TestAllocateRelay(t *testing.T) {
	for _, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			srv := startTURN(t)
			alice := srv.allocate(t, transport, "alice")
			bob := srv.allocate(t, transport, "bob")
			for _, r := range []*Relay{alice, bob} {
				if !r.Addr().Addr().IsLoopback() || r.Addr().Port() == 0 {
					t.Fatalf("relayed address %v", r.Addr())
				}
			}
			if alice.Addr() == bob.Addr() {
				t.Fatal("two allocations share a relayed address")
			}
			srv.waitAllocations(t, 2)
			if err := alice.Permit(udpAddr(bob.Addr())); err != nil {
				t.Fatal(err)
			}
			if err := bob.Permit(udpAddr(alice.Addr())); err != nil {
				t.Fatal(err)
			}
			if _, err := alice.PacketConn().WriteTo([]byte("hello through the relay"), udpAddr(bob.Addr())); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			_ = bob.PacketConn().SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := bob.PacketConn().ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "hello through the relay" || from.String() != udpAddr(alice.Addr()).String() {
				t.Fatalf("read %q from %v", buf[:n], from)
			}
			if !srv.relayed.contains("hello through the relay") {
				t.Fatal("the capture did not see the relayed datagram")
			}

			if err := alice.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			_ = alice.Close() // twice is harmless
			srv.waitAllocations(t, 1)
			_ = bob.Close()
			srv.waitAllocations(t, 0)
		})
	}
}

func TestAllocateRelayRefused(t *testing.T) {
	srv := startTURN(t)
	ctx := t.Context()
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", "alice", "guess"},
		{"unknown user", "mallory", "x"},
	} {
		_, err := AllocateRelay(ctx, srv.udp, "udp", tc.user, tc.pass, testRealm, WithLogger(quietLog))
		var te *TURNError
		if !errors.As(err, &te) || te.Code != 401 {
			t.Errorf("%s: %v, want a TURNError 401", tc.name, err)
		}
	}
	if _, err := AllocateRelay(ctx, srv.udp, "dtls", "alice", testUsers["alice"], testRealm); !errors.Is(err, ErrTransport) {
		t.Errorf("dtls: %v, want ErrTransport", err)
	}
	if _, err := AllocateRelay(ctx, srv.tls, "tls", "alice", testUsers["alice"], testRealm, WithLogger(quietLog)); err == nil {
		t.Error("TLS to a server the system roots do not trust succeeded")
	}

	alice := srv.allocate(t, "udp", "alice")
	err := alice.Permit(&net.UDPAddr{IP: srv.deniedPeer, Port: 5000})
	var te *TURNError
	if !errors.As(err, &te) || te.Code != 403 {
		t.Errorf("Permit to a denied peer: %v, want a TURNError 403", err)
	}

	// Nobody answers: the context bounds the attempt.
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := AllocateRelay(short, silent.LocalAddr().String(), "udp", "alice", "x", testRealm, WithLogger(quietLog)); err == nil {
		t.Error("allocation on a silent server succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("allocation on a silent server took %v despite a 300 ms context", d)
	}
}

// pion's TURN client logs through logx.Pion, as the relay does: each line
// tagged pion=<scope>, one level down, so an ordinary allocation and
// release log nothing at Info (issue 13 §1: one bridge, not two).
func TestAllocateRelayLogsThroughLogxPion(t *testing.T) {
	srv := startTURN(t)
	for _, tc := range []struct {
		level slog.Level
		want  bool // pion lines expected
	}{{slog.LevelDebug, true}, {slog.LevelInfo, false}} {
		var buf logx.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
		r, err := AllocateRelay(t.Context(), srv.udp, "udp", "alice", testUsers["alice"], testRealm, WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		srv.waitAllocations(t, 0)
		out := buf.String()
		if got := strings.Contains(out, "pion=turnc"); got != tc.want {
			t.Errorf("at %v: pion client lines tagged pion=turnc: %v, want %v:\n%s", tc.level, got, tc.want, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line != "" && !strings.Contains(line, "pion=") {
				t.Errorf("at %v: a line without its pion scope: %s", tc.level, line)
			}
		}
	}
}
