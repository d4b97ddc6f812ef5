package oauth

// The device authorization grant (RFC 8628), a standard onboarding path
// beside activation codes: the phone asks POST /oauth2/device_authorization
// (through an edge, S-17's rules apply as for an activation code), shows
// the user_code, an administrator approves it for the provisioned device it
// was asked for (admin API, web UI /ui/device), and the phone polls the
// token endpoint with grant_type urn:ietf:params:oauth:grant-type:device_code
// until it gets the same tokens an activation code gives, once. Families it
// starts have origin "device_code", an explicit onboarding: S-9's explicit
// setting admits them.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// DeviceGrantConfig tunes the device grant.
type DeviceGrantConfig struct {
	// TTL is how long a device_code and its user_code live (expires_in;
	// default 600 s).
	TTL time.Duration
	// Interval is the least time between two polls (interval; default
	// 5 s, RFC 8628 §3.2); each slow_down adds 5 s.
	Interval time.Duration
	// VerificationURI is the page where an administrator approves a
	// user_code: the core's admin address + /ui/device.
	VerificationURI string
}

// Device-grant defaults.
const (
	DefaultDeviceCodeTTL  = 10 * time.Minute
	DefaultDevicePoll     = 5 * time.Second
	deviceCodePrefix      = "ewd_"
	userCodeAlphabet      = "BCDFGHJKLMNPQRSTVWXZ" // RFC 8628 §6.1: no vowels, no look-alikes
	userCodeLen           = 8                      // 20^8 ≈ 2^34.6
	maxUserCodeCollisions = 4
)

// DeviceAuthorization is the RFC 8628 §3.2 answer.
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

func (c DeviceGrantConfig) ttl() time.Duration {
	if c.TTL <= 0 {
		return DefaultDeviceCodeTTL
	}
	return c.TTL
}

func (c DeviceGrantConfig) interval() time.Duration {
	if c.Interval <= 0 {
		return DefaultDevicePoll
	}
	return c.Interval
}

// deviceCodes is the store's device-code part; a store without it has no
// device grant.
func (s *Server) deviceCodes() (store.DeviceCodeStore, *OAuthError) {
	dc, ok := s.st.(store.DeviceCodeStore)
	if !ok {
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "this store does not keep device codes")
	}
	return dc, nil
}

// NormalizeUserCode reads a user_code as a person typed it: case, dashes
// and spaces do not matter (RFC 8628 §6.1). It returns "" when what is
// left is not 8 letters of the alphabet.
func NormalizeUserCode(in string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(in) {
		switch {
		case r == '-' || r == ' ':
		case strings.ContainsRune(userCodeAlphabet, r):
			b.WriteRune(r)
		default:
			return ""
		}
	}
	if b.Len() != userCodeLen {
		return ""
	}
	return b.String()
}

// FormatUserCode shows a normalised user_code as XXXX-XXXX.
func FormatUserCode(c string) string {
	if len(c) != userCodeLen {
		return c
	}
	return c[:4] + "-" + c[4:]
}

func newUserCode() (string, error) {
	b := make([]byte, userCodeLen)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(userCodeAlphabet))))
		if err != nil {
			return "", fmt.Errorf("random: %w", err)
		}
		b[i] = userCodeAlphabet[n.Int64()]
	}
	return string(b), nil
}

