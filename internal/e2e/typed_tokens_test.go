package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
)

// jwtPart decodes part i (0 header, 1 claims) of a compact JWS.
func jwtPart(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// RFC 9068: the access tokens the core issues through the edge are typed
// at+jwt and carry iss, exp, aud, sub, client_id, iat and jti (§2.2);
// refresh tokens stay opaque. A JWT of another type signed with the
// core's own key is refused by the edge's pre-check (the core never sees
// it) and by the core (RFC 9068 §4, RFC 8725 §3.11). Tokens of the format
// of the release before (typ JWT, golang-jwt's default; or no typ) verify
// if issued before the node started, until they expire; one issued after
// is refused.
func TestAccessTokensTyped(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	env := testenv.Start(t, testenv.Options{CoreOptions: []core.Option{core.WithClock(clk.Now)}})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	tok, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	h, c := jwtPart(t, tok.AccessToken, 0), jwtPart(t, tok.AccessToken, 1)
	if h["typ"] != "at+jwt" {
		t.Errorf("access token header %v: want typ at+jwt (RFC 9068 §2.1)", h)
	}
	for _, k := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti"} {
		if _, ok := c[k]; !ok {
			t.Errorf("access token claims %v: no %s (RFC 9068 §2.2)", c, k)
		}
	}
	if c["client_id"] != phoneA || c["sub"] != phoneA || c["iss"] != env.Layout.Core.Issuer {
		t.Errorf("claims %v: want client_id and sub %s, iss %s", c, phoneA, env.Layout.Core.Issuer)
	}
	if strings.Count(tok.RefreshToken, ".") == 2 || !strings.HasPrefix(tok.RefreshToken, "ewr_") {
		t.Errorf("refresh token %q: want an opaque ewr_ token, not a JWT", tok.RefreshToken)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("typed token: REGISTER %v %v", res, err)
	}

	onPrem := env.Phone(phoneA, false)
	// The core's clock stands at its start; the edge's is the real one.
	// typ JWT issued after both started (the legacy format, too late), and
	// other types issued before (never an access token).
	// (iat has whole seconds: two seconds on is after either start, and
	// well within the leeway for an iat in the future.)
	afterStart, beforeStart := time.Now().Add(2*time.Second), clk.Now().Add(-time.Minute)
	for _, tc := range []struct {
		typ string
		iat time.Time
	}{{"JWT", afterStart}, {"refresh+jwt", beforeStart}, {"secevent+jwt", afterStart}} {
		typ := tc.typ
		other := env.SignTypedWithCoreKey(t, typ, env.Claims(phoneA, tc.iat))
		core1, edge1 := scrapeOps(t, env.Info.CoreOps), scrapeOps(t, env.Info.EdgeOps)
		expectRefusal(t, ph, "typ "+typ+" at the edge", "Bearer "+other, 401, "invalid_token")
		core2, edge2 := scrapeOps(t, env.Info.CoreOps), scrapeOps(t, env.Info.EdgeOps)
		checkDelta(t, "typ "+typ, edge1, edge2, 1, "edgeway_edge_sip_refusals_total", "reason", "invalid_token")
		checkDelta(t, "typ "+typ+" (the edge's pre-check refuses it; the core never sees it)", core1, core2, 0, "edgeway_core_register_responses_total", "port", "mra", "code", "401")
		res, err := ph.RegisterWith(ctx, "Bearer "+other, 600)
		if err != nil || !strings.Contains(wwwAuth(res), "RFC 9068 §4") {
			t.Errorf("typ %s at the edge: challenge %q, want one naming RFC 9068 §4", typ, wwwAuth(res))
		}
		expectRefusal(t, onPrem, "typ "+typ+" at the core", "Bearer "+other, 401, "invalid_token")
		res, err = onPrem.RegisterWith(ctx, "Bearer "+other, 600)
		if err != nil || !strings.Contains(wwwAuth(res), "RFC 9068 §4") || !strings.Contains(wwwAuth(res), "RFC 8725 §3.11") {
			t.Errorf("typ %s at the core: challenge %q, want one naming RFC 9068 §4 and RFC 8725 §3.11", typ, wwwAuth(res))
		}
	}

	// The transition. Both nodes started after clk's start: a token issued
	// a minute before was issued before the upgrade. The release before
	// signed with golang-jwt's default header, typ JWT.
	legacy := map[string]string{
		"typ JWT": env.SignTypedWithCoreKey(t, "JWT", env.Claims(phoneA, beforeStart)),
		"no typ":  env.SignTypedWithCoreKey(t, "", env.Claims(phoneA, beforeStart)),
	}
	for name, old := range legacy {
		if res, err := ph.RegisterWith(ctx, "Bearer "+old, 600); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s, issued before the upgrade, through the edge: %v %v (%q)", name, res, err, wwwAuth(res))
		}
		if res, err := onPrem.RegisterWith(ctx, "Bearer "+old, 600); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s, issued before the upgrade, at the core: %v %v (%q)", name, res, err, wwwAuth(res))
		}
	}
	// One issued after the core's start (its clock moved on) is refused.
	clk.Advance(time.Minute)
	for _, typ := range []string{"JWT", ""} {
		expectRefusal(t, onPrem, "legacy typ "+typ+", issued after the upgrade", "Bearer "+env.SignTypedWithCoreKey(t, typ, env.Claims(phoneA, clk.Now())), 401, "invalid_token")
	}
	// And the old ones stop when they expire (env.Claims: one hour).
	clk.Advance(time.Hour)
	for name, old := range legacy {
		expectRefusal(t, onPrem, name+", issued before the upgrade, expired", "Bearer "+old, 401, "invalid_token")
	}
}
