package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/internal/token"
	"github.com/edgeway/edgeway/mtls"
)

// Certificate-bound tokens (RFC 8705; issue 15), through a real edge and
// core: the phone's device certificate (a Cisco phone's MIC or LSC; here
// from a test CA) on the token request binds the access token to it
// (cnf.x5t#S256), and only a TLS connection presenting that certificate
// may use it.

// phoneCA issues the phones' device certificates (the manufacturer's CA).
func phoneCA(t *testing.T) *mtls.CA {
	t.Helper()
	ca, err := mtls.NewCA("Test Phone Manufacturing CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// deviceCert issues a client certificate for a phone.
func deviceCert(t *testing.T, ca *mtls.CA, device string) *tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(mtls.CertRequest{CommonName: device, Client: true, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// x5tS256 is the RFC 8705 §3.1 thumbprint of c, computed here from the
// certificate's DER, independently of the code under test.
func x5tS256(c *tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// certPhone is env.Phone(device, true) holding cert (nil: none) on its
// HTTPS and SIP/TLS connections.
func certPhone(t *testing.T, env *testenv.Env, device string, cert *tls.Certificate) *bench.Phone {
	t.Helper()
	d := env.Devices[device]
	p, err := bench.NewPhone(bench.PhoneConfig{Device: d.Name, Line: d.Line, Domain: d.Domain, RootCAs: env.CA, Log: env.Log,
		EdgeHTTPS: env.Info.EdgeHTTPS, EdgeSIP: env.Info.EdgeSIP, ClientCert: cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// cnfOf is the cnf.x5t#S256 of an access token ("" when it has none),
// read from the JWT's payload as JSON.
func cnfOf(t *testing.T, access string) string {
	t.Helper()
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWS: %q", access)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Cnf *struct {
			X5tS256 string `json:"x5t#S256"`
		} `json:"cnf"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Cnf == nil {
		return ""
	}
	return c.Cnf.X5tS256
}

// wantTokenError checks err is the token endpoint's code whose
// description names every one of names.
func wantTokenError(t *testing.T, what string, err error, code string, names ...string) {
	t.Helper()
	var te *bench.TokenError
	if !errors.As(err, &te) {
		t.Fatalf("%s: %v, want the token endpoint's %s", what, err, code)
	}
	if te.Code != code {
		t.Fatalf("%s: %s (%s), want %s", what, te.Code, te.Description, code)
	}
	for _, n := range names {
		if !strings.Contains(te.Description, n) {
			t.Fatalf("%s: %q does not name %q", what, te.Description, n)
		}
	}
}

// wantBindingRefusal checks a REGISTER answer refuses a token for its
// certificate binding, naming RFC 8705 §3.
func wantBindingRefusal(t *testing.T, what string, res *sip.Response, err error, status int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if res.StatusCode != status {
		t.Fatalf("%s: %d %s, want %d (RFC 8705 §3)", what, res.StatusCode, res.Reason, status)
	}
	w := res.GetHeader("Warning")
	if w == nil || !strings.Contains(w.Value(), "RFC 8705") {
		t.Fatalf("%s: Warning %v, want one naming RFC 8705 (WWW-Authenticate %q)", what, w, wwwAuth(res))
	}
	if status == 401 && !strings.Contains(wwwAuth(res), `error="invalid_token"`) {
		t.Fatalf("%s: challenge %q, want invalid_token (RFC 8705 §3, RFC 6750 §3.1)", what, wwwAuth(res))
	}
}

// A phone with a certificate gets a token bound to it and registers; the
// same token on a connection with another certificate, or none, is
// refused at the edge, and on the core's Phone OAuth port (where the core
// sees no phone certificate); a refresh with another certificate, or
// none, is refused (invalid_grant) without spending the refresh token,
// and a refresh with the phone's own keeps the binding. A phone without a
// certificate still gets a bearer token and registers.
func TestBoundTokenThroughEdge(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ca := phoneCA(t)
	certA, certOther := deviceCert(t, ca, phoneA), deviceCert(t, ca, phoneA)

	ph := certPhone(t, env, phoneA, certA)
	tok, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cnfOf(t, tok.AccessToken), x5tS256(certA); got != want {
		t.Fatalf("access token cnf.x5t#S256 = %q, want the phone certificate's %q (RFC 8705 §3.1)", got, want)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("bound token on its certificate's connection: %v %v", res, err)
	}
	// Introspection says what it is bound to (RFC 8705 §3.2, RFC 7662).
	if code, _, m := introspect(t, env.HTTPClient(), env.Info.CoreHTTPS, "Bearer "+env.AdminToken, url.Values{"token": {tok.AccessToken}}); code != 200 ||
		m["active"] != true || fmt.Sprint(m["cnf"]) != fmt.Sprint(map[string]any{"x5t#S256": x5tS256(certA)}) {
		t.Errorf("introspecting the bound token: HTTP %d %v, want active with cnf.x5t#S256 %s", code, m, x5tS256(certA))
	}
	// Its new calls pass the edge and the core's re-check: the core answers
	// for the line (404: no such line), not for the token.
	var re *bench.RefusedError
	if _, err := ph.Dial(ctx, "9999", testSDP); !errors.As(err, &re) || re.Status != 404 {
		t.Fatalf("INVITE with the bound token on its certificate's connection: %v, want 404 for the unknown line", err)
	}
	if _, status, err := ph.FetchConfig(ctx); err != nil || status != http.StatusOK {
		t.Fatalf("config download with the bound token on its certificate's connection: %d %v", status, err)
	}

	// The token stolen: on another certificate's connection, on none.
	for what, cert := range map[string]*tls.Certificate{"another certificate": certOther, "no certificate": nil} {
		thief := certPhone(t, env, phoneA, cert)
		thief.SetTokens(tok)
		res, err := thief.Register(ctx, 600)
		wantBindingRefusal(t, "bound token on a connection with "+what, res, err, 401)
		// A new call carries the token too (RFC 8898).
		var re *bench.RefusedError
		if _, err := thief.Dial(ctx, env.Devices[phoneB].Line, testSDP); !errors.As(err, &re) || re.Status != 401 {
			t.Fatalf("INVITE with the bound token on a connection with %s: %v, want 401 (RFC 8705 §3)", what, err)
		}
		// S-16: the config download authenticates with the token too.
		if _, status, err := thief.FetchConfig(ctx); err != nil || status != http.StatusUnauthorized {
			t.Fatalf("config download with the bound token on a connection with %s: %d %v, want 401 (RFC 8705 §3)", what, status, err)
		}
		if _, err := thief.Refresh(ctx); err == nil {
			t.Fatalf("refresh with %s: accepted", what)
		} else {
			wantTokenError(t, "refresh with "+what, err, "invalid_grant", "RFC 8705 §3")
		}
	}
	// On premises, straight to the core: it sees no phone certificate there.
	onPrem := env.Phone(phoneA, false)
	onPrem.SetTokens(tok)
	res, err := onPrem.Register(ctx, 600)
	wantBindingRefusal(t, "bound token on the core's Phone OAuth port", res, err, 403)

	// The refused refreshes spent nothing: the phone refreshes with its own
	// certificate, and the binding is kept.
	tok2, err := ph.Refresh(ctx)
	if err != nil {
		t.Fatalf("refresh with the phone's certificate: %v", err)
	}
	if got := cnfOf(t, tok2.AccessToken); got != x5tS256(certA) {
		t.Fatalf("refreshed token cnf.x5t#S256 = %q, want %q: a refresh keeps the binding", got, x5tS256(certA))
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("refreshed bound token: %v %v", res, err)
	}

	// Without a certificate: a bearer token, as before.
	bearer := certPhone(t, env, phoneB, nil)
	btok, err := bearer.Onboard(ctx, env.Devices[phoneB].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	if got := cnfOf(t, btok.AccessToken); got != "" {
		t.Fatalf("a phone without a certificate got a bound token (cnf %q)", got)
	}
	if res, err := bearer.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("bearer token: %v %v", res, err)
	}
	if _, err := bearer.Refresh(ctx); err != nil {
		t.Fatalf("bearer refresh: %v", err)
	}
}

// A security profile with "Require certificate-bound tokens": a token
// request without a certificate is refused (invalid_request naming RFC
// 8705 and the profile), a bearer token of its device no longer registers
// nor refreshes, and a phone with its certificate onboards and registers.
func TestBoundTokensRequiredByProfile(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ca := phoneCA(t)

	// Before: phone B onboards without a certificate (a bearer family).
	phB := certPhone(t, env, phoneB, nil)
	if _, err := phB.Onboard(ctx, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatal(err)
	}
	if res, err := phB.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("bearer register before the profile requires binding: %v %v", res, err)
	}

	profile := core.ProfileView{Mode: "encrypted", Transport: "TLS", OAuth: true, RequireBoundTokens: true}
	if code, body := env.Admin(t, http.MethodPut, "/api/v1/profiles/"+url.PathEscape(quickstart.ProfileName), profile); code != 200 {
		t.Fatalf("profile set: %d %s", code, body)
	}
	var got []core.ProfileView
	code, body := env.Admin(t, http.MethodGet, "/api/v1/profiles", nil)
	if code != 200 || json.Unmarshal(body, &got) != nil {
		t.Fatalf("profiles: %d %s", code, body)
	}
	found := false
	for _, p := range got {
		found = found || p.Name == quickstart.ProfileName && p.RequireBoundTokens
	}
	if !found || !strings.Contains(string(body), `"require_certificate_bound_tokens":true`) {
		t.Fatalf("the API does not show the profile requiring bound tokens: %s", body)
	}

	res, err := phB.Register(ctx, 600)
	wantBindingRefusal(t, "bearer token of a device whose profile requires binding", res, err, 403)
	_, err = phB.Refresh(ctx)
	wantTokenError(t, "bearer family's refresh", err, "invalid_grant", "RFC 8705", quickstart.ProfileName)

	noCert := certPhone(t, env, phoneA, nil)
	_, err = noCert.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	wantTokenError(t, "token request without a certificate", err, "invalid_request", "RFC 8705", quickstart.ProfileName)

	// The refusal spent nothing: with its certificate the phone onboards
	// with the same code.
	cert := deviceCert(t, ca, phoneA)
	phA := certPhone(t, env, phoneA, cert)
	tok, err := phA.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatalf("token request with a certificate: %v", err)
	}
	if cnfOf(t, tok.AccessToken) != x5tS256(cert) {
		t.Fatalf("token not bound to the phone's certificate")
	}
	if res, err := phA.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("bound token, profile requiring binding: %v %v", res, err)
	}
}

// The thumbprint header is the edge's alone: one a phone writes on its
// token request is removed, so a phone without a certificate gets a
// bearer token and a phone with one gets a token bound to its own, never
// to the thumbprint it wrote.
func TestBoundTokenHeaderForgedByPhone(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ca := phoneCA(t)
	certA, forgedCert := deviceCert(t, ca, phoneA), deviceCert(t, ca, phoneB)
	forged := x5tS256(forgedCert)
	// post sends form to base's token endpoint with the forged header,
	// over a connection presenting cert (nil: none), and returns the
	// access token's binding.
	post := func(base string, form url.Values, cert *tls.Certificate) string {
		t.Helper()
		conf := &tls.Config{RootCAs: env.CA, MinVersion: tls.VersionTLS12}
		if cert != nil {
			conf.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: conf}
		defer tr.CloseIdleConnections()
		req, err := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Edgeway-Client-Cert-S256", forged)
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&out) != nil {
			t.Fatalf("token request %s to %s: HTTP %d", form.Get("grant_type"), base, res.StatusCode)
		}
		return cnfOf(t, out.AccessToken)
	}
	onboard := func(device string, cert *tls.Certificate) string {
		t.Helper()
		d := env.Devices[device]
		return post(env.Info.EdgeHTTPS, url.Values{"grant_type": {token.GrantTypeActivationCode}, "device": {d.Name},
			"activation_code": {d.ActivationCode}, "service_domain": {d.Domain}}, cert)
	}
	if got := onboard(phoneB, nil); got != "" {
		t.Fatalf("no certificate, forged header: token bound to %q, want a bearer token", got)
	}
	if got := onboard(phoneA, certA); got != x5tS256(certA) {
		t.Fatalf("certificate A, forged header: token bound to %q, want A's %q (forged %q)", got, x5tS256(certA), forged)
	}
	// On premises, straight to the core (the password grant, S-18): no
	// edge, so the header is nobody's and is not believed.
	if got := post(env.Info.CoreHTTPS, url.Values{"grant_type": {"password"}, "username": {env.Users[0].Username},
		"password": {env.Users[0].Password}}, nil); got != "" {
		t.Fatalf("on premises, forged header: token bound to %q, want a bearer token", got)
	}
}

// tls.phone_client_ca: a certificate the bundle does not verify fails the
// phone's handshake with the edge (refused, not ignored: edge/bound.go),
// on HTTPS and SIP/TLS alike; one it verifies binds the tokens; a phone
// without a certificate is still served.
func TestPhoneClientCA(t *testing.T) {
	ca, rogue := phoneCA(t), phoneCA(t)
	caFile := filepath.Join(t.TempDir(), "phone-ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) { l.Edge.TLS.PhoneClientCA = caFile }})
	ctx := context.Background()

	bad := certPhone(t, env, phoneA, deviceCert(t, rogue, phoneA))
	if _, err := bad.Onboard(ctx, env.Devices[phoneA].ActivationCode); err == nil {
		t.Fatal("a certificate outside tls.phone_client_ca: token request served, want the handshake refused")
	}
	good := certPhone(t, env, phoneA, deviceCert(t, ca, phoneA))
	tok, err := good.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatalf("a certificate from tls.phone_client_ca: %v", err)
	}
	if cnfOf(t, tok.AccessToken) == "" {
		t.Fatal("a certificate from tls.phone_client_ca: token not bound")
	}
	if res, err := good.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register with a certificate from tls.phone_client_ca: %v %v", res, err)
	}
	// The SIP/TLS listener refuses the rogue certificate too, even with a
	// token in hand.
	bad.SetTokens(tok)
	if res, err := bad.Register(ctx, 600); err == nil {
		t.Fatalf("a certificate outside tls.phone_client_ca on SIP/TLS: %d, want the handshake refused", res.StatusCode)
	}
	none := certPhone(t, env, phoneB, nil)
	if _, err := none.Onboard(ctx, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatalf("no certificate, tls.phone_client_ca set: %v", err)
	}
	if res, err := none.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("no certificate, tls.phone_client_ca set: register %v %v", res, err)
	}
}
