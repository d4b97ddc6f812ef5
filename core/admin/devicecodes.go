package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/internal/throttle"
)

// DeviceCodes is what the device-code handlers ask core/oauth (the device
// grant, RFC 8628): *oauth.Server has it.
type DeviceCodes interface {
	PendingDeviceCodes(ctx context.Context) ([]oauth.DeviceCodeView, error)
	LookupUserCode(ctx context.Context, source, userCode string) (oauth.DeviceCodeView, error)
	DecideUserCode(ctx context.Context, source, userCode string, approve bool, by string) (oauth.DeviceCodeView, error)
}

// deviceCodes is the part of the admin API where an administrator sees the
// pending device authorization requests and approves or denies a
// user_code for the provisioned device it was asked for (RFC 8628 §3.3).
type deviceCodes struct {
	*auditor
	dc DeviceCodes
}

func (a *API) deviceCodeRoutes(api *http.ServeMux) {
	dc, ok := a.auth.(DeviceCodes)
	if !ok {
		return
	}
	d := &deviceCodes{auditor: a.auditor, dc: dc}
	api.HandleFunc("GET /api/v1/device-codes", d.apiList)
	api.HandleFunc("GET /api/v1/device-codes/{user_code}", d.apiGet)
	api.HandleFunc("POST /api/v1/device-codes/{user_code}/approve", d.apiDecide(true))
	api.HandleFunc("POST /api/v1/device-codes/{user_code}/deny", d.apiDecide(false))
}

func (d *deviceCodes) apiList(w http.ResponseWriter, r *http.Request) {
	list, err := d.dc.PendingDeviceCodes(r.Context())
	if err != nil {
		apiError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (d *deviceCodes) apiGet(w http.ResponseWriter, r *http.Request) {
	v, err := d.dc.LookupUserCode(r.Context(), sourceOf(r), r.PathValue("user_code"))
	if err != nil {
		deviceCodeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (d *deviceCodes) apiDecide(approve bool) http.HandlerFunc {
	verb := map[bool]string{true: "approve", false: "deny"}[approve]
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := d.dc.DecideUserCode(r.Context(), sourceOf(r), r.PathValue("user_code"), approve, actorOf(r.Context()))
		if err != nil {
			deviceCodeError(w, err)
			return
		}
		d.audit(r, "device_code."+verb, "%s for device %s (asked from %s%s)", v.UserCode, v.Device, v.Source, map[bool]string{true: " through edge " + v.Edge, false: ""}[v.MRA])
		writeJSON(w, http.StatusOK, v)
	}
}

// deviceCodeError answers a refused look-up or decision: 404 for an
// unknown user_code, 429 once too many wrong ones came from this address
// (RFC 8628 §5.1), 409 when it was decided already, 410 when it expired.
func deviceCodeError(w http.ResponseWriter, err error) {
	var te *throttle.Error
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", fmt.Sprint(int(te.RetryAfter/time.Second)+1))
		apiError(w, http.StatusTooManyRequests, fmt.Errorf("RFC 8628 §5.1: too many wrong user_codes from this address: %w", err))
	case errors.Is(err, oauth.ErrUserCodeUnknown):
		apiError(w, http.StatusNotFound, err)
	case errors.Is(err, oauth.ErrUserCodeDecided):
		apiError(w, http.StatusConflict, err)
	case errors.Is(err, oauth.ErrUserCodeExpired):
		apiError(w, http.StatusGone, err)
	default:
		apiError(w, http.StatusInternalServerError, err)
	}
}

// sourceOf is the address a request came from (what wrong user_codes are
// counted against).
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
