package sipx

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// parseRequest builds a request from raw SIP text (lines joined with CRLF).
func parseRequest(t *testing.T, lines ...string) *sip.Request {
	t.Helper()
	raw := strings.Join(lines, "\r\n") + "\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("ParseMessage: %v\n%s", err, raw)
	}
	req, ok := m.(*sip.Request)
	if !ok {
		t.Fatalf("ParseMessage returned %T, want *sip.Request", m)
	}
	return req
}

// registerHead is the start of a REGISTER without Contact or Authorization.
var registerHead = []string{
	"REGISTER sip:edgeway.test SIP/2.0",
	"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds",
	"Max-Forwards: 70",
	"To: <sip:1001@edgeway.test>",
	"From: <sip:1001@edgeway.test>;tag=1928301774",
	"Call-ID: a84b4c76e66710@192.0.2.10",
	"CSeq: 1 REGISTER",
}

func register(t *testing.T, extra ...string) *sip.Request {
	t.Helper()
	lines := append(append([]string{}, registerHead...), extra...)
	lines = append(lines, "Content-Length: 0")
	return parseRequest(t, lines...)
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"only whitespace", "  \t ", nil},
		{"only commas", ",, ,", nil},
		{"single", "<sip:a@x>", []string{"<sip:a@x>"}},
		{"two", "<sip:a@x>,<sip:b@y>", []string{"<sip:a@x>", "<sip:b@y>"}},
		{"whitespace trimmed", "  <sip:a@x> ,\t<sip:b@y>  ", []string{"<sip:a@x>", "<sip:b@y>"}},
		{"empty items dropped", "a,,b, ,c,", []string{"a", "b", "c"}},
		{"comma inside angle brackets", "<sip:a@x;maddr=1,2>, <sip:b@y>", []string{"<sip:a@x;maddr=1,2>", "<sip:b@y>"}},
		{"comma inside quotes", `"Doe, John" <sip:j@x>, <sip:b@y>`, []string{`"Doe, John" <sip:j@x>`, "<sip:b@y>"}},
		{"angle bracket inside quotes is literal", `"a<b, c" <sip:j@x>, d`, []string{`"a<b, c" <sip:j@x>`, "d"}},
		{"unbalanced close bracket ignored", "a>, b", []string{"a>", "b"}},
		{"unclosed bracket swallows rest", "<sip:a@x, b", []string{"<sip:a@x, b"}},
		{"unclosed quote swallows rest", `"a, b`, []string{`"a, b`}},
		{"params after bracket", "<sip:a@x>;expires=60, <sip:b@y>;q=0.5", []string{"<sip:a@x>;expires=60", "<sip:b@y>;q=0.5"}},
		{"star", "*", []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SplitList(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitList(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHeaderValues(t *testing.T) {
	req := register(t,
		"Path: <sip:tok1@edge1.example.com:5061;transport=tls;lr;ob>, <sip:tok2@edge2.example.com;lr>",
		`Contact: "Desk, Phone" <sip:1001@192.0.2.10:5061;transport=tls>;expires=3600`,
		"Contact: <sip:1001@198.51.100.7:5061;transport=tls>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\"",
	)

	paths := HeaderValues(req, "Path")
	wantPaths := []string{
		"<sip:tok1@edge1.example.com:5061;transport=tls;lr;ob>",
		"<sip:tok2@edge2.example.com;lr>",
	}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Errorf("Path values = %q, want %q", paths, wantPaths)
	}

	contacts := HeaderValues(req, "Contact")
	if len(contacts) != 2 {
		t.Fatalf("Contact values = %q, want 2 (one per header, the quoted comma not splitting)", contacts)
	}
	if !strings.Contains(contacts[0], "192.0.2.10") || !strings.Contains(contacts[1], "198.51.100.7") {
		t.Errorf("Contact values out of order or wrong: %q", contacts)
	}

	// Header names are case-insensitive.
	if got := HeaderValues(req, "path"); !reflect.DeepEqual(got, wantPaths) {
		t.Errorf("HeaderValues(path) = %q, want %q", got, wantPaths)
	}
	if got := HeaderValues(req, "Route"); got != nil {
		t.Errorf("HeaderValues(Route) on a request without Route = %q, want nil", got)
	}
}

func TestHeaderValuesCommaSeparatedContact(t *testing.T) {
	// RFC 3261 §7.3.1: a comma-separated list is equivalent to several
	// headers; either spelling gives the same contacts.
	req := register(t, "Contact: <sip:1001@192.0.2.10:5061>;expires=60, <sip:1001@198.51.100.7:5061>;expires=120")
	cs, star, err := Contacts(req)
	if err != nil {
		t.Fatalf("Contacts: %v", err)
	}
	if star {
		t.Error("star = true for an ordinary contact list")
	}
	if len(cs) != 2 || cs[0].Address.Host != "192.0.2.10" || cs[1].Address.Host != "198.51.100.7" {
		t.Fatalf("contacts = %+v, want hosts 192.0.2.10 then 198.51.100.7", cs)
	}
}

func TestContacts(t *testing.T) {
	t.Run("normal", func(t *testing.T) {
		req := register(t,
			`Contact: "Desk" <sip:1001@192.0.2.10:5061;transport=tls>;expires=3600`,
			"Contact: <sip:1001@198.51.100.7:5062;transport=tls>;expires=0",
		)
		cs, star, err := Contacts(req)
		if err != nil {
			t.Fatalf("Contacts: %v", err)
		}
		if star {
			t.Error("star = true, want false")
		}
		if len(cs) != 2 {
			t.Fatalf("got %d contacts, want 2: %+v", len(cs), cs)
		}
		if cs[0].DisplayName != "Desk" {
			t.Errorf("display name = %q, want Desk", cs[0].DisplayName)
		}
		if cs[0].Address.User != "1001" || cs[0].Address.Host != "192.0.2.10" || cs[0].Address.Port != 5061 {
			t.Errorf("first contact address = %+v", cs[0].Address)
		}
		if v, _ := cs[0].Params.Get("expires"); v != "3600" {
			t.Errorf("first contact expires = %q, want 3600", v)
		}
		if cs[1].Address.Host != "198.51.100.7" || cs[1].Address.Port != 5062 {
			t.Errorf("second contact address = %+v", cs[1].Address)
		}
		if v, _ := cs[1].Params.Get("expires"); v != "0" {
			t.Errorf("second contact expires = %q, want 0", v)
		}
	})

	t.Run("star", func(t *testing.T) {
		// RFC 3261 §10.2.2: Contact: * with Expires: 0 removes every binding.
		req := register(t, "Expires: 0", "Contact: *")
		cs, star, err := Contacts(req)
		if err != nil {
			t.Fatalf("Contacts: %v", err)
		}
		if !star {
			t.Error("star = false for Contact: *")
		}
		if len(cs) != 0 {
			t.Errorf("contacts = %+v, want none beside *", cs)
		}
	})

	t.Run("none", func(t *testing.T) {
		cs, star, err := Contacts(register(t))
		if err != nil || star || len(cs) != 0 {
			t.Errorf("Contacts without Contact = %v, %v, %v; want none, false, nil", cs, star, err)
		}
	})

	t.Run("unparsable", func(t *testing.T) {
		// sipgo refuses a broken Contact while parsing the message, so the
		// header is added unparsed, as a relayed message could carry it.
		for _, bad := range []string{"<sip:1001@192.0.2.10", "<>", "\"unterminated <sip:a@b>"} {
			req := register(t)
			req.AppendHeader(sip.NewHeader("Contact", bad))
			cs, star, err := Contacts(req)
			if !errors.Is(err, ErrBadContact) {
				t.Errorf("Contacts(%q) err = %v, want ErrBadContact", bad, err)
			}
			if cs != nil || star {
				t.Errorf("Contacts(%q) = %v, %v with an error; want nil, false", bad, cs, star)
			}
		}
	})

	t.Run("one bad among good", func(t *testing.T) {
		req := register(t, "Contact: <sip:1001@192.0.2.10:5061>")
		req.AppendHeader(sip.NewHeader("Contact", "<sip:1001@"))
		if cs, _, err := Contacts(req); !errors.Is(err, ErrBadContact) || cs != nil {
			t.Errorf("Contacts = %v, %v; want nil, ErrBadContact", cs, err)
		}
	})
}

func TestAOR(t *testing.T) {
	tests := []struct {
		name string
		to   *sip.ToHeader
		want string
	}{
		{"nil", nil, ""},
		{"plain", &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "1001", Host: "edgeway.test"}}, "sip:1001@edgeway.test"},
		{"host lower-cased", &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "1001", Host: "EdgeWay.TEST"}}, "sip:1001@edgeway.test"},
		{"user case kept", &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "Alice", Host: "x.test"}}, "sip:Alice@x.test"},
		{"empty scheme is sip", &sip.ToHeader{Address: sip.Uri{User: "1001", Host: "x.test"}}, "sip:1001@x.test"},
		{"sips kept", &sip.ToHeader{Address: sip.Uri{Scheme: "sips", User: "1001", Host: "x.test"}}, "sips:1001@x.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AOR(tt.to); got != tt.want {
				t.Errorf("AOR = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("params, port and display name dropped", func(t *testing.T) {
		req := parseRequest(t,
			"REGISTER sip:edgeway.test SIP/2.0",
			"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds",
			"To: \"Line 1\" <sip:1001@EDGEWAY.Test:5061;transport=tls;user=phone>;tag=abc",
			"From: <sip:1001@edgeway.test>;tag=1928301774",
			"Call-ID: a84b4c76e66710@192.0.2.10",
			"CSeq: 1 REGISTER",
			"Content-Length: 0",
		)
		if got, want := AOR(req.To()), "sip:1001@edgeway.test"; got != want {
			t.Errorf("AOR = %q, want %q", got, want)
		}
	})
}

