package edge

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/turncred"
)

func fakeJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":"SEP001122334401","exp":%d}`, exp.Unix()))) + "." + enc([]byte("sig"))
}

// tokenProxy is an edge whose core answers /oauth2/token with what
// respond writes.
func tokenProxy(t *testing.T, secret []byte, respond func(w http.ResponseWriter, r *http.Request)) *httptest.Server {
	t.Helper()
	core := httptest.NewServer(http.HandlerFunc(respond))
	t.Cleanup(core.Close)
	cu, _ := url.Parse(core.URL)
	cfg := Config{Node: "expe-1", AdvertisedHost: "expe-1.example.com", PublicURL: "https://expe-1.example.com:8443",
		CoreURL: core.URL, CoreConfigURL: core.URL + "/cfg/",
		TURN: TURNConfig{PublicHost: "turn.example.com", Listen: "0.0.0.0:3478", TLSListen: "0.0.0.0:5349"}}
	s := &Server{cfg: cfg, log: slog.New(slog.DiscardHandler), coreURL: cu, http: &http.Client{Transport: core.Client().Transport}, turnSecret: secret}
	s.activationBudget = testBudget(t, cfg)
	s.coreConfigURL, _ = url.Parse(cfg.CoreConfigURL)
	edge := httptest.NewServer(s.httpHandler(5061))
	t.Cleanup(edge.Close)
	return edge
}

