package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/internal/store"
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

// FuzzTokenForm fuzzes the token endpoint: its form parsing (parseForm
// against an independent oracle) and the grant dispatch behind it (a real
// core on a fresh store, called in-process). Seeds above and in
// testdata/fuzz/FuzzTokenForm.
func FuzzTokenForm(f *testing.F) {
	for _, s := range formSeeds {
		f.Add(s.method, s.contentType, []byte(s.body))
	}
	for _, s := range dispatchSeeds {
		f.Add(s.method, s.contentType, []byte(s.body))
	}
	srv := dispatchServer(f, f.TempDir())
	f.Fuzz(func(t *testing.T, method, contentType string, body []byte) {
		checkParseForm(t, method, contentType, body)
		checkDispatch(t, srv, method, contentType, body)
	})
}

// dispatchServer is an authorization server on a fresh store for
// calling the token endpoint in-process (no sockets), configured as
// core.Config's defaults configure it.
func dispatchServer(tb testing.TB, dir string) *Server {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "core.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	edges, err := admission.New(st, st, nil, time.Now, log)
	if err != nil {
		tb.Fatal(err)
	}
	grace := DefaultRefreshGrace
	cfg := Config{Issuer: "https://fuzz:8443", Audience: "urn:edgeway:sip", AccessTokenTTL: time.Hour, RefreshTokenTTL: 60 * 24 * time.Hour,
		RefreshGrace: &grace, ActivationCodeTTL: 168 * time.Hour, MaxWrongGuesses: 10, GuessWindow: time.Hour}
	s, err := New(ctx, cfg, st, edges, log, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// oauthErrorCodes are the RFC 6749 §5.2 (and RFC 8628 slow_down, RFC 6749
// §4.1.2.1 temporarily_unavailable) codes the token endpoint may answer.
var oauthErrorCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "slow_down": true, "temporarily_unavailable": true,
}

// checkDispatch sends one request through the token endpoint: whatever the
// form, the answer is an RFC 6749 §5.1/§5.2 JSON response with a status the
// endpoint may give, never 500, and the form refusals and grant dispatch
// agree with wantFormStatus and the grant_type.
func checkDispatch(t *testing.T, s *Server, method, contentType string, body []byte) {
	t.Helper()
	r, err := http.NewRequest(method, "https://core.edgeway.test:8443/oauth2/token", bytes.NewReader(body))
	if err != nil {
		return
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.RemoteAddr = "192.0.2.10:40000"
	want := wantFormStatus(method, contentType, body)
	var form url.Values
	if want == 0 {
		form, _ = url.ParseQuery(string(body))
		// Each password check costs 64 MiB of Argon2id: the fuzzer stops
		// short of it (the checks before it still run).
		if form.Get("grant_type") == "password" && form.Get("username") != "" && form.Get("password") != "" {
			return
		}
	}
	w := httptest.NewRecorder()
	s.HandleToken(w, r)
	res := w.Result()
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q (status %d)", ct, res.StatusCode)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token response without Cache-Control: no-store (RFC 6749 §5.1)")
	}
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("status %d, body is not JSON: %q", res.StatusCode, w.Body.String())
	}
	switch res.StatusCode {
	case 200:
		if v["access_token"] == nil || v["token_type"] != "Bearer" {
			t.Fatalf("200 without an access token: %v", v)
		}
		return
	case 400, 401, 403, 405, 413, 429, 503:
	default:
		t.Fatalf("status %d: %v", res.StatusCode, v)
	}
	code, _ := v["error"].(string)
	if !oauthErrorCodes[code] {
		t.Fatalf("status %d with error %q, not an RFC 6749 §5.2 code", res.StatusCode, code)
	}
	if (res.StatusCode == 429 || res.StatusCode == 503) && res.Header.Get("Retry-After") == "" {
		t.Fatalf("%d without Retry-After", res.StatusCode)
	}
	if want != 0 {
		if res.StatusCode != want || code != "invalid_request" {
			t.Fatalf("form refusal: %d %s, want %d invalid_request", res.StatusCode, code, want)
		}
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "":
		if res.StatusCode != 400 || code != "invalid_request" {
			t.Fatalf("no grant_type: %d %s", res.StatusCode, code)
		}
	case GrantTypeActivationCode, "refresh_token", "password":
		if code == "unsupported_grant_type" {
			t.Fatalf("grant %q dispatched as unsupported", gt)
		}
	default:
		if res.StatusCode != 400 || code != "unsupported_grant_type" {
			t.Fatalf("grant_type %q: %d %s, want 400 unsupported_grant_type", gt, res.StatusCode, code)
		}
	}
}

var dispatchSeeds = []struct{ method, contentType, body string }{
	{"POST", formType, "grant_type=refresh_token&refresh_token=ewr_AAAA"},
	{"POST", formType, "grant_type=refresh_token&refresh_token=not-ours"},
	{"POST", formType, "grant_type=refresh_token"},
	{"POST", formType, "grant_type=" + url.QueryEscape(GrantTypeActivationCode) + "&device=SEP001122334401&activation_code=1234567890123456"},
	{"POST", formType, "grant_type=" + url.QueryEscape(GrantTypeActivationCode) + "&device=SEP001122334401&activation_code=12"},
	{"POST", formType, "grant_type=" + url.QueryEscape(GrantTypeActivationCode)},
	{"POST", formType, "grant_type=password&username=demo"},
	{"POST", formType, "grant_type=client_credentials"},
	{"POST", formType, "grant_type=authorization_code&code=x"},
	{"POST", formType, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"},
	{"POST", formType, "grant_type=%00"},
}

// TestTokenDispatch runs the form and dispatch seeds once as a test.
func TestTokenDispatch(t *testing.T) {
	s := dispatchServer(t, t.TempDir())
	for _, sd := range dispatchSeeds {
		checkDispatch(t, s, sd.method, sd.contentType, []byte(sd.body))
	}
	for _, sd := range formSeeds {
		checkDispatch(t, s, sd.method, sd.contentType, []byte(sd.body))
	}
}
