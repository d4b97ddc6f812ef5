package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/activation"
	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/certbind"
	"github.com/edgeway/edgeway/internal/httpx"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/passwd"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/throttle"
	"github.com/edgeway/edgeway/internal/token"
	"github.com/edgeway/edgeway/internal/traversal"
)

// GrantTypeActivationCode is the grant a phone uses to redeem its
// activation code (S-17).
const GrantTypeActivationCode = token.GrantTypeActivationCode

// ClientAddressHeader is believed only from admitted edges (S-12).
const ClientAddressHeader = traversal.ClientAddressHeader

// refreshPrefix marks Edgeway refresh tokens (and tells them from JWTs in
// RFC 7009 revocation).
const refreshPrefix = "ewr_"

// OAuthError is an RFC 6749 §5.2 error response.
type OAuthError struct {
	Status      int
	Code        string
	Description string
	RetryAfter  time.Duration
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, format string, args ...any) *OAuthError {
	return &OAuthError{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// TokenResponse is the RFC 6749 §5.1 success response.
type TokenResponse struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token,omitempty"`
	RefreshExpiresIn int    `json:"refresh_token_expires_in,omitempty"`
	Device           string `json:"device"`
}

// Peer describes who is calling the HTTPS API.
type Peer struct {
	MRA    bool   // through an admitted edge (S-12)
	Edge   string // the Expressway-C name matched
	Entry  store.ExpresswayEntry
	Source string // the client's IP: the phone's, as the edge reports it, for MRA
	// Cnf is the x5t#S256 of the phone's client certificate as the edge
	// reports it (internal/certbind; RFC 8705 §3.1), "" when the phone
	// presented none or the request did not come through an edge.
	Cnf string
}

// PeerOf tells MRA traffic from on-premises traffic by the connection, never
// by anything the client wrote: a client certificate on the core's HTTPS
// port was admitted in the handshake as an Expressway-C (S-11, S-12), so the
// request came through an edge. If the edge's entry has since been deleted
// the request is refused; it is never treated as on-premises (S-18).
func (s *Server) PeerOf(r *http.Request) (Peer, *OAuthError) {
	p := Peer{}
	p.Source, _, _ = net.SplitHostPort(r.RemoteAddr)
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return p, nil
	}
	p.MRA = true
	entry, name, err := s.edges.Entry(r.Context(), r.TLS.PeerCertificates[0])
	switch {
	case errors.Is(err, admission.ErrEdgeNotConfigured):
		return p, oauthErr(http.StatusForbidden, "unauthorized_client", "S-12: this edge is no longer a configured Expressway-C")
	case err != nil:
		s.log.Error("checking edge certificate", "err", err, reqid.Attr, reqid.FromRequest(r))
		return p, &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again", RetryAfter: time.Second}
	}
	p.Edge, p.Entry = name, entry
	if ip := net.ParseIP(strings.TrimSpace(r.Header.Get(ClientAddressHeader))); ip != nil {
		p.Source = ip.String()
	}
	// Believed only here, from an admitted edge (issue 15, RFC 8705).
	p.Cnf = certbind.FromHTTP(r, true)
	return p, nil
}

// maxOAuthForm bounds the body of /oauth2/token and /oauth2/revoke.
const maxOAuthForm = 8 << 10

// parseForm reads an application/x-www-form-urlencoded POST body of at
// most 8 KiB (RFC 6749 §3.2); a larger one is 413.
func parseForm(w http.ResponseWriter, r *http.Request) *OAuthError {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return oauthErr(http.StatusMethodNotAllowed, "invalid_request", "use POST")
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return oauthErr(http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	if err := httpx.BufferBody(w, r, maxOAuthForm); err != nil {
		if httpx.TooLarge(err) {
			return oauthErr(http.StatusRequestEntityTooLarge, "invalid_request", "the form is larger than %d bytes", maxOAuthForm)
		}
		return oauthErr(http.StatusBadRequest, "invalid_request", "unreadable form: %v", err)
	}
	if err := r.ParseForm(); err != nil {
		return oauthErr(http.StatusBadRequest, "invalid_request", "unreadable form: %v", err)
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return oauthErr(http.StatusBadRequest, "invalid_request", "parameter %q repeated (RFC 6749 §3.2)", k)
		}
	}
	return nil
}