func TestFingerprint(t *testing.T) {
	secrets := []string{
		"",
		"1234567890123456",
		"ewr_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA",
		"eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJTRVAwMDExMjIzMzQ0MDEifQ.c2ln",
	}
	shape := regexp.MustCompile(`^sha256:[0-9a-f]{8}$`)
	seen := map[string]string{}
	for _, s := range secrets {
		fp := Fingerprint(s)
		if fp != Fingerprint(s) {
			t.Errorf("Fingerprint(%q) not stable", s)
		}
		if !shape.MatchString(fp) {
			t.Errorf("Fingerprint(%q) = %q, want sha256: and 8 hex digits", s, fp)
		}
		if len(s) >= 4 && strings.Contains(fp, s) {
			t.Errorf("Fingerprint(%q) = %q contains the secret", s, fp)
		}
		if len(s) > 8 && strings.Contains(fp, s[:8]) {
			t.Errorf("Fingerprint(%q) = %q contains a prefix of the secret", s, fp)
		}
		if other, dup := seen[fp]; dup {
			t.Errorf("Fingerprint(%q) = Fingerprint(%q) = %q", s, other, fp)
		}
		seen[fp] = s
	}
	// A known value: the first four bytes of SHA-256("abc").
	if got, want := Fingerprint("abc"), "sha256:ba7816bf"; got != want {
		t.Errorf("Fingerprint(abc) = %q, want %q", got, want)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name       string
		headers    []string
		wantTok    string
		wantScheme string
		wantOK     bool
	}{
		{"none", nil, "", "", false},
		{"bearer", []string{"Authorization: Bearer eyJ.abc.def"}, "eyJ.abc.def", "Bearer", true},
		{"bearer extra spaces", []string{"Authorization:    Bearer    eyJ.abc.def   "}, "eyJ.abc.def", "Bearer", true},
		{"scheme case kept", []string{"Authorization: bearer tok"}, "tok", "bearer", true},
		{"digest", []string{`Authorization: Digest username="1001", realm="edgeway.test", nonce="n", uri="sip:edgeway.test", response="r"`},
			`username="1001", realm="edgeway.test", nonce="n", uri="sip:edgeway.test", response="r"`, "Digest", true},
		{"scheme only", []string{"Authorization: Bearer"}, "", "Bearer", true},
		{"first header wins", []string{"Authorization: Bearer first", "Authorization: Bearer second"}, "first", "Bearer", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := register(t, tt.headers...)
			tok, scheme, ok := BearerToken(req)
			if tok != tt.wantTok || scheme != tt.wantScheme || ok != tt.wantOK {
				t.Errorf("BearerToken = (%q, %q, %v), want (%q, %q, %v)", tok, scheme, ok, tt.wantTok, tt.wantScheme, tt.wantOK)
			}
		})
	}
}