func postToken(t *testing.T, edge *httptest.Server) (*http.Response, []byte) {
	t.Helper()
	res, err := http.PostForm(edge.URL+"/oauth2/token", url.Values{"grant_type": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func TestTokenResponseCarriesTURN(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expiresIn int
		jwtExp    time.Duration // exp claim, from now
		maxTTL    int64
	}{
		{"ttl from expires_in", 3600, time.Hour, 3600},
		{"the token's exp is earlier", 3600, 100 * time.Second, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tokExp := start.Add(tc.jwtExp)
			orig := map[string]any{"access_token": fakeJWT(tokExp), "token_type": "Bearer", "expires_in": tc.expiresIn,
				"refresh_token": "ewr_r", "device": "SEP001122334401", "scope": "sip"}
			edge := tokenProxy(t, testTURNSecret, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.Header().Set("Cache-Control", "no-store")
				_ = json.NewEncoder(w).Encode(orig)
			})
			res, body := postToken(t, edge)
			if res.StatusCode != 200 {
				t.Fatalf("HTTP %d: %s", res.StatusCode, body)
			}
			if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length %q, body is %d bytes", cl, len(body))
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q lost", res.Header.Get("Cache-Control"))
			}
			var got struct {
				AccessToken string    `json:"access_token"`
				ExpiresIn   int       `json:"expires_in"`
				Device      string    `json:"device"`
				Refresh     string    `json:"refresh_token"`
				TURN        TURNOffer `json:"turn"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.AccessToken != orig["access_token"] || got.ExpiresIn != tc.expiresIn || got.Device != "SEP001122334401" || got.Refresh != "ewr_r" {
				t.Errorf("token fields changed: %s", body)
			}
			wantURLs := []string{"turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp", "turns:turn.example.com:5349?transport=tcp"}
			if strings.Join(got.TURN.URLs, " ") != strings.Join(wantURLs, " ") {
				t.Errorf("urls %q, want %q", got.TURN.URLs, wantURLs)
			}
			if got.TURN.TTL <= 0 || got.TURN.TTL > tc.maxTTL || got.TURN.TTL < tc.maxTTL-5 {
				t.Errorf("ttl %d, want about %d and never more", got.TURN.TTL, tc.maxTTL)
			}
			name, err := turncred.Check(testTURNSecret, got.TURN.Username, got.TURN.Credential, time.Now())
			if err != nil || name != (turncred.Name{Device: "SEP001122334401"}) {
				t.Errorf("credential does not verify: %+v, %v", name, err)
			}
			// It expires no later than the token (nor than expires_in).
			if _, err := turncred.Check(testTURNSecret, got.TURN.Username, got.TURN.Credential, tokExp); !errors.Is(err, turncred.ErrExpired) {
				t.Errorf("credential still valid when the token expires: %v", err)
			}
			if _, err := turncred.Check(testTURNSecret, got.TURN.Username, got.TURN.Credential, start.Add(time.Duration(tc.expiresIn)*time.Second)); !errors.Is(err, turncred.ErrExpired) {
				t.Errorf("credential valid past expires_in: %v", err)
			}
		})
	}
}

func TestTokenResponsePassesThrough(t *testing.T) {
	tokenJSON := `{"access_token":"a.b.c","expires_in":3600,"device":"SEP001122334401"}`
	for _, tc := range []struct {
		name   string
		secret []byte
		status int
		ctype  string
		body   string
	}{
		{"error response", testTURNSecret, 400, "application/json", `{"error":"invalid_grant","error_description":"used"}`},
		{"not JSON", testTURNSecret, 200, "text/plain", tokenJSON},
		{"no device", testTURNSecret, 200, "application/json", `{"access_token":"a.b.c","expires_in":3600}`},
		{"no expires_in", testTURNSecret, 200, "application/json", `{"access_token":"a.b.c","device":"SEP1"}`},
		{"zero expires_in", testTURNSecret, 200, "application/json", `{"access_token":"a.b.c","expires_in":0,"device":"SEP1"}`},
		{"broken JSON", testTURNSecret, 200, "application/json", `{"access_token":`},
		{"TURN off", nil, 200, "application/json", tokenJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edge := tokenProxy(t, tc.secret, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			res, body := postToken(t, edge)
			if res.StatusCode != tc.status || string(body) != tc.body {
				t.Errorf("HTTP %d %q; want %d %q untouched", res.StatusCode, body, tc.status, tc.body)
			}
		})
	}
	// Other endpoints through the same proxy are untouched too.
	edge := tokenProxy(t, testTURNSecret, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, tokenJSON)
	})
	res, err := http.Get(edge.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != tokenJSON {
		t.Errorf("JWKS response rewritten: %s", body)
	}
}

// The credential names the access token's refresh family (claim "fam"),
// so revoking the family refuses it (edge/relay/revoke.go); a token that
// is not a JWT gets a credential without family, for expires_in.
func TestTokenResponseTURNFamily(t *testing.T) {
	s := &Server{turnSecret: testTURNSecret, cfg: Config{TURN: TURNConfig{PublicHost: "turn.example.com", Listen: ":3478", TLSListen: ":5349"}}}
	enc := base64.RawURLEncoding.EncodeToString
	now := time.Now()
	withFam := enc([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc(fmt.Appendf(nil, `{"sub":"SEP1","exp":%d,"fam":"family-7"}`, now.Add(time.Hour).Unix())) + "." + enc([]byte("sig"))
	for _, tc := range []struct {
		access string
		want   turncred.Name
	}{
		{withFam, turncred.Name{Device: "SEP1", Family: turncred.FamilyTag("family-7")}},
		{"opaque", turncred.Name{Device: "SEP1"}},
	} {
		body, ok := s.withTURN(fmt.Appendf(nil, `{"access_token":%q,"expires_in":600,"device":"SEP1"}`, tc.access), now)
		if !ok {
			t.Fatalf("%s: no TURN offer", tc.access)
		}
		var res struct{ TURN TURNOffer }
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		name, err := turncred.Check(testTURNSecret, res.TURN.Username, res.TURN.Credential, now)
		if err != nil || name != tc.want {
			t.Errorf("%.20s: credential names %+v (%v), want %+v", tc.access, name, err, tc.want)
		}
		if res.TURN.TTL != 600 {
			t.Errorf("%.20s: ttl %d, want expires_in 600", tc.access, res.TURN.TTL)
		}
	}
}

// R-2, RFC 7009 §2.1: the admin API is not reachable through the edge. A
// revocation carrying credentials (an administrator's admin API token, or
// anything else) is refused by the edge itself, 401 invalid_client, and
// never reaches the core; a phone's own revocation (the token alone) goes
// through. No credential reaches the core's OAuth endpoints: the edge drops
// Authorization from a token request.
func TestEdgeRevokeTakesNoCredentials(t *testing.T) {
	edge, got := testProxy(t)
	post := func(path, auth string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, edge.URL+path, strings.NewReader("token=ewr_x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, auth := range []string{"Bearer ewa_admin-token", "Basic YTpi"} {
		if res := post("/oauth2/revoke", auth); res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("revoke with %q: HTTP %d, want 401 with a challenge", auth, res.StatusCode)
		}
		if reqs := got.take(); len(reqs) != 0 {
			t.Errorf("revoke with %q reached the core", auth)
		}
	}
	if res := post("/oauth2/revoke", ""); res.StatusCode != 200 || len(got.take()) != 1 {
		t.Errorf("a phone's own revocation: HTTP %d, want it forwarded", res.StatusCode)
	}
	post("/oauth2/token", "Bearer ewa_admin-token")
	reqs := got.take()
	if len(reqs) != 1 {
		t.Fatalf("token request: core saw %d requests, want 1", len(reqs))
	}
	if a := reqs[0].Header.Get("Authorization"); a != "" {
		t.Errorf("token request: core saw Authorization %q, want it dropped", a)
	}
}