// HandleToken is POST /oauth2/token.
func (s *Server) HandleToken(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		WriteError(w, e)
		return
	}
	p, perr := s.PeerOf(r)
	if perr != nil {
		WriteError(w, perr)
		return
	}
	var (
		res *TokenResponse
		err error
	)
	switch gt := r.PostForm.Get("grant_type"); gt {
	case GrantTypeActivationCode:
		res, err = s.grantActivation(r.Context(), p, r.PostForm.Get("device"), r.PostForm.Get("activation_code"), r.PostForm.Get("service_domain"))
	case "refresh_token":
		res, err = s.grantRefresh(r.Context(), p, r.PostForm.Get("refresh_token"))
	case token.GrantTypeDeviceCode: // RFC 8628 §3.4 (devicegrant.go)
		res, err = s.grantDeviceCode(r.Context(), p, r.PostForm.Get("device_code"), r.PostForm.Get("client_id"))
	case "password":
		res, err = s.grantPassword(r.Context(), p, r.PostForm.Get("username"), r.PostForm.Get("password"), r.PostForm.Get("device"))
	case "":
		err = oauthErr(http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		err = oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type %q is not supported", gt)
	}
	if err != nil {
		var oe *OAuthError
		if errors.As(err, &oe) {
			// Per request: DEBUG, counted in edgeway_core_token_refusals_total.
			s.log.Debug("token refused", "grant", r.PostForm.Get("grant_type"), "mra", p.MRA, "source", p.Source, "error", oe.Code, "why", oe.Description, reqid.Attr, reqid.FromRequest(r))
		} else {
			s.log.Error("token endpoint", "grant", r.PostForm.Get("grant_type"), "err", err, reqid.Attr, reqid.FromRequest(r))
			oe = &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "internal error; try again", RetryAfter: time.Second}
		}
		s.cfg.Metrics.TokenRefused(grantLabel(r.PostForm.Get("grant_type")), oe.Code)
		WriteError(w, oe)
		return
	}
	s.cfg.Metrics.TokenIssued(grantLabel(r.PostForm.Get("grant_type")))
	writeJSON(w, http.StatusOK, res)
}

// grantLabel is the metrics label of a grant_type (bounded: unknown
// grant types are "other").
func grantLabel(gt string) string {
	switch gt {
	case GrantTypeActivationCode:
		return metrics.GrantActivation
	case "refresh_token":
		return metrics.GrantRefresh
	case "password":
		return metrics.GrantPassword
	}
	return metrics.GrantOther
}

func (s *Server) grantActivation(ctx context.Context, p Peer, device, code, domain string) (*TokenResponse, error) {
	if device == "" || code == "" {
		return nil, oauthErr(400, "invalid_request", "device and activation_code are required")
	}
	// Every refusal below counts against the source and the device, so
	// neither codes nor device names can be probed faster than the throttle
	// allows.
	a, err := s.codes.Attempt(p.Source, device)
	if err != nil {
		if te := Throttled(err); te != nil {
			return nil, te
		}
		return nil, err
	}
	defer a.Abandon() // infrastructure errors count nothing
	if _, err := activation.Parse(code); err != nil {
		a.Fail()
		return nil, oauthErr(400, "invalid_grant", "activation code is malformed: 16 digits expected")
	}
	dev, err := s.onboardingDevice(ctx, a, p, device, domain,
		oauthErr(400, "invalid_grant", "activation code is not valid for device %s", device))
	if err != nil {
		return nil, err
	}
	if err := s.checkBindable(ctx, dev, p.Cnf); err != nil { // RFC 8705 (core/oauth/bound.go)
		return nil, err
	}
	// The family's first refresh token is stored in the transaction that
	// spends the code: both or neither.
	fam, err := s.newFamily(ctx, dev, "", token.GrantActivationCode, p.MRA)
	if err != nil {
		return nil, err
	}
	fam.bind(p.Cnf)
	if _, err := s.codes.RedeemAttempt(ctx, a, device, code, fam.first...); err != nil {
		var ge *activation.GuessError
		if errors.As(err, &ge) && ge.Locked {
			// Issue 9: the per-device budget is spent. Anyone who knows the
			// device name can do this on purpose; the administrator
			// re-issues the code.
			s.log.Warn("activation code locked after too many wrong guesses; issue a new one",
				"device", ge.Device, "wrong_guesses", ge.Failures, "window", s.cfg.GuessWindow,
				"mra", p.MRA, "edge", p.Edge, "source", p.Source, reqid.Attr, reqid.From(ctx))
		}
		switch {
		case errors.Is(err, activation.ErrLocked):
			return nil, oauthErr(400, "invalid_grant", "activation code for device %s is locked after too many wrong guesses; an administrator must issue a new one", device)
		case errors.Is(err, activation.ErrUsed):
			return nil, oauthErr(400, "invalid_grant", "activation code has already been used")
		case errors.Is(err, activation.ErrExpired):
			return nil, oauthErr(400, "invalid_grant", "activation code has expired")
		case errors.Is(err, activation.ErrRevoked):
			return nil, oauthErr(400, "invalid_grant", "activation code has been revoked")
		case errors.Is(err, activation.ErrWrongDevice), errors.Is(err, activation.ErrUnknown):
			return nil, oauthErr(400, "invalid_grant", "activation code is not valid for device %s", device)
		case errors.Is(err, activation.ErrMalformed):
			return nil, oauthErr(400, "invalid_grant", "activation code is malformed: 16 digits expected")
		}
		return nil, err
	}
	s.log.Info("activation code redeemed", "device", dev.Name, "mra", p.MRA, "edge", p.Edge, "source", p.Source, reqid.Attr, reqid.From(ctx))
	return s.answer(fam)
}

