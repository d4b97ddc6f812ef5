package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// EdgeService is the SRV service a phone looks up to find the edges
// (Expressway-E peers) of its service domain: _collab-edge._tls.<domain>.
const EdgeService = "collab-edge"

// DefaultEdgeSIPPort is the SIP/TLS port LookupEdges gives each edge: the
// SRV record names the edge's HTTPS port only.
const DefaultEdgeSIPPort = 5061

// ErrNoEdges: the domain publishes no usable _collab-edge._tls record.
var ErrNoEdges = errors.New("no _collab-edge._tls SRV records")

// LookupEdges finds the edges of domain in its _collab-edge._tls SRV
// records, in the order RFC 2782 gives them (lowest priority first, and
// within a priority a weighted random order): HTTPS at each record's
// target and port, SIP at the same target on sipPort (0:
// DefaultEdgeSIPPort). A record whose target is "." says the service is
// not offered. r nil: the system resolver.
func LookupEdges(ctx context.Context, r *net.Resolver, domain string, sipPort int) ([]Edge, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	if sipPort == 0 {
		sipPort = DefaultEdgeSIPPort
	}
	_, srvs, err := r.LookupSRV(ctx, EdgeService, "tls", domain)
	if err != nil {
		return nil, fmt.Errorf("phone: SRV _%s._tls.%s: %w", EdgeService, domain, err)
	}
	var edges []Edge
	for _, s := range srvs {
		host := strings.TrimSuffix(s.Target, ".")
		if host == "" {
			continue
		}
		edges = append(edges, Edge{
			HTTPS: "https://" + net.JoinHostPort(host, strconv.Itoa(int(s.Port))),
			SIP:   net.JoinHostPort(host, strconv.Itoa(sipPort)),
		})
	}
	if len(edges) == 0 {
		return nil, fmt.Errorf("phone: _%s._tls.%s: %w", EdgeService, domain, ErrNoEdges)
	}
	return edges, nil
}

// NewResolver is a resolver that asks the DNS server at addr (host:port)
// only, over UDP (TCP when the answer is truncated).
func NewResolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		return d.DialContext(ctx, network, addr)
	}}
}