func FuzzSplitList(f *testing.F) {
	for _, s := range []string{
		"", ",", "a,b", " a , , b ,", "<sip:a@x,y>, b", `"x, y" <sip:a@b>, c`,
		"<<a,b>>,c", ">,<", `"`, `"<",a`, "*", "a\t,\tb", "\x00,\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		items := SplitList(in)
		for _, it := range items {
			if it == "" {
				t.Fatalf("SplitList(%q) returned an empty item: %q", in, items)
			}
			if it != strings.TrimSpace(it) {
				t.Fatalf("SplitList(%q) returned an untrimmed item %q", in, it)
			}
			if !strings.Contains(in, it) {
				t.Fatalf("SplitList(%q) returned %q, not a substring of the input", in, it)
			}
		}
		if strings.ContainsAny(in, `"<>`) {
			return
		}
		// Without quotes or brackets every comma is top-level: no item keeps
		// one, and the items are exactly the non-blank comma-separated parts.
		var want []string
		for _, p := range strings.Split(in, ",") {
			if p = strings.TrimSpace(p); p != "" {
				want = append(want, p)
			}
		}
		for _, it := range items {
			if strings.Contains(it, ",") {
				t.Fatalf("SplitList(%q) kept a top-level comma in %q", in, it)
			}
		}
		if !reflect.DeepEqual(items, want) {
			t.Fatalf("SplitList(%q) = %q, want %q", in, items, want)
		}
		// Splitting the re-joined items again is a fixed point.
		if again := SplitList(strings.Join(items, ",")); !reflect.DeepEqual(again, items) {
			t.Fatalf("SplitList(join(SplitList(%q))) = %q, want %q", in, again, items)
		}
	})
}
