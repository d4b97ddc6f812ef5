package core

import (
	"bytes"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const formType = "application/x-www-form-urlencoded"

// formLimit is parseForm's body limit (RFC 6749 §3.2 endpoint, 8 KiB).
const formLimit = 8 << 10

// wantFormStatus is what parseForm must answer, worked out independently:
// 0 for accepted, else the HTTP status of the refusal.
func wantFormStatus(method, contentType string, body []byte) int {
	if method != http.MethodPost {
		return http.StatusMethodNotAllowed
	}
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != formType {
		return http.StatusBadRequest
	}
	if len(body) > formLimit {
		return http.StatusRequestEntityTooLarge // issue 9 item 14
	}
	vs, err := url.ParseQuery(string(body))
	if err != nil {
		return http.StatusBadRequest
	}
	for _, v := range vs {
		if len(v) > 1 { // RFC 6749 §3.2: parameters must not repeat
			return http.StatusBadRequest
		}
	}
	return 0
}

// callParseForm runs parseForm on one request; ok is false when the
// method cannot be put on a request at all.
func callParseForm(t *testing.T, method, contentType string, body []byte) (e *OAuthError, w *httptest.ResponseRecorder, r *http.Request, ok bool) {
	t.Helper()
	r, err := http.NewRequest(method, "https://core.edgeway.test:8443/oauth2/token", bytes.NewReader(body))
	if err != nil {
		return nil, nil, nil, false
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w = httptest.NewRecorder()
	return parseForm(w, r), w, r, true
}

func checkParseForm(t *testing.T, method, contentType string, body []byte) {
	t.Helper()
	e, w, r, ok := callParseForm(t, method, contentType, body)
	if !ok {
		return
	}
	want := wantFormStatus(method, contentType, body)
	if e == nil {
		if want != 0 {
			t.Fatalf("parseForm(%q, %q, %d bytes) accepted, want status %d", method, contentType, len(body), want)
		}
		for k, v := range r.PostForm {
			if len(v) != 1 {
				t.Fatalf("accepted form has %q repeated: %q", k, v)
			}
		}
		return
	}
	if e.Status != http.StatusBadRequest && e.Status != http.StatusMethodNotAllowed && e.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("parseForm status = %d, want 400, 405 or 413", e.Status)
	}
	if e.Code == "" {
		t.Fatalf("parseForm error without a code: %+v", e)
	}
	if e.Code != "invalid_request" {
		t.Fatalf("parseForm code = %q, want invalid_request (RFC 6749 §5.2)", e.Code)
	}
	if e.Status != want {
		t.Fatalf("parseForm(%q, %q, %d bytes) = %d %s (%s), want %d", method, contentType, len(body), e.Status, e.Code, e.Description, want)
	}
	if e.Status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "POST" {
		t.Fatalf("405 without Allow: POST (RFC 9110 §15.5.6), got %q", w.Header().Get("Allow"))
	}
}

var formSeeds = []struct {
	name, method, contentType, body string
	wantStatus                      int // 0: accepted
}{
	{"activation grant", "POST", formType, "grant_type=" + url.QueryEscape(GrantTypeActivationCode) + "&device=SEP001122334401&activation_code=1234-5678-9012-3456", 0},
	{"refresh grant", "POST", formType, "grant_type=refresh_token&refresh_token=ewr_abc", 0},
	{"charset parameter", "POST", formType + "; charset=UTF-8", "grant_type=password&username=demo&password=x", 0},
	{"media type case-insensitive", "POST", "Application/X-WWW-Form-URLEncoded", "grant_type=refresh_token", 0},
	{"empty body", "POST", formType, "", 0},
	{"exactly 8 KiB", "POST", formType, "a=" + strings.Repeat("b", formLimit-2), 0},
	{"repeated grant_type (RFC 6749 §3.2)", "POST", formType, "grant_type=password&grant_type=refresh_token", 400},
	{"repeated with same value (RFC 6749 §3.2)", "POST", formType, "device=a&device=a", 400},
	{"repeated empty key (RFC 6749 §3.2)", "POST", formType, "=1&=2", 400},
	{"9 KiB body (8 KiB limit)", "POST", formType, "a=" + strings.Repeat("b", 9<<10), 413},
	{"one byte over 8 KiB", "POST", formType, "a=" + strings.Repeat("b", formLimit-1), 413},
	{"JSON content type", "POST", "application/json", `{"grant_type":"password"}`, 400},
	{"multipart content type", "POST", "multipart/form-data; boundary=x", "--x--", 400},
	{"no content type", "POST", "", "grant_type=password", 400},
	{"malformed content type", "POST", "application/x-www-form-urlencoded; =", "grant_type=password", 400},
	{"bad percent escape", "POST", formType, "grant_type=%zz", 400},
	{"semicolon separator", "POST", formType, "a=1;b=2", 400},
	{"GET", "GET", formType, "grant_type=password", 405},
	{"PUT", "PUT", formType, "grant_type=password", 405},
	{"lower-case post", "post", formType, "grant_type=password", 405},
}

func TestParseForm(t *testing.T) {
	for _, s := range formSeeds {
		t.Run(s.name, func(t *testing.T) {
			e, w, r, ok := callParseForm(t, s.method, s.contentType, []byte(s.body))
			if !ok {
				t.Fatalf("cannot build request with method %q", s.method)
			}
			if s.wantStatus == 0 {
				if e != nil {
					t.Fatalf("parseForm = %v, want accepted", e)
				}
				if s.body != "" && len(r.PostForm) == 0 {
					t.Fatalf("accepted but PostForm empty")
				}
				return
			}
			if e == nil {
				t.Fatalf("parseForm accepted, want %d", s.wantStatus)
			}
			if e.Status != s.wantStatus || e.Code != "invalid_request" {
				t.Fatalf("parseForm = %d %s (%s), want %d invalid_request", e.Status, e.Code, e.Description, s.wantStatus)
			}
			if s.wantStatus == 405 && w.Header().Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", w.Header().Get("Allow"))
			}
		})
	}
}

func FuzzTokenForm(f *testing.F) {
	for _, s := range formSeeds {
		f.Add(s.method, s.contentType, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, contentType string, body []byte) {
		checkParseForm(t, method, contentType, body)
	})
}
