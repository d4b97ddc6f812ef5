package edge

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func testFront(key string) *SIPFront {
	return &SIPFront{flowKey: []byte(key), host: "expe-1.example.com", port: 5061}
}

var flowSources = []string{
	"203.0.113.7:50123",
	"198.51.100.1:5061",
	"[2001:db8::1]:61000",
	"x", // shortest non-empty source
}

// RFC 5626 §5.2: the flow token names the phone's flow and is
// authenticated, so only the edge that minted it can use it.
func TestFlowTokenRoundTrip(t *testing.T) {
	f := testFront("flow-key-0123456789abcdef0123456")
	for _, src := range flowSources {
		tok := f.flowToken(src)
		if tok != f.flowToken(src) {
			t.Errorf("flowToken(%q) is not deterministic", src)
		}
		got, ok := f.flowFromToken(tok)
		if !ok || got != src {
			t.Errorf("flowFromToken(flowToken(%q)) = %q, %v; want %q, true", src, got, ok, src)
		}
		// The token is usable as a SIP URI user part (RFC 3261 §25.1 unreserved).
		if strings.ContainsAny(tok, "+/=@:;,<>\" ") {
			t.Errorf("flowToken(%q) = %q holds characters not allowed unescaped in a user part", src, tok)
		}
	}
	if a, b := f.flowToken(flowSources[0]), f.flowToken(flowSources[1]); a == b {
		t.Errorf("two sources share the token %q", a)
	}
}

func TestFlowTokenOtherKeyRefused(t *testing.T) {
	mine := testFront("flow-key-0123456789abcdef0123456")
	other := testFront("another-edge-key-ffffffffffffffff")
	for _, src := range flowSources {
		tok := other.flowToken(src)
		if got, ok := mine.flowFromToken(tok); ok {
			t.Errorf("token minted with another key for %q accepted as %q", src, got)
		}
	}
}

func TestFlowTokenTamperedRefused(t *testing.T) {
	f := testFront("flow-key-0123456789abcdef0123456")
	for _, src := range flowSources {
		tok := f.flowToken(src)
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatalf("token %q is not base64url: %v", tok, err)
		}
		// Change each byte in turn, MAC and source alike.
		for i := range raw {
			bad := bytes.Clone(raw)
			bad[i] ^= 0x01
			if got, ok := f.flowFromToken(base64.RawURLEncoding.EncodeToString(bad)); ok {
				t.Errorf("token for %q with byte %d changed accepted as %q", src, i, got)
			}
		}
		// Truncated or extended.
		for _, bad := range [][]byte{raw[:len(raw)-1], append(bytes.Clone(raw), '0')} {
			if got, ok := f.flowFromToken(base64.RawURLEncoding.EncodeToString(bad)); ok {
				t.Errorf("token for %q resized to %d bytes accepted as %q", src, len(bad), got)
			}
		}
		// A source swapped in under the original MAC.
		swapped := append(bytes.Clone(raw[:10]), "192.0.2.99:5060"...)
		if got, ok := f.flowFromToken(base64.RawURLEncoding.EncodeToString(swapped)); ok {
			t.Errorf("MAC of %q with another source accepted as %q", src, got)
		}
	}
}

func TestFlowTokenGarbageRefused(t *testing.T) {
	f := testFront("flow-key-0123456789abcdef0123456")
	valid := f.flowToken("203.0.113.7:50123")
	tests := map[string]string{
		"empty":                  "",
		"not base64":             "!!!!not-a-token!!!!",
		"too short":              "abc",
		"MAC length, no source":  base64.RawURLEncoding.EncodeToString(make([]byte, 10)),
		"MAC only of real token": valid[:len(base64.RawURLEncoding.EncodeToString(make([]byte, 10)))],
		"zeros":                  base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"padded std encoding":    base64.StdEncoding.EncodeToString(append(make([]byte, 10), "1.2.3.4:5"...)),
		"with whitespace":        " " + valid,
		"with trailing dot":      valid + ".",
	}
	for name, tok := range tests {
		if got, ok := f.flowFromToken(tok); ok {
			t.Errorf("%s: flowFromToken(%q) accepted as %q", name, tok, got)
		}
	}
}

// RFC 3327 and RFC 5626 §5.1: the edge's Path entry is a loose route with
// the outbound flag, on TLS, naming the advertised host and SIP port.
func TestPathFor(t *testing.T) {
	tests := []struct {
		host     string
		port     int
		hostPort string
	}{
		{"expe-1.example.com", 5061, "expe-1.example.com:5061"},
		{"192.0.2.20", 5062, "192.0.2.20:5062"},
		{"2001:db8::20", 5061, "[2001:db8::20]:5061"},
	}
	for _, tt := range tests {
		f := &SIPFront{flowKey: []byte("k"), host: tt.host, port: tt.port}
		src := "203.0.113.7:50123"
		p := f.pathFor(src)
		want := "<sip:" + f.flowToken(src) + "@" + tt.hostPort + ";transport=tls;lr;ob>"
		if p != want {
			t.Errorf("pathFor = %q, want %q", p, want)
		}
		if !strings.Contains(p, ";transport=tls;lr;ob") || !strings.Contains(p, "@"+tt.hostPort) {
			t.Errorf("pathFor = %q, want ;transport=tls;lr;ob and %s", p, tt.hostPort)
		}

		// It parses as a SIP address, and its user part gives the flow back.
		var uri sip.Uri
		params := sip.NewParams()
		if _, err := sip.ParseAddressValue(p, &uri, &params); err != nil {
			t.Fatalf("Path %q does not parse: %v", p, err)
		}
		if uri.Port != tt.port {
			t.Errorf("Path %q port = %d, want %d", p, uri.Port, tt.port)
		}
		for _, k := range []string{"lr", "ob", "transport"} {
			if !uri.UriParams.Has(k) {
				t.Errorf("Path %q lacks URI parameter %s", p, k)
			}
		}
		if got, ok := f.flowFromToken(uri.User); !ok || got != src {
			t.Errorf("flow from Path user %q = %q, %v; want %q", uri.User, got, ok, src)
		}
	}
}