// HandleDeviceAuthorization is POST /oauth2/device_authorization (RFC 8628
// §3.1): client_id is the device name; through an edge the device must
// allow onboarding via MRA in the service domain the phone names (S-17,
// the activation code's check), and its model and profile must allow
// OAuth (S-5, S-15, S-19).
func (s *Server) HandleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		WriteError(w, e)
		return
	}
	p, perr := s.PeerOf(r)
	if perr != nil {
		WriteError(w, perr)
		return
	}
	res, err := s.deviceAuthorize(r.Context(), p, r.PostForm.Get("client_id"), r.PostForm.Get("scope"), r.PostForm.Get("service_domain"))
	if err != nil {
		var oe *OAuthError
		if !errors.As(err, &oe) {
			s.log.Error("device authorization", "err", err, reqid.Attr, reqid.FromRequest(r))
			oe = &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "internal error; try again", RetryAfter: time.Second}
		} else {
			s.log.Debug("device authorization refused", "device", r.PostForm.Get("client_id"), "mra", p.MRA, "source", p.Source, "error", oe.Code, "why", oe.Description, reqid.Attr, reqid.FromRequest(r))
		}
		WriteError(w, oe)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) deviceAuthorize(ctx context.Context, p Peer, device, scope, domain string) (*DeviceAuthorization, error) {
	if device == "" {
		return nil, oauthErr(400, "invalid_request", "client_id (the device name) is required (RFC 8628 §3.1)")
	}
	dc, oe := s.deviceCodes()
	if oe != nil {
		return nil, oe
	}
	// Unknown devices and S-17 refusals count against the source and the
	// device as wrong activation codes do, so device names cannot be
	// probed faster through this endpoint.
	a, err := s.codes.Attempt(p.Source, device)
	if err != nil {
		if te := Throttled(err); te != nil {
			return nil, te
		}
		return nil, err
	}
	defer a.Abandon()
	dev, err := s.onboardingDevice(ctx, a, p, device, domain,
		oauthErr(400, "invalid_client", "RFC 8628 §3.2: device %s is not provisioned", device))
	if err != nil {
		return nil, err
	}
	a.Succeed()
	b, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	raw := deviceCodePrefix + base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	cfg := s.cfg.DeviceGrant
	c := store.DeviceCode{Hash: hashSecret(raw), Device: dev.Name, Scope: scope, MRA: p.MRA, Edge: p.Edge, Source: p.Source,
		CreatedAt: now, ExpiresAt: now.Add(cfg.ttl()), Interval: cfg.interval(), Status: store.DeviceCodePending}
	for i := 0; ; i++ {
		if c.UserCode, err = newUserCode(); err != nil {
			return nil, err
		}
		err = dc.PutDeviceCode(ctx, c)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) || i == maxUserCodeCollisions {
			return nil, err
		}
	}
	user := FormatUserCode(c.UserCode)
	uri := cfg.VerificationURI
	s.log.Info("device authorization", "device", dev.Name, "user_code", user, "mra", p.MRA, "edge", p.Edge, "source", p.Source, reqid.Attr, reqid.From(ctx))
	return &DeviceAuthorization{DeviceCode: raw, UserCode: user, VerificationURI: uri,
		VerificationURIComplete: uri + "?user_code=" + url.QueryEscape(user),
		ExpiresIn:               int(cfg.ttl() / time.Second), Interval: int((cfg.interval() + time.Second - 1) / time.Second)}, nil
}

