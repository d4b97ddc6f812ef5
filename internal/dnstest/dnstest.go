// Package dnstest is a tiny authoritative DNS server on loopback UDP for
// tests: it answers SRV and A queries from a fixed table, NXDOMAIN for
// anything else. It stands in for the DNS a phone finds its edges in
// (_collab-edge._tls.<domain> SRV, issue 11), built on
// golang.org/x/net/dns/dnsmessage; it is a test fixture, not part of
// Edgeway.
package dnstest

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// SRV is one SRV record (RFC 2782).
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string // a host name; "." for "not offered"
}

// Zone is what the server answers: SRV records by owner name and A
// records by host name (names with or without the final dot).
type Zone struct {
	SRV map[string][]SRV
	A   map[string]netip.Addr
}

// Server is a running DNS server.
type Server struct {
	Addr string // 127.0.0.1:port

	pc      net.PacketConn
	zone    Zone
	mu      sync.Mutex
	queries int
	done    chan struct{}
}

// Start serves zone on a kernel-chosen loopback port until the test ends.
func Start(t testing.TB, zone Zone) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), pc: pc, zone: zone, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() {
		pc.Close()
		<-s.done
	})
	return s
}

// Queries is the number of questions answered so far.
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if out, err := s.answer(buf[:n]); err == nil {
			_, _ = s.pc.WriteTo(out, from)
		}
	}
}

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

func (s *Server) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.queries++
	s.mu.Unlock()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
	b.EnableCompression()
	name := canonical(q.Name.String())
	hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	var srvs []SRV
	for k, v := range s.zone.SRV {
		if canonical(k) == name {
			srvs = v
		}
	}
	var a netip.Addr
	for k, v := range s.zone.A {
		if canonical(k) == name {
			a = v
		}
	}
	known := srvs != nil || a.IsValid()
	if !known {
		b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeNameError})
	}
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	switch {
	case q.Type == dnsmessage.TypeSRV:
		for _, r := range srvs {
			target, err := dnsmessage.NewName(strings.TrimSuffix(r.Target, ".") + ".")
			if err != nil {
				return nil, err
			}
			if err := b.SRVResource(hdr, dnsmessage.SRVResource{Priority: r.Priority, Weight: r.Weight, Port: r.Port, Target: target}); err != nil {
				return nil, err
			}
		}
	case q.Type == dnsmessage.TypeA && a.Is4():
		if err := b.AResource(hdr, dnsmessage.AResource{A: a.As4()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}
