package mtls

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"reflect"
	"testing"
)

func cert(cn string, dns []string, ips ...string) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
	for _, ip := range ips {
		c.IPAddresses = append(c.IPAddresses, net.ParseIP(ip))
	}
	return c
}

func TestMatchPeerName(t *testing.T) {
	// A 16-byte IPv4-mapped address as it may appear in a parsed certificate.
	mapped := &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("::ffff:10.1.2.3")}}
	if len(mapped.IPAddresses[0]) != net.IPv6len {
		t.Fatal("expected a 16-byte IP")
	}
	tests := []struct {
		name    string
		cert    *x509.Certificate
		allowed []string
		want    string
		ok      bool
	}{
		{"exact DNS", cert("", []string{"expc.example.com"}), []string{"expc.example.com"}, "expc.example.com", true},
		{"second allowed", cert("", []string{"expc2.example.com"}), []string{"expc1.example.com", "expc2.example.com"}, "expc2.example.com", true},
		{"second SAN", cert("", []string{"a.example.com", "expc.example.com"}), []string{"expc.example.com"}, "expc.example.com", true},
		{"SAN upper, allowed lower", cert("", []string{"EXPC.Example.COM"}), []string{"expc.example.com"}, "expc.example.com", true},
		{"SAN lower, allowed upper", cert("", []string{"expc.example.com"}), []string{"Expc.Example.Com"}, "Expc.Example.Com", true},
		{"trailing dot on SAN", cert("", []string{"expc.example.com."}), []string{"expc.example.com"}, "expc.example.com", true},
		{"trailing dot on allowed", cert("", []string{"expc.example.com"}), []string{"expc.example.com."}, "expc.example.com.", true},
		{"only one trailing dot ignored", cert("", []string{"expc.example.com.."}), []string{"expc.example.com"}, "", false},
		{"prefix trick", cert("", []string{"evil-expc.example.com"}), []string{"expc.example.com"}, "", false},
		{"suffix trick", cert("", []string{"expc.example.com.evil.org"}), []string{"expc.example.com"}, "", false},
		{"letter prefix", cert("", []string{"xexpc.example.com"}), []string{"expc.example.com"}, "", false},
		{"parent domain", cert("", []string{"example.com"}), []string{"expc.example.com"}, "", false},
		{"subdomain", cert("", []string{"a.expc.example.com"}), []string{"expc.example.com"}, "", false},
		{"unicode fold not applied", cert("", []string{"\u212aexpc.example.com"}), []string{"kexpc.example.com"}, "", false},
		{"SAN wildcard vs specific allowed", cert("", []string{"*.example.com"}), []string{"expc.example.com"}, "", false},
		{"allowed wildcard vs specific SAN", cert("", []string{"expc.example.com"}), []string{"*.example.com"}, "", false},
		{"allowed wildcard vs literal wildcard SAN", cert("", []string{"*.example.com"}), []string{"*.example.com"}, "*.example.com", true},
		{"allowed bare star", cert("", []string{"expc.example.com"}), []string{"*"}, "", false},
		{"CN ignored when DNS SAN present", cert("expc.example.com", []string{"other.example.com"}), []string{"expc.example.com"}, "", false},
		{"CN ignored when IP SAN present", cert("expc.example.com", nil, "192.0.2.1"), []string{"expc.example.com"}, "", false},
		{"CN used when no SANs", cert("expc.example.com", nil), []string{"expc.example.com"}, "expc.example.com", true},
		{"CN case-insensitive", cert("EXPC.example.com", nil), []string{"expc.example.com"}, "expc.example.com", true},
		{"CN with wildcard not honoured", cert("*.example.com", nil), []string{"expc.example.com"}, "", false},
		{"CN IP literal", cert("192.0.2.7", nil), []string{"192.0.2.7"}, "192.0.2.7", true},
		{"IP match", cert("", nil, "192.0.2.1"), []string{"192.0.2.1"}, "192.0.2.1", true},
		{"IP mismatch", cert("", nil, "192.0.2.1"), []string{"192.0.2.10"}, "", false},
		{"IPv6 match, different spelling", cert("", nil, "2001:db8::1"), []string{"2001:DB8:0:0::1"}, "2001:DB8:0:0::1", true},
		{"IPv4-mapped allowed vs IPv4 SAN", cert("", nil, "127.0.0.1"), []string{"::ffff:127.0.0.1"}, "::ffff:127.0.0.1", true},
		{"IPv4 allowed vs 16-byte mapped SAN", mapped, []string{"10.1.2.3"}, "10.1.2.3", true},
		{"IPv4 allowed vs IPv6 SAN", cert("", nil, "::1"), []string{"127.0.0.1"}, "", false},
		{"IP allowed does not match DNS SAN spelling it", cert("", []string{"192.0.2.1"}), []string{"192.0.2.1"}, "", false},
		{"DNS allowed does not match IP SAN", cert("", nil, "192.0.2.1"), []string{"host.example.com"}, "", false},
		{"zoned IP allowed never matches", cert("", nil, "fe80::1"), []string{"fe80::1%eth0"}, "", false},
		{"empty allowed list", cert("expc.example.com", []string{"expc.example.com"}), nil, "", false},
		{"empty-string allowed entry", cert("", []string{"expc.example.com"}), []string{""}, "", false},
		{"empty-string allowed vs empty CN", cert("", nil), []string{""}, "", false},
		{"dot allowed vs empty", cert(".", nil), []string{"."}, "", false},
		{"empty allowed then match", cert("", []string{"expc.example.com"}), []string{"", "expc.example.com"}, "expc.example.com", true},
		{"nil cert", nil, []string{"expc.example.com"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := MatchPeerName(tt.cert, tt.allowed)
			if got != tt.want || ok != tt.ok {
				t.Errorf("MatchPeerName = (%q, %v), want (%q, %v)", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestMatchPeerNameIssuedCert(t *testing.T) {
	ca := testCA(t, "Names CA")
	certPEM, _, err := ca.Issue(CertRequest{CommonName: "ignored.example.com", Names: []string{"expc.example.com", "::ffff:127.0.0.1"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEMCert(t, certPEM)
	for _, allowed := range []string{"EXPC.example.com.", "127.0.0.1", "::ffff:127.0.0.1"} {
		if _, ok := MatchPeerName(c, []string{allowed}); !ok {
			t.Errorf("%q did not match", allowed)
		}
	}
	if _, ok := MatchPeerName(c, []string{"ignored.example.com"}); ok {
		t.Error("CN matched although SANs are present")
	}
}

func TestCertNames(t *testing.T) {
	tests := []struct {
		cert *x509.Certificate
		want []string
	}{
		{nil, nil},
		{cert("", nil), nil},
		{cert("Only.CN", nil), []string{"Only.CN"}},
		{cert("expc.example.com", []string{"Expc.Example.com", "b.example.com", "B.EXAMPLE.COM."}, "127.0.0.1", "::ffff:127.0.0.1", "::1"),
			[]string{"Expc.Example.com", "b.example.com", "127.0.0.1", "::1"}},
		{cert("10.0.0.1", []string{"a"}, "10.0.0.1"), []string{"a", "10.0.0.1"}},
		{cert("Edgeway CA", []string{"a"}), []string{"a", "Edgeway CA"}},
	}
	for _, tt := range tests {
		if got := CertNames(tt.cert); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("CertNames = %q, want %q", got, tt.want)
		}
	}
}

func TestAdmitNames(t *testing.T) {
	admit := AdmitNames([]string{"expc.example.com"})
	if err := admit(cert("", []string{"expc.example.com"})); err != nil {
		t.Errorf("admit: %v", err)
	}
	err := admit(cert("expc.example.com", []string{"evil.example.com"}))
	var nm *NameMismatchError
	if !errors.As(err, &nm) || !reflect.DeepEqual(nm.Names, []string{"evil.example.com", "expc.example.com"}) {
		t.Errorf("mismatch err = %v", err)
	}
}