// grantDeviceCode is the token endpoint's device_code grant (RFC 8628
// §3.4, §3.5).
func (s *Server) grantDeviceCode(ctx context.Context, p Peer, raw, device string) (*TokenResponse, error) {
	if raw == "" || device == "" {
		return nil, oauthErr(400, "invalid_request", "device_code and client_id are required (RFC 8628 §3.4)")
	}
	dc, oe := s.deviceCodes()
	if oe != nil {
		return nil, oe
	}
	if !strings.HasPrefix(raw, deviceCodePrefix) {
		return nil, oauthErr(400, "invalid_grant", "RFC 8628 §3.5: device_code is not valid")
	}
	var fam *family
	// refusal is an answer decided inside the poll's transaction (which
	// it undoes: the code is not spent).
	var refusal *OAuthError
	c, err := dc.PollDeviceCode(ctx, hashSecret(raw), s.now(), func(c store.DeviceCode) ([]store.RefreshToken, error) {
		if refusal = s.checkDevicePoll(ctx, c, p, device); refusal != nil {
			return nil, refusal
		}
		dev, err := s.st.GetDevice(ctx, c.Device)
		if errors.Is(err, store.ErrNotFound) {
			refusal = oauthErr(400, "invalid_grant", "device %s no longer exists", c.Device)
			return nil, refusal
		} else if err != nil {
			return nil, err
		}
		// The device's settings are read again at redemption: S-17 through
		// the edge (in the domain it was asked for), S-5/S-15/S-19.
		if p.MRA {
			if refusal = s.checkMRADomain(dev, p, dev.MRAServiceDomain); refusal != nil {
				return nil, refusal
			}
		}
		if err := policy.CheckDeviceOAuth(ctx, s.st, dev); err != nil {
			refusal = oauthErr(400, "unauthorized_client", "%v", err)
			return nil, refusal
		}
		// RFC 8705: bound to the certificate of the polling connection,
		// as an activation code's tokens are (bound.go).
		if err := s.checkBindable(ctx, dev, p.Cnf); err != nil {
			if refusal, _ = err.(*OAuthError); refusal != nil {
				return nil, refusal
			}
			return nil, err
		}
		if fam, err = s.newFamily(ctx, dev, "", token.GrantDeviceCode, p.MRA); err != nil {
			return nil, err
		}
		fam.bind(p.Cnf)
		return fam.first, nil
	})
	if refusal != nil {
		return nil, refusal
	}
	if err == nil || errors.Is(err, store.ErrAuthorizationPending) || errors.Is(err, store.ErrSlowDown) || errors.Is(err, store.ErrDenied) {
		// Not the device's code: say nothing about its state.
		if e := s.checkDevicePoll(ctx, c, p, device); e != nil && err != nil {
			return nil, e
		}
	}
	switch {
	case err == nil:
		s.log.Info("device code redeemed", "device", c.Device, "approved_by", c.DecidedBy, "mra", p.MRA, "edge", p.Edge, "source", p.Source, reqid.Attr, reqid.From(ctx))
		return s.answer(fam)
	case errors.Is(err, store.ErrAuthorizationPending):
		return nil, oauthErr(400, "authorization_pending", "RFC 8628 §3.5: the user_code %s has not been approved yet", FormatUserCode(c.UserCode))
	case errors.Is(err, store.ErrSlowDown):
		return nil, oauthErr(400, "slow_down", "RFC 8628 §3.5: polled sooner than the interval; poll every %d s from now", int(c.Interval/time.Second))
	case errors.Is(err, store.ErrDenied):
		return nil, oauthErr(400, "access_denied", "RFC 8628 §3.5: an administrator denied the user_code %s", FormatUserCode(c.UserCode))
	case errors.Is(err, store.ErrExpired):
		return nil, oauthErr(400, "expired_token", "RFC 8628 §3.5: the device_code has expired; start a new device authorization")
	case errors.Is(err, store.ErrAlreadyUsed):
		return nil, oauthErr(400, "invalid_grant", "RFC 8628 §3.5: the device_code has already been redeemed")
	case errors.Is(err, store.ErrNotFound):
		return nil, oauthErr(400, "invalid_grant", "RFC 8628 §3.5: device_code is not valid")
	}
	return nil, err
}

// checkDevicePoll: the code was asked for by this device (client_id, RFC
// 6749 §5.2 invalid_grant), and through an edge iff it is polled through
// one (S-17: an MRA onboarding stays an MRA onboarding).
func (s *Server) checkDevicePoll(_ context.Context, c store.DeviceCode, p Peer, device string) *OAuthError {
	if c.Device != device {
		return oauthErr(400, "invalid_grant", "RFC 6749 §5.2: the device_code was not issued to client_id %s", device)
	}
	if c.MRA != p.MRA {
		return oauthErr(400, "invalid_grant", "S-17: the device_code was asked for %s; poll the same way", map[bool]string{true: "through an edge", false: "on premises"}[c.MRA])
	}
	return nil
}

// DeviceCodeView is a device authorization request as the admin API shows
// it.
type DeviceCodeView struct {
	UserCode   string    `json:"user_code"`
	Device     string    `json:"device"`
	Scope      string    `json:"scope,omitempty"`
	MRA        bool      `json:"mra"`
	Edge       string    `json:"edge,omitempty"`
	Source     string    `json:"source"`
	Status     string    `json:"status"` // pending | approved | denied | expired | redeemed
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	DecidedBy  string    `json:"decided_by,omitempty"`
	DecidedAt  time.Time `json:"decided_at,omitzero"`
	RedeemedAt time.Time `json:"redeemed_at,omitzero"`
}

