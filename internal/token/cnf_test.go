package token

import (
	"encoding/json"
	"strings"
	"testing"
)

// RFC 8705 §3.1: a bound token's claims carry "cnf": {"x5t#S256": …};
// a bearer token's carry no cnf at all.
func TestCnfClaim(t *testing.T) {
	const x5t = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	b, err := json.Marshal(&Claims{Grant: GrantRefresh, Cnf: BoundTo(x5t)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"cnf":{"x5t#S256":"`+x5t+`"}`) {
		t.Fatalf("bound claims %s lack cnf.x5t#S256", b)
	}
	var back Claims
	if err := json.Unmarshal(b, &back); err != nil || back.CertThumbprint() != x5t {
		t.Fatalf("read back: %q, %v", back.CertThumbprint(), err)
	}
	b, _ = json.Marshal(&Claims{Grant: GrantRefresh, Cnf: BoundTo("")})
	if strings.Contains(string(b), "cnf") {
		t.Fatalf("bearer claims %s carry cnf", b)
	}
	if (*Claims)(nil).CertThumbprint() != "" || (&Claims{}).CertThumbprint() != "" {
		t.Fatal("a bearer token has a thumbprint")
	}
}
