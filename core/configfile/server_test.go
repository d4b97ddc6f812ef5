package configfile

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// The config server's answers, in process: no sockets, no store.

type fakeAuth map[string]string // token → device

func (f fakeAuth) PeerOf(r *http.Request) (oauth.Peer, *oauth.OAuthError) {
	return oauth.Peer{Source: "198.51.100.7"}, nil
}

func (f fakeAuth) CheckAccessToken(_ context.Context, raw string) (*token.Claims, error) {
	if raw == "store-down" {
		return nil, errors.New("store down")
	}
	if dev, ok := f[raw]; ok {
		return &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: dev}}, nil
	}
	return nil, &oauth.TokenError{Reason: "token expired"}
}

type fakeStore struct{}

func (fakeStore) GetDevice(_ context.Context, name string) (store.Device, error) {
	if name == "SEP001122334401" {
		return store.Device{Name: name, Model: "8845", Line: "1001", SecurityProfile: "oauth"}, nil
	}
	return store.Device{}, store.ErrNotFound
}

func (fakeStore) GetSecurityProfile(_ context.Context, name string) (store.SecurityProfile, error) {
	return store.SecurityProfile{Name: name, Mode: "encrypted", Transport: "TLS", OAuth: true}, nil
}

type fakeTrust []byte

func (f fakeTrust) Bundle(context.Context, string) ([]byte, error) { return f, nil }

func get(t *testing.T, s *Server, path, auth string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://cucm1:6971"+path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

func testServer(trust []byte) *Server {
	return New(Config{SIPDomain: "edgeway.test", AdvertisedHost: "cucm1.edgeway.test", PhoneOAuthPort: 5090, Issuer: "https://cucm1:8443"},
		fakeAuth{"alice": "SEP001122334401", "ghost": "SEP0000000000GONE"}, fakeStore{}, fakeTrust(trust), slog.New(slog.DiscardHandler))
}

// S-2: a config file goes only to its own device's valid token; the
// refusals carry their RFC 6750 challenge, an infrastructure failure asks
// the phone to retry.
func TestConfigFileRefusals(t *testing.T) {
	s := testServer([]byte("-----BEGIN CERTIFICATE-----\n"))
	for _, tt := range []struct {
		name, path, auth string
		status           int
		challenge        string // a substring of WWW-Authenticate, "" for none expected
	}{
		{"no token", "/SEP001122334401.cnf.xml", "", 401, "Bearer"},
		{"not Bearer", "/SEP001122334401.cnf.xml", "Basic YTpi", 401, "Bearer"},
		{"invalid token", "/SEP001122334401.cnf.xml", "Bearer forged", 401, `error="invalid_token"`},
		{"another device's file", "/SEP001122334402.cnf.xml", "Bearer alice", 403, `error="insufficient_scope"`},
		{"unknown device", "/SEP0000000000GONE.cnf.xml", "Bearer ghost", 404, ""},
		{"store down", "/SEP001122334401.cnf.xml", "Bearer store-down", 503, ""},
		{"trust to a deleted device", "/phone-edge-trust.pem", "Bearer ghost", 401, `error="invalid_token"`},
		{"not a config file", "/../SEP001122334401.cnf.xml", "Bearer alice", 404, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := get(t, s, tt.path, tt.auth)
			if w.Code != tt.status {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.status)
			}
			if tt.challenge != "" && !strings.Contains(w.Header().Get("WWW-Authenticate"), tt.challenge) {
				t.Fatalf("WWW-Authenticate %q, want %q", w.Header().Get("WWW-Authenticate"), tt.challenge)
			}
			if tt.status == 503 && w.Header().Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
		})
	}
}

// On premises the file points the phone at this node's Phone OAuth port
// (S-11) and the core's token endpoint; Phone-Edge-Trust is served to a
// valid token (S-8), 404 while it is empty.
func TestConfigFileServed(t *testing.T) {
	s := testServer([]byte("-----BEGIN CERTIFICATE-----\n"))
	w := get(t, s, "/SEP001122334401.cnf.xml", "Bearer alice")
	if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, Cache-Control %q", w.Code, w.Header().Get("Cache-Control"))
	}
	var cfg DeviceConfig
	if err := xml.Unmarshal(w.Body.Bytes(), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.MRA || cfg.SIPServer.Address() != "cucm1.edgeway.test:5090" || cfg.TokenEndpoint != "https://cucm1:8443/oauth2/token" ||
		len(cfg.Lines) != 1 || cfg.Lines[0].Number != "1001" || !cfg.SecurityProfile.OAuth {
		t.Fatalf("config %+v", cfg)
	}
	if w := get(t, s, PhoneEdgeTrustFile, "Bearer alice"); w.Code != 200 || !strings.HasPrefix(w.Body.String(), "-----BEGIN") {
		t.Fatalf("trust: %d %q", w.Code, w.Body)
	}
	if w := get(t, testServer(nil), PhoneEdgeTrustFile, "Bearer alice"); w.Code != 404 {
		t.Fatalf("empty trust: %d, want 404 (S-8)", w.Code)
	}
}
