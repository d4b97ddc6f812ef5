package bench

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/edgeway/edgeway/internal/dnstest"
)

// A phone finds its edges in _collab-edge._tls.<domain> SRV records
// (issue 11 §2), ordered as RFC 2782 says: lowest priority first, HTTPS at
// the record's target and port, SIP at the target on the SIP port; a "."
// target offers nothing.
func TestLookupEdges(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone{SRV: map[string][]dnstest.SRV{
		"_collab-edge._tls.example.test": {
			{Priority: 20, Weight: 0, Port: 8443, Target: "expe-3.example.test."},
			{Priority: 10, Weight: 10, Port: 8443, Target: "expe-1.example.test."},
			{Priority: 15, Weight: 10, Port: 9443, Target: "expe-2.example.test."},
		},
		"_collab-edge._tls.closed.test": {{Priority: 0, Port: 0, Target: "."}},
	}})
	r := NewResolver(dns.Addr)
	ctx := context.Background()
	edges, err := LookupEdges(ctx, r, "example.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Edge{
		{HTTPS: "https://expe-1.example.test:8443", SIP: "expe-1.example.test:5061"},
		{HTTPS: "https://expe-2.example.test:9443", SIP: "expe-2.example.test:5061"},
		{HTTPS: "https://expe-3.example.test:8443", SIP: "expe-3.example.test:5061"},
	}
	if len(edges) != len(want) {
		t.Fatalf("edges %v, want %v", edges, want)
	}
	for i := range want {
		if edges[i] != want[i] {
			t.Errorf("edge %d = %v, want %v", i, edges[i], want[i])
		}
	}
	if edges, err := LookupEdges(ctx, r, "example.test", 5062); err != nil || edges[0].SIP != "expe-1.example.test:5062" {
		t.Errorf("with SIP port 5062: %v, %v", edges, err)
	}
	if _, err := LookupEdges(ctx, r, "closed.test", 0); !errors.Is(err, ErrNoEdges) {
		t.Errorf("a domain whose only target is \".\": %v, want ErrNoEdges", err)
	}
	if _, err := LookupEdges(ctx, r, "nowhere.test", 0); err == nil {
		t.Error("a domain without the record: no error")
	}
	if dns.Queries() == 0 {
		t.Fatal("the resolver never asked the test's DNS server")
	}
}

// Within one priority the order is weighted random (RFC 2782): over many
// lookups the heavier record comes first more often, and the lighter one
// sometimes.
func TestLookupEdgesWeights(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone{SRV: map[string][]dnstest.SRV{
		"_collab-edge._tls.example.test": {
			{Priority: 10, Weight: 90, Port: 8443, Target: "heavy.example.test."},
			{Priority: 10, Weight: 10, Port: 8443, Target: "light.example.test."},
		},
	}, A: map[string]netip.Addr{}})
	r := NewResolver(dns.Addr)
	first := map[string]int{}
	for range 200 {
		edges, err := LookupEdges(context.Background(), r, "example.test", 0)
		if err != nil || len(edges) != 2 {
			t.Fatalf("%v, %v", edges, err)
		}
		first[edges[0].SIP]++
	}
	h, l := first["heavy.example.test:5061"], first["light.example.test:5061"]
	if h <= l || l == 0 {
		t.Fatalf("first: heavy %d, light %d of 200; want heavy more often and light sometimes", h, l)
	}
}
