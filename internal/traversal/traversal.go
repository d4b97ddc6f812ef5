// Package traversal is the edge↔core link: the mutually authenticated
// HTTPS client the edge uses to reach the core's OAuth endpoints, and the
// header by which the edge tells the core the phone's address.
//
// The core trusts what arrives here only because the connection presented
// a certificate that chains to tomcat-trust and matches an Expressway-C
// entry (S-11, S-12); nothing a phone writes can make a request look like
// it came through the edge.
package traversal

import (
	"net/http"
	"time"

	"github.com/edgeway/edgeway/mtls"
)

// ClientAddressHeader carries the phone's IP from the edge to the core; the
// core ignores it on connections that are not from an admitted edge.
const ClientAddressHeader = "Edgeway-Client-Address"

// EdgeSIPHeader and EdgeURLHeader tell the core, on config requests, where
// phones behind this edge reach it: its public SIP/TLS address (host:port)
// and its public HTTPS base URL. Believed only from admitted edges.
const (
	EdgeSIPHeader = "Edgeway-Edge-SIP"
	EdgeURLHeader = "Edgeway-Edge-URL"
)

// HTTPClient returns a pooled HTTPS client presenting kp and verifying the
// core against trust and serverName.
func HTTPClient(kp *mtls.KeyPair, trust *mtls.TrustStore, serverName string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: mtls.ClientConfig(kp, trust, serverName),
		// As many idle connections as requests in flight under load: a
		// pool smaller than that closes connections only to dial (and
		// handshake mutual TLS) again at once — 13 % of the edge's CPU
		// when 64 phones onboarded together.
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
