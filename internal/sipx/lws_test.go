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

func TestBearerChallenge(t *testing.T) {
	for _, tc := range []struct {
		realm, server, code, desc, want string
	}{
		{"edgeway.test", "https://e/oauth2/token", "", "", `Bearer realm="edgeway.test", authz_server="https://e/oauth2/token"`},
		{"edgeway.test", "", "invalid_token", `bad "quote"`, `Bearer realm="edgeway.test", error="invalid_token", error_description="bad 'quote'"`},
	} {
		if got := BearerChallenge(tc.realm, tc.server, tc.code, tc.desc); got != tc.want {
			t.Errorf("BearerChallenge = %s, want %s", got, tc.want)
		}
	}
	in := `Bearer realm="x", authz_server="https://core:8443/oauth2/token", error="invalid_token"`
	want := `Bearer realm="x", authz_server="https://edge/oauth2/token", error="invalid_token"`
	if got := ReplaceChallengeServer(in, "https://edge/oauth2/token"); got != want {
		t.Errorf("ReplaceChallengeServer = %s, want %s", got, want)
	}
	if got := ReplaceChallengeServer(`Bearer realm="x"`, "https://edge"); got != `Bearer realm="x"` {
		t.Errorf("no authz_server: %s", got)
	}
}
