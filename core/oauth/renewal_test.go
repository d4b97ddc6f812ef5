package oauth

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const renewalLifetime = 14 * 24 * time.Hour

// renewalServer is an authorization server on a fresh store with a moving
// clock, a refresh-token lifetime of renewalLifetime and one device.
func renewalServer(t *testing.T) (*Server, *store.SQLite, *testClock) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "core.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &testClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	log := slog.New(slog.DiscardHandler)
	edges, err := admission.New(st, st, nil, clk.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	grace := DefaultRefreshGrace
	s, err := New(ctx, Config{Issuer: "https://renewal:8443", Audience: "urn:edgeway:sip", AccessTokenTTL: time.Hour,
		RefreshTokenTTL: renewalLifetime, RefreshGrace: &grace, ActivationCodeTTL: time.Hour, MaxWrongGuesses: 10, GuessWindow: time.Hour},
		st, edges, log, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutDevice(ctx, store.Device{Name: "SEP001122334455", Model: "8845", Line: "1001"}); err != nil {
		t.Fatal(err)
	}
	return s, st, clk
}

// startRenewalFamily stores the first refresh token of a family, as an
// activation-code grant does, and returns it.
func startRenewalFamily(t *testing.T, s *Server, st *store.SQLite, now time.Time) string {
	t.Helper()
	rt, raw, err := s.newRefresh("fam-renewal", "SEP001122334455", "", token.GrantActivationCode, true, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutRefreshToken(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	return raw
}

var renewalPeer = Peer{MRA: true, Source: "192.0.2.10"}

func seconds(d time.Duration) int { return int(d / time.Second) }

// a refresh before half of the refresh token's lifetime keeps its
// expiry (refresh_token_expires_in counts down); one after half renews it
// to a full lifetime. A lost response fetched again within the refresh
// grace carries the same expiry.
func TestRefreshRenewalAtHalfLifetime(t *testing.T) {
	s, st, clk := renewalServer(t)
	ctx := context.Background()
	t0 := clk.Now()
	raw := startRenewalFamily(t, s, st, t0)

	clk.Advance(renewalLifetime / 4)
	res, err := s.grantRefresh(ctx, renewalPeer, raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := seconds(renewalLifetime * 3 / 4); res.RefreshExpiresIn != want {
		t.Fatalf("R-3: refresh at 0.25 of the lifetime: refresh_token_expires_in %d, want %d (the expiry kept)", res.RefreshExpiresIn, want)
	}
	// The grace's stored response carries the same expiry.
	again, err := s.grantRefresh(ctx, renewalPeer, raw)
	if err != nil {
		t.Fatalf("retry within the grace: %v", err)
	}
	if again.RefreshToken != res.RefreshToken || again.RefreshExpiresIn != res.RefreshExpiresIn {
		t.Fatalf("grace retry: %d (same token %v), want the same response, expiring in %d", again.RefreshExpiresIn, again.RefreshToken == res.RefreshToken, res.RefreshExpiresIn)
	}
	f, err := st.Family(ctx, "fam-renewal")
	if err != nil || !f.ExpiresAt.Equal(t0.Add(renewalLifetime)) {
		t.Fatalf("the family's current token expires %v (%v), want %v", f.ExpiresAt, err, t0.Add(renewalLifetime))
	}

	clk.Advance(renewalLifetime * 35 / 100) // 0.6 of the lifetime
	res2, err := s.grantRefresh(ctx, renewalPeer, res.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if want := seconds(renewalLifetime); res2.RefreshExpiresIn != want {
		t.Fatalf("R-3: refresh at 0.6 of the lifetime: refresh_token_expires_in %d, want %d (renewed)", res2.RefreshExpiresIn, want)
	}
	if f, err := st.Family(ctx, "fam-renewal"); err != nil || !f.ExpiresAt.Equal(clk.Now().Add(renewalLifetime)) {
		t.Fatalf("after renewal the family's current token expires %v (%v), want %v", f.ExpiresAt, err, clk.Now().Add(renewalLifetime))
	}
	// Rotation holds as before: the replaced token, past its grace, is a
	// replay and the family dies (RFC 9700 §4.14.2).
	clk.Advance(MaxRefreshGrace)
	var oe *OAuthError
	if _, err := s.grantRefresh(ctx, renewalPeer, res.RefreshToken); !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("replay of a rotated token: %v, want invalid_grant", err)
	}
	if _, err := s.grantRefresh(ctx, renewalPeer, res2.RefreshToken); !errors.As(err, &oe) || oe.Code != "invalid_grant" {
		t.Fatalf("the family's newest token after a replay: %v, want invalid_grant (family revoked)", err)
	}
}

// a phone that refreshes once a day never has to be onboarded again
// (bounded: 60 days, four lifetimes); refresh_token_expires_in never
// exceeds the lifetime and never falls to half of it.
func TestRefreshDailyNeverExpires(t *testing.T) {
	s, st, clk := renewalServer(t)
	ctx := context.Background()
	raw := startRenewalFamily(t, s, st, clk.Now())
	for day := 1; day <= 60; day++ {
		clk.Advance(24 * time.Hour)
		res, err := s.grantRefresh(ctx, renewalPeer, raw)
		if err != nil {
			t.Fatalf("day %d: %v", day, err)
		}
		if res.RefreshExpiresIn > seconds(renewalLifetime) || res.RefreshExpiresIn <= seconds(renewalLifetime/2)-seconds(24*time.Hour) {
			t.Fatalf("day %d: refresh_token_expires_in %d out of (L/2 - 1 day, L]", day, res.RefreshExpiresIn)
		}
		raw = res.RefreshToken
	}
}

// R-3 keeps the expiry it has not renewed: a refresh token that reached
// it is refused (RFC 6749 §5.2 invalid_grant), even if it was rotated
// before (its successor expires with it).
func TestRefreshAtExpiryRefused(t *testing.T) {
	s, st, clk := renewalServer(t)
	ctx := context.Background()
	raw := startRenewalFamily(t, s, st, clk.Now())
	clk.Advance(renewalLifetime / 10)
	res, err := s.grantRefresh(ctx, renewalPeer, raw)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(renewalLifetime * 9 / 10) // the first token's expiry, kept by its successor
	var oe *OAuthError
	if _, err := s.grantRefresh(ctx, renewalPeer, res.RefreshToken); !errors.As(err, &oe) || oe.Code != "invalid_grant" || oe.Status != 400 {
		t.Fatalf("refresh at the kept expiry: %v, want 400 invalid_grant", err)
	}
}
