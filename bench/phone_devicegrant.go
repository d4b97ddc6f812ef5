package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/edgeway/edgeway/internal/token"
)

// DeviceAuthorization is the answer of POST /oauth2/device_authorization
// (RFC 8628 §3.2).
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// DeviceAuthorize starts the device grant (RFC 8628 §3.1) through the
// phone's edge: client_id is the device name, and the phone names the
// service domain it found the edge through (S-17), as when it redeems an
// activation code.
func (p *Phone) DeviceAuthorize(ctx context.Context) (DeviceAuthorization, error) {
	_, e := p.edgeIndex()
	form := url.Values{"client_id": {p.cfg.Device}, "service_domain": {p.cfg.Domain}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(e.HTTPS, "/")+"/oauth2/device_authorization", strings.NewReader(form.Encode()))
	if err != nil {
		return DeviceAuthorization{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.http.Do(req)
	if err != nil {
		return DeviceAuthorization{}, fmt.Errorf("device authorization: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return DeviceAuthorization{}, fmt.Errorf("device authorization: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		te := &TokenError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
		if err := json.Unmarshal(body, te); err != nil || te.Code == "" {
			te.Code, te.Description = "http_error", strings.TrimSpace(string(body))
		}
		return DeviceAuthorization{}, te
	}
	var da DeviceAuthorization
	if err := json.Unmarshal(body, &da); err != nil || da.DeviceCode == "" || da.UserCode == "" {
		return DeviceAuthorization{}, fmt.Errorf("device authorization: bad success response: %s", body)
	}
	return da, nil
}

// PollDeviceTokenOnce is one poll of the token endpoint with the device
// code (RFC 8628 §3.4); on success the phone keeps the tokens.
func (p *Phone) PollDeviceTokenOnce(ctx context.Context, deviceCode string) (Tokens, error) {
	return p.tokenRequest(ctx, url.Values{"grant_type": {token.GrantTypeDeviceCode}, "device_code": {deviceCode}, "client_id": {p.cfg.Device}})
}

// PollDeviceToken polls until the user_code is approved (RFC 8628 §3.5):
// it waits the interval before each poll, keeps polling on
// authorization_pending, adds 5 s to the interval on slow_down, and stops
// with the error on anything else (access_denied, expired_token, …).
// wait waits d (nil: a timer; tests advance a test clock instead).
func (p *Phone) PollDeviceToken(ctx context.Context, da DeviceAuthorization, wait func(ctx context.Context, d time.Duration) error) (Tokens, error) {
	if wait == nil {
		wait = sleepCtx
	}
	interval := time.Duration(max(da.Interval, 1)) * time.Second
	for {
		if err := wait(ctx, interval); err != nil {
			return Tokens{}, err
		}
		t, err := p.PollDeviceTokenOnce(ctx, da.DeviceCode)
		var te *TokenError
		switch {
		case err == nil:
			return t, nil
		case !errors.As(err, &te):
			return Tokens{}, err
		case te.Code == "authorization_pending":
		case te.Code == "slow_down":
			interval += 5 * time.Second
		default:
			return Tokens{}, err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