// checkMRADomain enforces S-17 for activation through an edge: the device
// allows activation via MRA, the phone names the device's Activation Code
// MRA Service Domain, and the edge's Expressway-C entry serves that domain
// (S-12: an Expressway-C in another domain needs the domain added).
// onboardingDevice is the device an onboarding grant (activation code,
// device authorization) asks for, after the checks both make before
// anything is spent: it is provisioned (else notFound), allows activation
// via MRA in the service domain when asked through the edge (S-17), and
// its model and security profile may use OAuth (S-5, S-15, S-19). An
// unknown device and an S-17 refusal count as failed attempts (a).
func (s *Server) onboardingDevice(ctx context.Context, a *throttle.Attempt, p Peer, device, domain string, notFound *OAuthError) (store.Device, error) {
	dev, err := s.st.GetDevice(ctx, device)
	if errors.Is(err, store.ErrNotFound) {
		a.Fail()
		return store.Device{}, notFound
	} else if err != nil {
		return store.Device{}, err
	}
	if p.MRA {
		if err := s.checkMRADomain(dev, p, domain); err != nil {
			a.Fail()
			return store.Device{}, err
		}
	}
	if err := policy.CheckDeviceOAuth(ctx, s.st, dev); err != nil {
		return store.Device{}, oauthErr(400, "unauthorized_client", "%v", err)
	}
	return dev, nil
}

func (s *Server) checkMRADomain(dev store.Device, p Peer, domain string) *OAuthError {
	if !dev.AllowMRA {
		return oauthErr(400, "unauthorized_client", "S-17: device %s does not allow activation code via MRA", dev.Name)
	}
	want := strings.ToLower(strings.TrimSuffix(dev.MRAServiceDomain, "."))
	got := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	if want == "" {
		return nil
	}
	if got != want {
		return oauthErr(400, "unauthorized_client", "S-17: device %s onboards via MRA in service domain %s, not %q", dev.Name, want, got)
	}
	if len(p.Entry.Domains) == 0 {
		return nil // an entry without extra domains serves the cluster's own
	}
	for _, d := range p.Entry.Domains {
		if strings.EqualFold(strings.TrimSuffix(d, "."), want) {
			return nil
		}
	}
	return oauthErr(400, "unauthorized_client", "S-12: Expressway-C %s does not serve domain %s; add the domain to its entry", p.Edge, want)
}

// Throttled is the RFC 6749 §5.2 answer (slow_down, with Retry-After) to a
// throttle refusal, nil for any other error.
func Throttled(err error) *OAuthError {
	var te *throttle.Error
	if errors.As(err, &te) {
		return &OAuthError{Status: http.StatusTooManyRequests, Code: "slow_down",
			Description: te.Error(), RetryAfter: te.RetryAfter}
	}
	return nil
}

