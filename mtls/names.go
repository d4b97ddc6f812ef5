package mtls

import (
	"crypto/x509"
	"net/netip"
	"strings"
)

// CertNames returns the identities a certificate carries, for logs and
// admission decisions: DNS SANs, then IP SANs (as strings), then the subject
// common name if it is not empty. Duplicates are removed (DNS names and the
// CN compare ASCII case-insensitively ignoring one trailing dot, IPs compare
// as addresses); the first spelling is kept in its original case.
//
// CertNames lists the CN even when SANs are present; MatchPeerName does not
// consider it in that case.
func CertNames(cert *x509.Certificate) []string {
	if cert == nil {
		return nil
	}
	var out []string
	seen := make(map[string]struct{})
	add := func(name string) {
		if name == "" {
			return
		}
		key := nameKey(name)
		if _, dup := seen[key]; dup {
			return
		}
		seen[key] = struct{}{}
		out = append(out, name)
	}
	for _, d := range cert.DNSNames {
		add(d)
	}
	for _, ip := range cert.IPAddresses {
		if len(ip) == 0 {
			continue
		}
		add(ip.String())
	}
	add(cert.Subject.CommonName)
	return out
}

// nameKey is the deduplication key of a name for CertNames.
func nameKey(name string) string {
	if a, err := netip.ParseAddr(name); err == nil {
		return "ip:" + a.Unmap().String()
	}
	return "dns:" + asciiLower(trimOneDot(name))
}

// MatchPeerName reports which allowed name the certificate carries (S-12):
// it returns the first entry of allowed, as spelled there, that matches one
// of the certificate's identities.
//
// Rules:
//   - DNS names compare exactly, ASCII case-insensitively, ignoring one
//     trailing dot on either side. There is no suffix or substring matching.
//   - IP literals compare as addresses, with IPv4-mapped IPv6 addresses
//     unmapped ("::ffff:127.0.0.1" equals "127.0.0.1"). An allowed IP matches
//     only IP SANs (or an IP-literal CN, see below), never a DNS SAN.
//   - Wildcards are deliberately NOT honoured, in either direction: a SAN
//     "*.example.com" does not match "edge.example.com", and an allowed entry
//     "*.example.com" matches only a SAN that is literally "*.example.com".
//     Admission of a core-facing edge must name that edge exactly.
//   - The subject common name is considered only when the certificate has
//     no DNS and no IP SANs (RFC 6125 §6.4.4).
//   - Empty allowed entries never match; a nil certificate never matches.
func MatchPeerName(cert *x509.Certificate, allowed []string) (matched string, ok bool) {
	if cert == nil || len(allowed) == 0 {
		return "", false
	}
	var dns []string
	var ips []netip.Addr
	if len(cert.DNSNames) > 0 || len(cert.IPAddresses) > 0 {
		dns = cert.DNSNames
		for _, ip := range cert.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok {
				ips = append(ips, a.Unmap())
			}
		}
	} else if cn := cert.Subject.CommonName; cn != "" {
		if a, err := netip.ParseAddr(cn); err == nil {
			if a.Zone() == "" {
				ips = append(ips, a.Unmap())
			}
		} else {
			dns = []string{cn}
		}
	}
	for _, want := range allowed {
		if want == "" {
			continue
		}
		if a, err := netip.ParseAddr(want); err == nil {
			if a.Zone() != "" {
				continue
			}
			a = a.Unmap()
			for _, have := range ips {
				if have == a {
					return want, true
				}
			}
			continue
		}
		w := trimOneDot(want)
		if w == "" {
			continue
		}
		for _, have := range dns {
			if h := trimOneDot(have); h != "" && asciiEqualFold(h, w) {
				return want, true
			}
		}
	}
	return "", false
}

// AdmitNames returns an admission function for MutualServerConfig that
// admits a client certificate only if MatchPeerName finds one of allowed
// in it; otherwise the error lists the names the certificate carries.
func AdmitNames(allowed []string) func(leaf *x509.Certificate) error {
	allowed = append([]string(nil), allowed...)
	return func(leaf *x509.Certificate) error {
		if _, ok := MatchPeerName(leaf, allowed); ok {
			return nil
		}
		return &NameMismatchError{Names: CertNames(leaf)}
	}
}

// NameMismatchError is returned by AdmitNames' function when a certificate
// carries none of the allowed names.
type NameMismatchError struct {
	Names []string // CertNames of the refused certificate
}

func (e *NameMismatchError) Error() string {
	if len(e.Names) == 0 {
		return "certificate carries no name"
	}
	return "certificate names [" + strings.Join(quoteAll(e.Names), " ") + "] match no allowed peer name"
}

func trimOneDot(s string) string {
	return strings.TrimSuffix(s, ".")
}

// asciiEqualFold compares ASCII case-insensitively. Unlike strings.EqualFold
// it applies no Unicode folding (which would, for example, equate the Kelvin
// sign U+212A with "k").
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerByte(a[i]) != lowerByte(b[i]) {
			return false
		}
	}
	return true
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// SameName reports whether two names are the same identity under the rules
// of MatchPeerName: IPs as addresses, DNS names ASCII case-insensitively,
// one trailing dot ignored, no wildcards.
func SameName(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	return nameKey(a) == nameKey(b)
}
