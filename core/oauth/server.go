package oauth

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/edgeway/edgeway/activation"
	"github.com/edgeway/edgeway/internal/metrics"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/throttle"
)

// Config is what the authorization server needs of the core's
// configuration (core.Config fills it).
type Config struct {
	// Issuer and Audience are the "iss" and "aud" of access tokens.
	Issuer, Audience string
	// AccessTokenTTL and RefreshTokenTTL are the configured lifetimes; the
	// enterprise parameters override them (Lifetimes).
	AccessTokenTTL, RefreshTokenTTL time.Duration
	// RefreshGrace is the refresh grace (grace.go); nil means
	// DefaultRefreshGrace, 0 disables it.
	RefreshGrace *time.Duration
	// ActivationCodeTTL is how long an activation code is valid.
	ActivationCodeTTL time.Duration
	// MaxWrongGuesses wrong activation-code guesses naming a device within
	// GuessWindow lock its code (issue 9).
	MaxWrongGuesses int
	GuessWindow     time.Duration
	// DeviceGrant tunes the device authorization grant (RFC 8628,
	// devicegrant.go); zero fields take the defaults.
	DeviceGrant DeviceGrantConfig
	// Metrics counts tokens issued and refused (nil: nothing counted).
	Metrics *metrics.Core
	// Admins lets administrators revoke any token on /oauth2/revoke
	// (adminrevoke.go) and introspect tokens (RFC 7662, introspect.go);
	// nil: clients revoke their own tokens only and only edges introspect.
	Admins *AdminAuth
}

// DefaultRefreshGrace and MaxRefreshGrace bound Config.RefreshGrace.
const (
	DefaultRefreshGrace = 30 * time.Second
	MaxRefreshGrace     = 5 * time.Minute
)

// Store is what the authorization server reads and writes: devices and
// users for the grants, refresh-token families, revocations, signing keys,
// the activation codes (activation.Store), its secrets and the change feed.
type Store interface {
	activation.Store
	KeyStore
	feedStore
	GetDevice(ctx context.Context, name string) (store.Device, error)
	ListDevices(ctx context.Context) ([]store.Device, error)
	GetUser(ctx context.Context, username string) (store.User, error)
	GetSecurityProfile(ctx context.Context, name string) (store.SecurityProfile, error)
	GetParam(ctx context.Context, name string) (string, bool, error)
	PutRefreshToken(ctx context.Context, t store.RefreshToken) error
	RotateRefreshToken(ctx context.Context, hash []byte, now time.Time, next func(old store.RefreshToken) (store.RefreshToken, store.Grace, error)) (store.RefreshToken, error)
	RedeemGrace(ctx context.Context, hash []byte, from string, now time.Time) ([]byte, error)
	RevokeFamily(ctx context.Context, family string, now time.Time) error
	RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error
	RefreshTokenByHash(ctx context.Context, hash []byte) (store.RefreshToken, error)
	Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)
}

// Edges tells which Expressway-C entry an edge's certificate matches
// (core/admission.Gate, S-12).
type Edges interface {
	Entry(ctx context.Context, leaf *x509.Certificate) (store.ExpresswayEntry, string, error)
}

// Server is the core's OAuth authorization server: the token endpoint's
// grants (activation code S-17, refresh S-10 with rotation and its grace,
// password S-18), RFC 7009 revocation, the JWKS (R-1 through Keys), the
// access-token check the registrar and the config server run (S-2, R-2),
// and the revoked-families feed for edges.
type Server struct {
	cfg   Config
	st    Store
	edges Edges
	log   *slog.Logger
	now   func() time.Time

	keys  *Keys
	ttl   *Lifetimes
	codes *activation.Service

	// graceAEAD seals the response a refresh returned, kept in the store
	// for the refresh grace (grace.go); the key is a store secret, so
	// every node sharing the store can open it.
	graceAEAD cipher.AEAD

	// passwordSlots bounds concurrent password checks (64 MiB each).
	passwordSlots chan struct{}
	// logins throttles failed password logins per source and username.
	logins *throttle.Limiter

	// userCodes throttles wrong user_code look-ups (devicegrant.go).
	userCodes *throttle.Limiter

	// feed is this node's revocation state (feed.go), set by StartFeed.
	feed *feed
}

// New builds the authorization server on an open store: it loads or
// creates the signing key, the activation-code secret and the refresh
// grace key.
func New(ctx context.Context, cfg Config, st Store, edges Edges, log *slog.Logger, now func() time.Time) (*Server, error) {
	s := &Server{cfg: cfg, st: st, edges: edges, log: log, now: now,
		passwordSlots: make(chan struct{}, max(2, runtime.NumCPU()))}
	s.ttl = &Lifetimes{st: st, cfgAccess: cfg.AccessTokenTTL, cfgRefresh: cfg.RefreshTokenTTL, log: log}
	var err error
	if s.keys, err = LoadKeys(ctx, st, cfg.Issuer, cfg.Audience, s.ttl, log, now); err != nil {
		return nil, err
	}
	secret, err := st.Secret(ctx, "activation-hmac", func() ([]byte, error) { return randomBytes(32) })
	if err != nil {
		return nil, fmt.Errorf("core: activation secret: %w", err)
	}
	graceKey, err := st.Secret(ctx, "refresh-grace-aes", func() ([]byte, error) { return randomBytes(32) })
	if err != nil {
		return nil, fmt.Errorf("core: refresh grace key: %w", err)
	}
	if s.graceAEAD, err = newGraceAEAD(graceKey); err != nil {
		return nil, fmt.Errorf("core: refresh grace key: %w", err)
	}
	if s.codes, err = activation.New(st, secret, activation.Config{Validity: cfg.ActivationCodeTTL, Now: now,
		DeviceBudget: activation.DeviceBudget{MaxWrongGuesses: cfg.MaxWrongGuesses, Window: cfg.GuessWindow}}); err != nil {
		return nil, err
	}
	if s.logins, err = throttle.New(throttle.Config{Now: now}); err != nil {
		return nil, err
	}
	if s.userCodes, err = throttle.New(throttle.Config{Now: now}); err != nil {
		return nil, err
	}
	return s, nil
}

// Keys is the signing key ring.
func (s *Server) Keys() *Keys { return s.keys }

// Lifetimes are the token lifetimes in force.
func (s *Server) Lifetimes() *Lifetimes { return s.ttl }

// Activation is the activation-code service (admin API, quickstart).
func (s *Server) Activation() *activation.Service { return s.codes }

// StartFeed starts following the store's change feed (feed.go): from now
// on revocations are answered from memory; onConfig runs on every config
// change in the feed. The returned stop ends it.
func (s *Server) StartFeed(ctx context.Context, onConfig func()) (stop func(), err error) {
	if s.feed, err = newFeed(ctx, s.st, s.now, s.revokedFamiliesKeep, onConfig, s.log.With("svc", "feed")); err != nil {
		return nil, err
	}
	return s.feed.Close, nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return b, nil
}