// grantPassword serves on-premises soft clients only (S-18).
func (s *Server) grantPassword(ctx context.Context, p Peer, username, password, device string) (*TokenResponse, error) {
	if p.MRA {
		return nil, oauthErr(400, "unauthorized_client", "S-18: username/password login is not allowed over Mobile and Remote Access; onboard with an activation code")
	}
	if username == "" || password == "" {
		return nil, oauthErr(400, "invalid_request", "username and password are required")
	}
	// Wrong passwords count against the source and the username, like wrong
	// activation codes.
	a, err := s.logins.Begin(p.Source, username)
	if err != nil {
		if te := Throttled(err); te != nil {
			return nil, te
		}
		return nil, err
	}
	defer a.Abandon()
	// Each check costs 64 MiB of Argon2id: run at most a few at once and
	// tell the rest to come back, rather than let a burst exhaust memory.
	select {
	case s.passwordSlots <- struct{}{}:
		defer func() { <-s.passwordSlots }()
	default:
		return nil, &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "too many logins in progress; try again", RetryAfter: time.Second}
	}
	u, uerr := s.st.GetUser(ctx, username)
	if uerr != nil && !errors.Is(uerr, store.ErrNotFound) {
		return nil, uerr
	}
	hash := u.PasswordHash
	if hash == "" {
		hash = DummyHash() // same cost whether or not the user exists
	}
	if perr := passwd.Check(hash, password); perr != nil || uerr != nil {
		a.Fail()
		return nil, oauthErr(400, "invalid_grant", "invalid username or password")
	}
	a.Succeed()
	var dev store.Device
	if device != "" {
		if dev, err = s.st.GetDevice(ctx, device); err != nil || dev.Owner != username {
			return nil, oauthErr(400, "invalid_grant", "device %s is not owned by %s", device, username)
		}
	} else {
		all, err := s.st.ListDevices(ctx)
		if err != nil {
			return nil, err
		}
		for _, d := range all {
			if d.Owner == username && policy.SoftClient(d.Model) {
				dev = d
				break
			}
		}
		if dev.Name == "" {
			return nil, oauthErr(400, "invalid_grant", "user %s owns no soft-client device", username)
		}
	}
	if err := policy.CheckDeviceOAuth(ctx, s.st, dev); err != nil {
		return nil, oauthErr(400, "unauthorized_client", "%v", err)
	}
	if !policy.SoftClient(dev.Model) {
		return nil, oauthErr(400, "unauthorized_client", "password login is for Jabber soft clients (TCT, BOT, CSF, TAB); device %s is a %s", dev.Name, dev.Model)
	}
	if err := s.checkBindable(ctx, dev, p.Cnf); err != nil { // RFC 8705 (core/oauth/bound.go)
		return nil, err
	}
	return s.startFamily(ctx, dev, username, token.GrantPassword, false, p.Cnf)
}

// DummyHash is checked against for unknown users, computed on first use.
var DummyHash = sync.OnceValue(func() string {
	h, _ := passwd.Hash("edgeway-dummy-password")
	return h
})

