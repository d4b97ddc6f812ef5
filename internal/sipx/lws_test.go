package sipx

import (
	"reflect"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// RFC 3261 §25.1: a quoted-pair inside a quoted string does not end it.
func TestSplitListEscapedQuote(t *testing.T) {
	got := SplitList("\"a\\\"b, c\" <sip:x@y>, <sip:d@e>")
	want := []string{"\"a\\\"b, c\" <sip:x@y>", "<sip:d@e>"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SplitList = %q, want %q", got, want)
	}
}

// RFC 3261 §25.1: a tab separates the scheme from the credentials as well
// as a space does, so Bearer and Digest (S-16) are recognised either way.
func TestBearerTokenTab(t *testing.T) {
	for _, tc := range []struct{ value, tok, scheme string }{
		{"Bearer\teyJ.a.b", "eyJ.a.b", "Bearer"},
		{"Digest\tusername=\"1001\", realm=\"x\"", "username=\"1001\", realm=\"x\"", "Digest"},
		{"Bearer \t eyJ.a.b", "eyJ.a.b", "Bearer"},
	} {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "edgeway.test"})
		req.AppendHeader(sip.NewHeader("Authorization", tc.value))
		tok, scheme, ok := BearerToken(req)
		if !ok || tok != tc.tok || scheme != tc.scheme {
			t.Errorf("BearerToken(%q) = %q, %q, %v; want %q, %q", tc.value, tok, scheme, ok, tc.tok, tc.scheme)
		}
	}
}