func deviceCodeView(c store.DeviceCode, now time.Time) DeviceCodeView {
	v := DeviceCodeView{UserCode: FormatUserCode(c.UserCode), Device: c.Device, Scope: c.Scope, MRA: c.MRA, Edge: c.Edge, Source: c.Source,
		Status: c.Status, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, DecidedBy: c.DecidedBy, DecidedAt: c.DecidedAt, RedeemedAt: c.RedeemedAt}
	switch {
	case !c.RedeemedAt.IsZero():
		v.Status = "redeemed"
	case c.Status == store.DeviceCodePending && !now.Before(c.ExpiresAt):
		v.Status = "expired"
	}
	return v
}

// Errors of the device-code administration, for the admin API's status.
var (
	ErrUserCodeUnknown = errors.New("RFC 8628 §6.1: no device authorization request has this user_code")
	ErrUserCodeDecided = errors.New("the user_code has already been decided")
	ErrUserCodeExpired = errors.New("RFC 8628 §3.5: the user_code has expired; the phone must start again")
)

// PendingDeviceCodes lists the requests waiting for an administrator.
func (s *Server) PendingDeviceCodes(ctx context.Context) ([]DeviceCodeView, error) {
	dc, oe := s.deviceCodes()
	if oe != nil {
		return nil, oe
	}
	now := s.now()
	cs, err := dc.PendingDeviceCodes(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceCodeView, 0, len(cs))
	for _, c := range cs {
		out = append(out, deviceCodeView(c, now))
	}
	return out, nil
}

// LookupUserCode finds a request by its user_code for source (the
// administrator's address). A user_code that is malformed or unknown is
// a wrong guess: too many from one source are throttled (RFC 8628 §5.1),
// answered with a *throttle.Error.
func (s *Server) LookupUserCode(ctx context.Context, source, userCode string) (DeviceCodeView, error) {
	c, err := s.userCode(ctx, source, userCode, func(dc store.DeviceCodeStore, code string) (store.DeviceCode, error) {
		return dc.DeviceCodeByUserCode(ctx, code)
	})
	if err != nil {
		return DeviceCodeView{}, err
	}
	return deviceCodeView(c, s.now()), nil
}

// DecideUserCode approves (or denies) the request with this user_code, on
// behalf of the administrator by, calling from source; wrong guesses are
// throttled as for LookupUserCode.
func (s *Server) DecideUserCode(ctx context.Context, source, userCode string, approve bool, by string) (DeviceCodeView, error) {
	now := s.now()
	c, err := s.userCode(ctx, source, userCode, func(dc store.DeviceCodeStore, code string) (store.DeviceCode, error) {
		return dc.DecideDeviceCode(ctx, code, approve, by, now)
	})
	if err != nil {
		return DeviceCodeView{}, err
	}
	s.log.Info("device code decided", "device", c.Device, "user_code", FormatUserCode(c.UserCode), "approved", approve, "by", by, reqid.Attr, reqid.From(ctx))
	return deviceCodeView(c, now), nil
}

func (s *Server) userCode(ctx context.Context, source, userCode string, do func(store.DeviceCodeStore, string) (store.DeviceCode, error)) (store.DeviceCode, error) {
	dc, oe := s.deviceCodes()
	if oe != nil {
		return store.DeviceCode{}, oe
	}
	a, err := s.userCodes.Begin(source, "user_code")
	if err != nil {
		return store.DeviceCode{}, err
	}
	defer a.Abandon()
	code := NormalizeUserCode(userCode)
	if code == "" {
		a.Fail()
		return store.DeviceCode{}, ErrUserCodeUnknown
	}
	c, err := do(dc, code)
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.Fail()
		return store.DeviceCode{}, ErrUserCodeUnknown
	case errors.Is(err, store.ErrConflict):
		a.Succeed()
		return c, fmt.Errorf("%w (%s)", ErrUserCodeDecided, c.Status)
	case errors.Is(err, store.ErrExpired):
		a.Succeed()
		return c, ErrUserCodeExpired
	case err != nil:
		return store.DeviceCode{}, err
	}
	a.Succeed()
	return c, nil
}
