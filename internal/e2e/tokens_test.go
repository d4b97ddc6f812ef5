package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/testenv"
)

func wwwAuth(res *sip.Response) string {
	if h := res.GetHeader("WWW-Authenticate"); h != nil {
		return h.Value()
	}
	return ""
}

// expectRefusal registers with auth and checks status and, for 401, the
// RFC 6750 error code in the Bearer challenge ("" = plain challenge).
func expectRefusal(t *testing.T, ph *bench.Phone, name, auth string, status int, bearerErr string) {
	t.Helper()
	res, err := ph.RegisterWith(context.Background(), auth, 600)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.StatusCode != status {
		t.Errorf("%s: status %d %s, want %d (WWW-Authenticate %q)", name, res.StatusCode, res.Reason, status, wwwAuth(res))
		return
	}
	if status != 401 {
		return
	}
	ch := wwwAuth(res)
	if !strings.HasPrefix(ch, `Bearer realm="edgeway.test"`) {
		t.Errorf("%s: challenge %q, want Bearer realm (RFC 8898)", name, ch)
	}
	if bearerErr == "" && strings.Contains(ch, "error=") {
		t.Errorf("%s: challenge %q must not carry an error code", name, ch)
	}
	if bearerErr != "" && !strings.Contains(ch, `error="`+bearerErr+`"`) {
		t.Errorf("%s: challenge %q, want error=%q", name, ch, bearerErr)
	}
}

