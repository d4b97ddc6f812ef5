package webui_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
)

// RFC 8628 through the page: the phone's verification_uri_complete opens
// /ui/device with its user_code prefilled, showing the request (device,
// edge); Approve (POST + CSRF) approves it through the API, audited as
// the administrator, and the phone's next poll gets its tokens and
// registers. Deny from the pending list gives access_denied; a form
// without the CSRF token changes nothing; an unknown user_code shows the
// API's 404.
func TestDeviceCodesPageApproves(t *testing.T) {
	clk := testenv.NewClock(time.Now())
	u := startUI(t, testenv.Options{CoreOptions: []core.Option{core.WithClock(clk.Now)}})
	ctx := context.Background()
	ph := u.env.Phone(phoneJS, true)
	da, err := ph.DeviceAuthorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vu, err := url.Parse(da.VerificationURIComplete)
	if err != nil || vu.Path != "/ui/device" || vu.Query().Get("user_code") != da.UserCode {
		t.Fatalf("verification_uri_complete %q: want /ui/device?user_code=%s", da.VerificationURIComplete, da.UserCode)
	}
	home := u.login(account, password)
	p := u.get(vu.RequestURI())
	if p.status != 200 || !strings.Contains(p.body, `<dd id="request-device">`+phoneJS+`</dd>`) || !strings.Contains(p.body, "through edge ") ||
		!strings.Contains(p.body, `id="approve"`) || !strings.Contains(p.body, `value="`+da.UserCode+`"`) ||
		!strings.Contains(p.body, `href="/ui/device" aria-current="page">Device codes</a>`) {
		t.Fatalf("the verification page does not show the request with Approve:\n%s", p.body)
	}
	if q := u.post("/ui/device/approve", url.Values{"user_code": {da.UserCode}}); q.status != http.StatusForbidden {
		t.Fatalf("approve without CSRF: HTTP %d, want 403", q.status)
	}
	clk.Advance(5 * time.Second)
	if _, err := ph.PollDeviceTokenOnce(ctx, da.DeviceCode); !isTokenErr(err, "authorization_pending") {
		t.Fatalf("poll after a form without CSRF: %v, want authorization_pending", err)
	}
	tok := csrf(t, home)
	p = u.post("/ui/device/approve", url.Values{"csrf": {tok}, "user_code": {da.UserCode}})
	if p.status != 200 || p.url.Path != "/ui/device" || !strings.Contains(p.body, "Approved:") || !strings.Contains(p.body, `<dd id="request-state">approved by `+account) {
		t.Fatalf("approve: HTTP %d at %s:\n%s", p.status, p.url, p.body)
	}
	if !auditHas(t, u.env, "device_code.approve", account+" (token", phoneJS) {
		t.Error("the approval is not audited by the administrator")
	}
	clk.Advance(5 * time.Second)
	if _, err := ph.PollDeviceTokenOnce(ctx, da.DeviceCode); err != nil {
		t.Fatalf("poll after approval through the page: %v", err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}

	// Deny from the pending list.
	ph2 := u.env.Phone(phoneMJ, true)
	da2, err := ph2.DeviceAuthorize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p = u.get("/ui/device")
	if !strings.Contains(p.body, `id="deny-`+da2.UserCode+`"`) || strings.Contains(p.body, `id="deny-`+da.UserCode+`"`) {
		t.Fatalf("the pending list does not list exactly the waiting code:\n%s", p.body)
	}
	if p = u.post("/ui/device/deny", url.Values{"csrf": {tok}, "user_code": {da2.UserCode}}); !strings.Contains(p.body, "Denied:") {
		t.Fatalf("deny: HTTP %d:\n%s", p.status, p.body)
	}
	clk.Advance(5 * time.Second)
	if _, err := ph2.PollDeviceTokenOnce(ctx, da2.DeviceCode); !isTokenErr(err, "access_denied") {
		t.Fatalf("poll after a denial through the page: %v, want access_denied", err)
	}
	// A user_code nobody asked for: the API's 404, shown.
	if p = u.post("/ui/device/approve", url.Values{"csrf": {tok}, "user_code": {"BBBB-BBBB"}}); p.status != http.StatusNotFound ||
		!strings.Contains(p.body, `id="device-error"`) || !strings.Contains(p.body, "RFC 8628") {
		t.Fatalf("approve an unknown user_code: HTTP %d:\n%s", p.status, p.body)
	}
}

func isTokenErr(err error, code string) bool {
	var te *bench.TokenError
	return errors.As(err, &te) && te.Code == code
}
