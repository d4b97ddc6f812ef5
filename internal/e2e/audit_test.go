package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/mtls"
)

// Acceptance 4 of the administration issue: every change made through the
// admin API appears in the audit log with who made it; a request without
// a valid API token changes nothing and gets 401.
func TestEveryAdminChangeIsAudited(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ca, err := mtls.NewCA("Audit Test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var issued core.IssuedCode
	var token core.APITokenView
	var uploaded []core.TrustCertView
	changes := []struct {
		method, path string
		body         any
		raw          []byte
		action       string
		into         any
	}{
		{"PUT", "/api/v1/params/" + core.ParamRefreshLoginFlow, map[string]string{"value": "enabled"}, nil, "params.set", nil},
		{"PUT", "/api/v1/nodes/core-1", map[string]int{"phone_oauth_port": 15090}, nil, "node.set", nil},
		{"POST", "/api/v1/service/restart", map[string]string{"service": "callmanager"}, nil, "service.restart", nil},
		{"POST", "/api/v1/utils/sipoauth-mode", map[string]string{"action": "enable"}, nil, "utils.sipoauth-mode", nil},
		{"PUT", "/api/v1/profiles/Audit", core.ProfileView{Mode: "encrypted", Transport: "TLS", OAuth: true}, nil, "profile.set", nil},
		{"PUT", "/api/v1/devices/SEP0000AUDIT1", core.DeviceView{Model: "8841", Line: "7001", SecurityProfile: "Audit"}, nil, "device.set", nil},
		{"POST", "/api/v1/devices/SEP0000AUDIT1/apply-config", nil, nil, "device.apply-config", nil},
		{"POST", "/api/v1/devices/SEP0000AUDIT1/reset", nil, nil, "device.reset", nil},
		{"POST", "/api/v1/activation", map[string]string{"device": "SEP0000AUDIT1"}, nil, "activation.issue", &issued},
		{"POST", "/api/v1/activation/bulk", map[string][]string{"devices": {"SEP0000AUDIT1"}}, nil, "activation.issue-bulk", nil},
		{"POST", "/api/v1/expressway", core.ExpresswayEntryView{Address: "192.0.2.7", Names: []string{"expc2.example"}}, nil, "expressway.add", nil},
		{"PUT", "/api/v1/expressway/2", core.ExpresswayEntryView{Address: "192.0.2.8", Names: []string{"expc2.example"}}, nil, "expressway.edit", nil},
		{"DELETE", "/api/v1/expressway/2", nil, nil, "expressway.delete", nil},
		{"POST", "/api/v1/trust/tomcat-trust", nil, ca.CertPEM, "trust.upload", &uploaded},
		{"POST", "/api/v1/keys/rotate", nil, nil, "keys.rotate", nil},
		{"POST", "/api/v1/auth/tokens/new", map[string]string{"name": "audit test"}, nil, "auth.token-create", &token},
		{"PUT", "/api/v1/accounts/auditor", map[string]string{"password": "correct horse battery"}, nil, "account.set", nil},
	}
	client := env.HTTPClient()
	do := func(method, path string, body any, raw []byte, tok string) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if raw != nil {
			rd = bytes.NewReader(raw)
		} else if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, env.Info.CoreHTTPS+path, rd)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, c := range changes {
		// Without a token: refused, nothing audited.
		before, _ := env.Store.ListAudit(context.Background(), 0)
		if code, _ := do(c.method, c.path, c.body, c.raw, ""); code != http.StatusUnauthorized {
			t.Fatalf("%s %s without a token: HTTP %d, want 401", c.method, c.path, code)
		}
		if code, _ := do(c.method, c.path, c.body, c.raw, "ewa_not-a-token"); code != http.StatusUnauthorized {
			t.Fatalf("%s %s with a wrong token: HTTP %d, want 401", c.method, c.path, code)
		}
		if after, _ := env.Store.ListAudit(context.Background(), 0); len(after) != len(before) {
			t.Fatalf("%s %s: a refused request was audited", c.method, c.path)
		}
		code, body := do(c.method, c.path, c.body, c.raw, env.AdminToken)
		if code < 200 || code > 299 {
			t.Fatalf("%s %s: HTTP %d %s", c.method, c.path, code, body)
		}
		if c.into != nil {
			_ = json.Unmarshal(body, c.into)
		}
		entries, err := env.Store.ListAudit(context.Background(), 1)
		if err != nil || len(entries) == 0 || entries[0].Action != c.action || !strings.HasPrefix(entries[0].Actor, "admin (token ") {
			t.Fatalf("%s %s: newest audit entry %+v (%v), want %s by the admin token", c.method, c.path, entries, err, c.action)
		}
	}
	// The last few need ids from earlier answers.
	for _, c := range []struct{ method, path, action string }{
		{"DELETE", "/api/v1/activation/" + issued.ID, "activation.revoke"},
		{"DELETE", "/api/v1/trust/tomcat-trust/" + uploaded[0].Fingerprint, "trust.delete"},
		{"DELETE", "/api/v1/auth/tokens/" + token.ID, "auth.token-revoke"},
		{"DELETE", "/api/v1/devices/SEP0000AUDIT1", "device.delete"},
		{"DELETE", "/api/v1/profiles/Audit", "profile.delete"},
	} {
		if code, body := do(c.method, c.path, nil, nil, env.AdminToken); code != http.StatusNoContent {
			t.Fatalf("%s %s: HTTP %d %s", c.method, c.path, code, body)
		}
		entries, _ := env.Store.ListAudit(context.Background(), 1)
		if len(entries) == 0 || entries[0].Action != c.action {
			t.Fatalf("%s %s: newest audit entry %+v, want %s", c.method, c.path, entries, c.action)
		}
	}
	// A revoked token no longer works.
	if code, _ := do("GET", "/api/v1/registrations", nil, nil, token.Token); code != http.StatusUnauthorized {
		t.Fatalf("revoked API token: HTTP %d, want 401", code)
	}
}
