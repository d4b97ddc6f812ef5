package reqid

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestValid(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"3f9a01c2b7de-1k", true},
		{"a", true},
		{"A.b_c-9", true},
		{strings.Repeat("x", MaxLen), true},
		{"", false},
		{strings.Repeat("x", MaxLen+1), false},
		{"has space", false},
		{"new\nline", false},
		{`quote"`, false},
		{"rid=forged", false},
		{"é", false},
	} {
		if got := Valid(tt.id); got != tt.ok {
			t.Errorf("Valid(%q) = %v, want %v", tt.id, got, tt.ok)
		}
	}
}

func TestSourceMakesDistinctValidIDs(t *testing.T) {
	a, b := NewSource(), NewSource()
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				id := a.New()
				mu.Lock()
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 4000 {
		t.Fatalf("%d distinct IDs out of 4000", len(seen))
	}
	for id := range seen {
		if !Valid(id) {
			t.Fatalf("invalid ID %q", id)
		}
	}
	if x, y := a.New(), b.New(); x[:13] == y[:13] {
		t.Fatalf("two sources share a prefix: %q %q", x, y)
	}
}

func request(headers ...string) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "edgeway.test"})
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.AppendHeader(sip.NewHeader(name, value))
	}
	return req
}

func headerValues(req *sip.Request) []string {
	var out []string
	for _, h := range req.Headers() {
		if strings.EqualFold(h.Name(), Header) {
			out = append(out, h.Value())
		}
	}
	return out
}

// SetSIP leaves exactly one header, whatever spellings of the name the
// request carried (sipgo's RemoveHeader is case-sensitive).
func TestSetSIPReplacesEverySpelling(t *testing.T) {
	req := request("X-Edgeway-Request-ID: a", "x-edgeway-request-id: b", "X-EDGEWAY-REQUEST-ID: c", "Via-Ish: d")
	SetSIP(req, "mine")
	if got := headerValues(req); len(got) != 1 || got[0] != "mine" || FromSIP(req) != "mine" {
		t.Fatalf("after SetSIP: %q", got)
	}
	if req.GetHeader("Via-Ish") == nil {
		t.Fatal("SetSIP removed another header")
	}
}

func TestAdopt(t *testing.T) {
	src := NewSource()
	for _, tt := range []struct {
		name    string
		trusted bool
		headers []string
		keep    string // "" = a new ID
	}{
		{"trusted valid", true, []string{Header + ": edge-1"}, "edge-1"},
		{"trusted other spelling", true, []string{"x-edgeway-request-id: edge-2"}, "edge-2"},
		{"trusted none", true, nil, ""},
		{"trusted two", true, []string{Header + ": edge-1", Header + ": edge-2"}, ""},
		{"trusted malformed", true, []string{Header + ": bad value;x"}, ""},
		{"trusted too long", true, []string{Header + ": " + strings.Repeat("a", MaxLen+1)}, ""},
		{"untrusted valid", false, []string{Header + ": forged"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := request(tt.headers...)
			before := req.String()
			id := Adopt(req, tt.trusted, src)
			if tt.keep != "" && id != tt.keep {
				t.Fatalf("ID %q, want the edge's %q", id, tt.keep)
			}
			if tt.keep == "" && (!Valid(id) || !strings.HasPrefix(id, src.prefix)) {
				t.Fatalf("ID %q, want a new one", id)
			}
			if req.String() != before {
				t.Fatal("Adopt changed the request (sipgo's transaction reads it)")
			}
		})
	}
}

// wrapped is a transaction wrapper like the guard's and the edge's.
type wrapped struct{ sip.ServerTransaction }

func (w wrapped) Unwrap() sip.ServerTransaction { return w.ServerTransaction }

func TestFromTx(t *testing.T) {
	tx := &Tx{ID: "rid-1"}
	if got := FromTx(wrapped{wrapped{tx}}); got != "rid-1" {
		t.Fatalf("through two wrappers: %q", got)
	}
	if got := FromTx(nil); got != "" {
		t.Fatalf("nil: %q", got)
	}
	if got := FromTx(wrapped{}); got != "" {
		t.Fatalf("a wrapper of nothing: %q", got)
	}
}

func TestHTTP(t *testing.T) {
	src := NewSource()
	for _, tt := range []struct {
		name    string
		trusted bool
		values  []string
		keep    string
	}{
		{"trusted", true, []string{"edge-1"}, "edge-1"},
		{"trusted malformed", true, []string{"a b"}, ""},
		{"trusted two", true, []string{"edge-1", "edge-2"}, ""},
		{"untrusted", false, []string{"forged"}, ""},
		{"none", false, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			var leaked []string
			h := HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = FromRequest(r)
				leaked = append(r.Header.Values(Header), r.Header.Values(ResponseHeader)...)
			}), src, func(*http.Request) bool { return tt.trusted })
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tt.values {
				r.Header.Add(Header, v)
			}
			r.Header.Set(ResponseHeader, "forged-response")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if tt.keep != "" && seen != tt.keep {
				t.Fatalf("ID %q, want %q", seen, tt.keep)
			}
			if tt.keep == "" && (!Valid(seen) || !strings.HasPrefix(seen, src.prefix)) {
				t.Fatalf("ID %q, want a new one", seen)
			}
			if got := w.Header().Values(ResponseHeader); len(got) != 1 || got[0] != seen {
				t.Fatalf("response %s: %q, want %q", ResponseHeader, got, seen)
			}
			if len(leaked) != 0 {
				t.Fatalf("the handler saw the client's headers: %q", leaked)
			}
		})
	}
}
