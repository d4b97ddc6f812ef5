package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/token"
)

// HTTPClient trusts the dev CA.
// Its idle connections are closed when the test ends, before the tiers
// stop, so their graceful shutdown has nothing to wait for.
func (e *Env) HTTPClient() *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CA, MinVersion: tls.VersionTLS12}}
	e.T.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Admin calls the core's admin API with the bootstrap token and returns
// status and body.
func (e *Env) Admin(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	return e.AdminAs(t, e.AdminToken, method, path, body)
}

// AdminAs calls the core's admin API with token. A []byte body is sent as
// it is (a PEM upload); anything else as JSON.
func (e *Env) AdminAs(t testing.TB, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.Info.CoreHTTPS+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// Registrations lists bindings through the admin API.
func (e *Env) Registrations(t testing.TB) []core.RegistrationView {
	t.Helper()
	code, b := e.Admin(t, http.MethodGet, "/api/v1/registrations", nil)
	if code != 200 {
		t.Fatalf("registrations: HTTP %d %s", code, b)
	}
	var regs []core.RegistrationView
	if err := json.Unmarshal(b, &regs); err != nil {
		t.Fatal(err)
	}
	return regs
}

// SignWithCoreKey signs claims with the core's active signing key, read
// from the store — for tests that need tokens the core would never issue
// (wrong audience, a device that may not use OAuth).
func (e *Env) SignWithCoreKey(t testing.TB, c *token.Claims) string {
	t.Helper()
	return e.SignTypedWithCoreKey(t, token.TypeAccess, c)
}

// SignTypedWithCoreKey is SignWithCoreKey under the JOSE typ given ("" =
// none): the format of earlier releases, or a JWT of another type that
// only the core's key could have made (RFC 8725 §3.11 tests).
func (e *Env) SignTypedWithCoreKey(t testing.TB, typ string, c *token.Claims) string {
	t.Helper()
	rows, err := e.Store.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var keys []token.Key
	for _, r := range rows {
		pk, err := token.ParsePrivate(r.PrivatePEM)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, token.Key{KID: r.KID, Private: pk, Created: r.CreatedAt, Retired: r.RetiredAt})
	}
	ks, err := token.NewKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ks.SignTyped(typ, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Claims returns claims the core would issue for device now.
func (e *Env) Claims(device string, now time.Time) *token.Claims {
	return &token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: e.Layout.Core.Issuer, Audience: jwt.ClaimStrings{"urn:edgeway:sip"}, Subject: device, ID: "test-" + device,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Grant: token.GrantActivationCode, Origin: token.GrantActivationCode,
	}
}
