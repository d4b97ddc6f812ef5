package testenv

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/edgeway/edgeway/core"
)

// HTTPClient trusts the dev CA.
func (e *Env) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.CA, MinVersion: tls.VersionTLS12}}}
}

// Admin calls the core's admin API and returns status and body.
func (e *Env) Admin(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.Info.CoreHTTPS+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.AdminToken)
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