// S-2, RFC 8898, RFC 6750 §3.1: every bad token is refused at the edge or
// the core, with the right code, and leaves no binding.
func TestTokenRefusals(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	env := testenv.Start(t, testenv.Options{
		CoreOptions: []core.Option{core.WithClock(clk.Now)},
		BeforeStart: func(ctx context.Context, e *testenv.Env) error {
			if err := e.Store.PutSecurityProfile(ctx, store.SecurityProfile{Name: "Non-secure", Mode: "non-secure", Transport: "TCP"}); err != nil {
				return err
			}
			for _, d := range []store.Device{
				{Name: "SEP0000000DEAD", Model: "7940", Line: "1009", SecurityProfile: "Edgeway OAuth Phone Profile", AllowMRA: true},
				{Name: "SEP0000000BEEF", Model: "8845", Line: "1010", SecurityProfile: "Non-secure", AllowMRA: true},
			} {
				if err := e.Store.PutDevice(ctx, d); err != nil {
					return err
				}
			}
			return nil
		},
	})
	ctx := context.Background()
	phA, phB := env.Phone(phoneA, true), env.Phone(phoneB, true)
	tokA, err := phA.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := phB.Onboard(ctx, env.Devices[phoneB].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	onPremA := env.Phone(phoneA, false)

	// Forged: the core's kid, someone else's key.
	claims := env.Claims(phoneA, clk.Now())
	rows, _ := env.Store.ListSigningKeys(ctx)
	evil, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ft := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	ft.Header["kid"] = rows[0].KID
	forged, _ := ft.SignedString(evil)
	nt := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	nt.Header["kid"] = rows[0].KID
	none, _ := nt.SignedString(jwt.UnsafeAllowNoneSignatureType)
	wrongAud := env.Claims(phoneA, clk.Now())
	wrongAud.Audience = jwt.ClaimStrings{"urn:someone-else"}
	wa := env.SignWithCoreKey(t, wrongAud)

	for _, ph := range []struct {
		name string
		p    *bench.Phone
	}{{"edge", phA}, {"core-5090", onPremA}} {
		t.Run(ph.name, func(t *testing.T) {
			expectRefusal(t, ph.p, "no token", "", 401, "")
			expectRefusal(t, ph.p, "forged signature", "Bearer "+forged, 401, "invalid_token")
			expectRefusal(t, ph.p, "alg=none", "Bearer "+none, 401, "invalid_token")
			expectRefusal(t, ph.p, "wrong audience", "Bearer "+wa, 401, "invalid_token")
			expectRefusal(t, ph.p, "garbage", "Bearer not.a.jwt", 401, "invalid_token")
			expectRefusal(t, ph.p, "digest (S-16)", `Digest username="1001", realm="edgeway.test", nonce="x", uri="sip:edgeway.test", response="00"`, 403, "")
		})
	}

	// Other device: B's line with A's valid token.
	expectRefusal(t, phB, "other-device token", "Bearer "+tokA.AccessToken, 401, "invalid_token")

	// S-5 / S-15: a valid token for a device that may not use OAuth.
	deadTok := env.SignWithCoreKey(t, env.Claims("SEP0000000DEAD", clk.Now()))
	beefTok := env.SignWithCoreKey(t, env.Claims("SEP0000000BEEF", clk.Now()))
	dead7940 := newPhone(t, env, "SEP0000000DEAD", "1009", true)
	beef := newPhone(t, env, "SEP0000000BEEF", "1010", true)
	expectRefusal(t, dead7940, "model not in S-5", "Bearer "+deadTok, 403, "")
	expectRefusal(t, beef, "profile without OAuth (S-15)", "Bearer "+beefTok, 403, "")

	// Revoked (RFC 7009, R-2).
	revoke(t, env, env.Info.EdgeHTTPS, tokB.AccessToken)
	expectRefusal(t, phB, "revoked access token", "Bearer "+tokB.AccessToken, 401, "invalid_token")

	// Expired: the core's clock moves past the token's life (the edge's
	// does not, so the core is the one that refuses it).
	clk.Advance(2 * time.Hour)
	expectRefusal(t, phA, "expired (edge passes, core refuses)", "Bearer "+tokA.AccessToken, 401, "invalid_token")
	expectRefusal(t, onPremA, "expired on 5090", "Bearer "+tokA.AccessToken, 401, "invalid_token")

	if regs := env.Registrations(t); len(regs) != 0 {
		t.Fatalf("refused REGISTERs created bindings: %+v", regs)
	}

	// RFC 8898: the challenge names where to get a token. Through the edge
	// that is the edge's public endpoint, whether the edge refused the
	// request itself or relayed the core's refusal; on premises, the core's.
	edgeTokenURL := `authz_server="` + env.Info.EdgeHTTPS + `/oauth2/token"`
	coreTokenURL := `authz_server="` + env.Layout.Core.Issuer + `/oauth2/token"`
	for _, tc := range []struct {
		name, auth, want string
		ph               *bench.Phone
	}{
		{"edge, no token", "", edgeTokenURL, phA},
		{"edge relaying the core (expired)", "Bearer " + tokA.AccessToken, edgeTokenURL, phA},
		{"core 5090", "", coreTokenURL, onPremA},
	} {
		res, err := tc.ph.RegisterWith(ctx, tc.auth, 600)
		if err != nil {
			t.Fatal(err)
		}
		if ch := wwwAuth(res); !strings.Contains(ch, tc.want) {
			t.Errorf("%s: challenge %q, want %s", tc.name, ch, tc.want)
		}
	}
}

func newPhone(t *testing.T, env *testenv.Env, device, line string, mra bool) *bench.Phone {
	t.Helper()
	cfg := bench.PhoneConfig{Device: device, Line: line, Domain: "edgeway.test", RootCAs: env.CA, Log: env.Log,
		EdgeHTTPS: env.Info.EdgeHTTPS, EdgeSIP: env.Info.EdgeSIP}
	if !mra {
		cfg.EdgeHTTPS, cfg.EdgeSIP = env.Info.CoreHTTPS, env.Info.CorePhoneOAuth
	}
	p, err := bench.NewPhone(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func revoke(t *testing.T, env *testenv.Env, base, tok string) {
	t.Helper()
	resp, err := env.HTTPClient().PostForm(base+"/oauth2/revoke", url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: HTTP %d", resp.StatusCode)
	}
}
