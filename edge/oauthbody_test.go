package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// levels records the level of every log record.
type levels struct {
	mu  sync.Mutex
	got []slog.Record
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.got = append(l.got, r)
	l.mu.Unlock()
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

func (l *levels) atLeast(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.got {
		if r.Level >= level {
			out = append(out, r.Message)
		}
	}
	return out
}

// Issue 9 item 14: a 10 MB form to the edge's OAuth endpoints is answered
// 413 with an RFC 6749 §5.2 style error by the edge itself; the core is
// never contacted and nothing is logged about the core being unreachable.
// Both a declared Content-Length and a chunked body of unknown length.
func TestOAuthBodyTooLarge(t *testing.T) {
	rec := &levels{}
	edge, got := testProxyLog(t, slog.New(rec))

	big := bytes.Repeat([]byte("a"), 10<<20)
	form := append([]byte("grant_type=refresh_token&refresh_token="), big...)
	for _, path := range []string{"/oauth2/token", "/oauth2/revoke"} {
		for _, chunked := range []bool{false, true} {
			var body io.Reader = bytes.NewReader(form)
			if chunked {
				body = io.MultiReader(body) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, edge.URL+path, body)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s chunked=%v: %v", path, chunked, err)
			}
			var e map[string]string
			derr := json.NewDecoder(res.Body).Decode(&e)
			res.Body.Close()
			if res.StatusCode != http.StatusRequestEntityTooLarge || derr != nil || e["error"] != "invalid_request" || e["error_description"] == "" {
				t.Errorf("%s chunked=%v: HTTP %d %v %v, want 413 invalid_request", path, chunked, res.StatusCode, derr, e)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q", path, ct)
			}
		}
	}
	if reqs := got.take(); len(reqs) != 0 {
		t.Errorf("the core was contacted %d times", len(reqs))
	}
	if warns := rec.atLeast(slog.LevelWarn); len(warns) != 0 {
		t.Errorf("logged at WARN or above: %q", warns)
	}

	// A form at the limit still goes through whole.
	ok := "grant_type=refresh_token&refresh_token=" + strings.Repeat("b", MaxOAuthBody-len("grant_type=refresh_token&refresh_token="))
	res, err := http.Post(edge.URL+"/oauth2/token", "application/x-www-form-urlencoded", io.MultiReader(strings.NewReader(ok)))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	reqs := got.take()
	if res.StatusCode != 200 || len(reqs) != 1 {
		t.Fatalf("form of %d bytes: HTTP %d, core saw %d requests", len(ok), res.StatusCode, len(reqs))
	}
	b, _ := io.ReadAll(reqs[0].Body)
	if string(b) != ok {
		t.Errorf("core got %d bytes, want the %d sent", len(b), len(ok))
	}
}

// FuzzEdgeTokenForm fuzzes the edge's /oauth2/token: a body over
// MaxOAuthBody is 413 invalid_request from the edge and never reaches the
// core; any other POST reaches the core byte for byte, with the phone's
// Content-Type, and is never 503 (the core is up). Seeds above and in
// testdata/fuzz/FuzzEdgeTokenForm.
func FuzzEdgeTokenForm(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", []byte("grant_type=refresh_token&refresh_token=ewr_x"), false)
	f.Add("application/x-www-form-urlencoded", []byte("grant_type=password&username=a&password=b"), true)
	f.Add("application/json", []byte(`{"grant_type":"refresh_token"}`), false)
	f.Add("", []byte{}, false)
	f.Add("application/x-www-form-urlencoded", bytes.Repeat([]byte("a"), MaxOAuthBody+1), true)
	f.Add("application/x-www-form-urlencoded", bytes.Repeat([]byte("a"), MaxOAuthBody), false)
	rec := &levels{}
	edge, got := testProxyLog(f, slog.New(rec))
	client := edge.Client()
	client.Timeout = 10 * time.Second
	f.Fuzz(func(t *testing.T, contentType string, body []byte, chunked bool) {
		var rd io.Reader = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd)
		}
		req, err := http.NewRequest(http.MethodPost, edge.URL+"/oauth2/token", rd)
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if req.Header.Get("Content-Type") != contentType {
			return // not a header value net/http sends as is
		}
		res, err := client.Do(req)
		if errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
			t.Fatalf("%d-byte body (chunked %v, %q): %v", len(body), chunked, contentType, err)
		}
		if err != nil {
			return // the client refused to send it
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		reqs := got.take()
		if len(body) > MaxOAuthBody {
			var e map[string]string
			if res.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(b, &e) != nil || e["error"] != "invalid_request" {
				t.Fatalf("%d-byte body: HTTP %d %q, want 413 invalid_request", len(body), res.StatusCode, b)
			}
			if len(reqs) != 0 {
				t.Fatalf("%d-byte body reached the core", len(body))
			}
			return
		}
		if res.StatusCode != http.StatusOK || len(reqs) != 1 {
			t.Fatalf("%d-byte body: HTTP %d, core saw %d requests", len(body), res.StatusCode, len(reqs))
		}
		fwd, _ := io.ReadAll(reqs[0].Body)
		// (HTTP drops a field value's surrounding whitespace, RFC 9110 §5.5.)
		if !bytes.Equal(fwd, body) || reqs[0].Header.Get("Content-Type") != strings.Trim(contentType, " \t") {
			t.Fatalf("the core got %d bytes (%q), want the %d sent (%q)", len(fwd), reqs[0].Header.Get("Content-Type"), len(body), contentType)
		}
		if warns := rec.atLeast(slog.LevelWarn); len(warns) != 0 {
			t.Fatalf("logged at WARN: %q", warns)
		}
	})
}