func (s *Server) grantRefresh(ctx context.Context, p Peer, raw string) (*TokenResponse, error) {
	if !strings.HasPrefix(raw, refreshPrefix) {
		return nil, oauthErr(400, "invalid_grant", "refresh token is not valid")
	}
	now := s.now()
	hash := hashSecret(raw)
	grace := s.refreshGrace()
	var res *TokenResponse
	// The successor, and with a grace the response that carries it, are
	// stored in the same transaction as the rotation: if anything fails the
	// old token stays usable and a retry is not a replay.
	old, err := s.st.RotateRefreshToken(ctx, hash, now, func(old store.RefreshToken) (store.RefreshToken, store.Grace, error) {
		dev, err := s.st.GetDevice(ctx, old.Device)
		if err != nil {
			return store.RefreshToken{}, store.Grace{}, err
		}
		// RFC 8705 §3: a bound family refreshes only with its certificate
		// (refused before anything is rotated), and keeps the binding.
		if err := s.checkRefreshBinding(ctx, dev, old, p.Cnf); err != nil {
			return store.RefreshToken{}, store.Grace{}, err
		}
		mra := p.MRA || old.MRA
		next, nextRaw, err := s.newRefresh(old.Family, dev.Name, old.Username, old.Origin, mra, now)
		if err != nil {
			return store.RefreshToken{}, store.Grace{}, err
		}
		next.ExpiresAt = s.successorExpiry(old, now) // R-3 (renewal.go)
		if res, err = s.signAccess(dev, old.Username, token.GrantRefresh, old.Origin, old.Family, mra, now, old.Cnf); err != nil {
			return store.RefreshToken{}, store.Grace{}, err
		}
		res.RefreshToken, res.RefreshExpiresIn = nextRaw, expiresIn(next.ExpiresAt, now)
		if grace <= 0 {
			return next, store.Grace{}, nil
		}
		sealed, err := s.sealResponse(hash, res, now)
		if err != nil {
			return store.RefreshToken{}, store.Grace{}, err
		}
		return next, store.Grace{Until: now.Add(grace), From: graceFrom(p), Sealed: sealed}, nil
	})
	switch {
	case errors.Is(err, store.ErrAlreadyUsed):
		// Issue 9 item 15: a lost response fetched again within the grace.
		again, gerr := s.graceRetry(ctx, p, hash, old.Family, now)
		if gerr == nil {
			return again, nil
		}
		if !errors.Is(gerr, store.ErrAlreadyUsed) && !errors.Is(gerr, store.ErrNotFound) {
			return nil, gerr
		}
		// RFC 9700 §4.14.2: a rotated refresh token came back, so either the
		// client or an attacker holds a stolen copy. Revoke the whole family.
		if rerr := s.st.RevokeFamily(ctx, old.Family, now); rerr != nil {
			return nil, rerr
		}
		if rerr := s.NoteRevoked(ctx, store.ChangeFamily, old.Family); rerr != nil {
			s.log.Error("reading back a family revocation", "err", rerr)
		}
		s.log.Warn("refresh token replayed: family revoked", "family", old.Family, "device", old.Device, "source", p.Source, reqid.Attr, reqid.From(ctx))
		return nil, oauthErr(400, "invalid_grant", "refresh token was already used; every token of this grant is now revoked")
	case errors.Is(err, store.ErrRevoked):
		return nil, oauthErr(400, "invalid_grant", "refresh token has been revoked")
	case errors.Is(err, store.ErrExpired):
		return nil, oauthErr(400, "invalid_grant", "refresh token has expired")
	case errors.Is(err, store.ErrNotFound) && old.Family == "":
		return nil, oauthErr(400, "invalid_grant", "refresh token is not valid")
	case errors.Is(err, store.ErrNotFound):
		return nil, oauthErr(400, "invalid_grant", "device %s no longer exists", old.Device)
	case err != nil:
		return nil, err
	}
	return res, nil
}

// family is a token family about to start: the first refresh token to
// store (none with the refresh login flow off, S-10) and what the answer
// needs once it is stored.
type family struct {
	dev          store.Device
	user, origin string
	id           string
	mra          bool
	now          time.Time
	first        []store.RefreshToken
	raw          string // the first refresh token, for the client
	cnf          string // x5t#S256 the family is bound to (RFC 8705), "" for bearer
}

// newFamily prepares a family for dev; nothing is stored yet.
func (s *Server) newFamily(ctx context.Context, dev store.Device, user, origin string, mra bool) (*family, error) {
	id, err := randomBytes(16)
	if err != nil {
		return nil, err
	}
	withRefresh, err := policy.ParamIs(ctx, s.st, policy.ParamRefreshLoginFlow, "enabled", "disabled")
	if err != nil {
		return nil, err
	}
	f := &family{dev: dev, user: user, origin: origin, id: hex.EncodeToString(id), mra: mra, now: s.now()}
	if withRefresh {
		rt, raw, err := s.newRefresh(f.id, dev.Name, user, origin, mra, f.now)
		if err != nil {
			return nil, err
		}
		f.first, f.raw = []store.RefreshToken{rt}, raw
	}
	return f, nil
}

// answer signs the access token of f, whose first refresh token (if any)
// is stored, and returns both.
func (s *Server) answer(f *family) (*TokenResponse, error) {
	if len(f.first) == 0 {
		// No refresh token, so no family to revoke through (S-10 off).
		return s.signAccess(f.dev, f.user, f.origin, f.origin, "", f.mra, f.now, f.cnf)
	}
	res, err := s.signAccess(f.dev, f.user, f.origin, f.origin, f.id, f.mra, f.now, f.cnf)
	if err != nil {
		return nil, err
	}
	res.RefreshToken, res.RefreshExpiresIn = f.raw, int(s.ttl.Refresh()/time.Second)
	return res, nil
}

// startFamily starts a family for dev (the password grant): stores its
// first refresh token, then answers.
func (s *Server) startFamily(ctx context.Context, dev store.Device, user, origin string, mra bool, cnf string) (*TokenResponse, error) {
	f, err := s.newFamily(ctx, dev, user, origin, mra)
	if err != nil {
		return nil, err
	}
	f.bind(cnf)
	for _, rt := range f.first {
		if err := s.st.PutRefreshToken(ctx, rt); err != nil {
			return nil, err
		}
	}
	return s.answer(f)
}

// newRefresh makes a refresh token of a family: the record to store (only
// its hash) and the plaintext for the client.
func (s *Server) newRefresh(family, device, user, origin string, mra bool, now time.Time) (store.RefreshToken, string, error) {
	b, err := randomBytes(32)
	if err != nil {
		return store.RefreshToken{}, "", err
	}
	raw := refreshPrefix + base64.RawURLEncoding.EncodeToString(b)
	return store.RefreshToken{Hash: hashSecret(raw), Family: family, Device: device, Username: user, Origin: origin, MRA: mra,
		IssuedAt: now, ExpiresAt: now.Add(s.ttl.Refresh())}, raw, nil
}

// signAccess signs an access token for dev.
// cnf, when set, binds it to a client certificate (RFC 8705 §3.1).
func (s *Server) signAccess(dev store.Device, user, grant, origin, family string, mra bool, now time.Time, cnf string) (*TokenResponse, error) {
	jti, err := randomBytes(16)
	if err != nil {
		return nil, err
	}
	c := &token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.cfg.Issuer, Audience: jwt.ClaimStrings{s.cfg.Audience}, Subject: dev.Name,
			ID: hex.EncodeToString(jti), IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl.Access())),
		},
		Grant: grant, Origin: origin, Family: family, MRA: mra, User: user,
		ClientID: dev.Name, // RFC 9068 §2.2: the phone is the client (claims.go)
		Cnf:      token.BoundTo(cnf),
	}
	at, err := s.keys.Sign(c)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int(s.ttl.Access() / time.Second), Device: dev.Name}, nil
}

// hashSecret is how a refresh token or a device code is stored and looked
// up: its SHA-256, never the secret itself.
func hashSecret(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

// HandleRevoke is POST /oauth2/revoke (RFC 7009). It answers 200 whether
// or not the token was known (§2.2).
func (s *Server) HandleRevoke(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		WriteError(w, e)
		return
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		WriteError(w, oauthErr(400, "invalid_request", "token is required"))
		return
	}
	if e := checkTokenTypeHint(r.PostForm.Get("token_type_hint")); e != nil {
		WriteError(w, e)
		return
	}
	if r.Header.Get("Authorization") != "" {
		s.handleAdminRevoke(w, r, raw) // an administrator (adminrevoke.go)
		return
	}
	ctx := r.Context()
	now := s.now()
	unavailable := &OAuthError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again", RetryAfter: time.Second}
	if strings.HasPrefix(raw, refreshPrefix) {
		// Rotating marks it used; revoking the family stops all its tokens.
		t, err := s.st.RotateRefreshToken(ctx, hashSecret(raw), now, nil)
		switch {
		case t.Family != "" && (err == nil || errors.Is(err, store.ErrAlreadyUsed) || errors.Is(err, store.ErrExpired)):
			if err := s.st.RevokeFamily(ctx, t.Family, now); err != nil {
				s.log.Error("revoking refresh family", "err", err)
				WriteError(w, unavailable)
				return
			}
			s.log.Info("refresh family revoked", "family", t.Family, "device", t.Device, reqid.Attr, reqid.From(ctx))
			if err := s.NoteRevoked(ctx, store.ChangeFamily, t.Family); err != nil {
				s.log.Error("reading back a family revocation", "err", err)
			}
		case err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrRevoked):
			// Not an answer about the token: the revocation did not happen.
			s.log.Error("revoking refresh token", "err", err)
			WriteError(w, unavailable)
			return
		}
	} else if c, err := s.keys.Verify(ctx, raw); err == nil {
		if err := s.st.RevokeAccessToken(ctx, c.ID, c.ExpiresAt.Time); err != nil {
			s.log.Error("revoking access token", "err", err)
			WriteError(w, unavailable)
			return
		}
		s.log.Info("access token revoked", "device", c.Subject, "jti", c.ID, reqid.Attr, reqid.From(ctx))
		if err := s.NoteRevoked(ctx, store.ChangeToken, c.ID); err != nil {
			s.log.Error("reading back an access token revocation", "err", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// HandleJWKS is GET /.well-known/jwks.json.
func (s *Server) HandleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_ = json.NewEncoder(w).Encode(s.keys.JWKS())
}
