package activation

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/throttle"
)

// Redemption failures, mapped from the store's sentinels. A failed Redeem
// returns one of these (ErrMalformed wrapped with a reason) or a
// *ThrottledError; any other error is an infrastructure failure.
var (
	ErrMalformed   = errors.New("activation: malformed code")
	ErrUnknown     = errors.New("activation: unknown code")
	ErrWrongDevice = errors.New("activation: code belongs to another device")
	ErrUsed        = errors.New("activation: code already used")
	ErrExpired     = errors.New("activation: code expired")
	ErrRevoked     = errors.New("activation: code revoked")
	// ErrLocked: the device's outstanding code is locked after too many
	// wrong guesses (see DeviceBudget); every code is refused for the
	// device, the right one included, until a new code is issued.
	ErrLocked = errors.New("activation: code locked after too many wrong guesses; an administrator must issue a new one")
)

// GuessError is a wrong guess (ErrUnknown or ErrWrongDevice, which it
// unwraps to) counted against the named device's DeviceBudget: how many
// in the current window, and whether this one locked the device's code.
type GuessError = store.GuessError

// Store is the subset of store.Store the service needs.
type Store interface {
	PutActivationCode(ctx context.Context, c store.ActivationCode) error
	RedeemActivationCode(ctx context.Context, hash []byte, device string, now time.Time, budget store.GuessBudget, first ...store.RefreshToken) (store.ActivationCode, error)
	ListActivationCodes(ctx context.Context, device string) ([]store.ActivationCode, error)
	RevokeActivationCode(ctx context.Context, id string, now time.Time) error
	RevokeDeviceActivationCodes(ctx context.Context, device string, now time.Time) error
	ResetActivationGuesses(ctx context.Context, device string) error
}

var _ Store = (store.Store)(nil)

// DefaultValidity is how long a code stays redeemable unless configured.
const DefaultValidity = 168 * time.Hour

// MinSecretLen is the minimum HMAC key length.
const MinSecretLen = 32

// Config configures a Service; zero fields take the defaults.
type Config struct {
	Validity time.Duration    // default 168h
	Now      func() time.Time // default time.Now
	Throttle ThrottleConfig
	// DeviceBudget bounds wrong guesses per device, across every source
	// and core node (in the store).
	DeviceBudget DeviceBudget
}

// DeviceBudget is the per-device budget of wrong guesses; zero fields take
// the defaults. See the package documentation.
type DeviceBudget struct {
	MaxWrongGuesses int           // wrong guesses per window that lock the device's code; default 10
	Window          time.Duration // fixed window, opened by its first wrong guess; default 1h
}

// Device budget defaults.
const (
	DefaultMaxWrongGuesses = 10
	DefaultGuessWindow     = time.Hour
)

func (b DeviceBudget) withDefaults() (DeviceBudget, error) {
	if b.MaxWrongGuesses < 0 || b.Window < 0 {
		return b, errors.New("activation: negative device budget")
	}
	if b.MaxWrongGuesses == 0 {
		b.MaxWrongGuesses = DefaultMaxWrongGuesses
	}
	if b.Window == 0 {
		b.Window = DefaultGuessWindow
	}
	return b, nil
}

// Service issues, lists, revokes and redeems activation codes.
type Service struct {
	st       Store
	secret   []byte
	validity time.Duration
	now      func() time.Time
	limiter  *throttle.Limiter
	budget   store.GuessBudget
	issueMu  sync.Mutex // serializes Issue, so a device never ends up with two live codes from this process
}

// New returns a Service over st. secret is the HMAC key (at least 32 bytes,
// the same on every core node); it is copied.
func New(st Store, secret []byte, cfg Config) (*Service, error) {
	if st == nil {
		return nil, errors.New("activation: nil store")
	}
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("activation: secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	if cfg.Validity < 0 {
		return nil, errors.New("activation: negative validity")
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	lim, err := newLimiter(cfg.Throttle, cfg.Now)
	if err != nil {
		return nil, err
	}
	budget, err := cfg.DeviceBudget.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Service{
		st:       st,
		secret:   append([]byte(nil), secret...),
		validity: cfg.Validity,
		now:      cfg.Now,
		limiter:  lim,
		budget:   store.GuessBudget{Max: budget.MaxWrongGuesses, Window: budget.Window},
	}, nil
}

// Issued is a newly issued code: the only place its plaintext exists.
type Issued struct {
	Device    string
	Code      Code
	ID        string
	ExpiresAt time.Time
}

// Issue creates a code for device, first revoking the device's older unused
// codes (a locked one included) and forgetting the wrong guesses counted
// against the device. The ID is random and unrelated to the code.
func (s *Service) Issue(ctx context.Context, device string) (Issued, error) {
	if device == "" {
		return Issued{}, errors.New("activation: issue: empty device name")
	}
	s.issueMu.Lock()
	defer s.issueMu.Unlock()
	now := s.now().UTC().Round(0)
	if err := s.st.RevokeDeviceActivationCodes(ctx, device, now); err != nil {
		return Issued{}, fmt.Errorf("activation: issue for %q: %w", device, err)
	}
	// With no outstanding code nothing is counted, so no guess can slip in
	// between the reset and the new code.
	if err := s.st.ResetActivationGuesses(ctx, device); err != nil {
		return Issued{}, fmt.Errorf("activation: issue for %q: %w", device, err)
	}
	s.limiter.ForgetSubject(device) // this node's in-memory device lock goes with the old code
	for range 3 {
		code, err := Generate()
		if err != nil {
			return Issued{}, err
		}
		id, err := newID()
		if err != nil {
			return Issued{}, err
		}
		ac := store.ActivationCode{
			ID:        id,
			Device:    device,
			Hash:      Hash(s.secret, code),
			CreatedAt: now,
			ExpiresAt: now.Add(s.validity),
		}
		err = s.st.PutActivationCode(ctx, ac)
		if errors.Is(err, store.ErrConflict) {
			continue // ID or code collision: astronomically unlikely; draw again
		}
		if err != nil {
			return Issued{}, fmt.Errorf("activation: issue for %q: %w", device, err)
		}
		return Issued{Device: device, Code: code, ID: id, ExpiresAt: ac.ExpiresAt}, nil
	}
	return Issued{}, fmt.Errorf("activation: issue for %q: repeated collisions", device)
}

// IssueBulk issues one code per device. The list is checked first (no empty
// or repeated names); on a later failure the codes issued so far are returned
// with the error.
func (s *Service) IssueBulk(ctx context.Context, devices []string) ([]Issued, error) {
	seen := make(map[string]bool, len(devices))
	for i, d := range devices {
		if d == "" {
			return nil, fmt.Errorf("activation: issue bulk: empty device name at position %d", i+1)
		}
		if seen[d] {
			return nil, fmt.Errorf("activation: issue bulk: device %q listed twice", d)
		}
		seen[d] = true
	}
	out := make([]Issued, 0, len(devices))
	for _, d := range devices {
		is, err := s.Issue(ctx, d)
		if err != nil {
			return out, err
		}
		out = append(out, is)
	}
	return out, nil
}

// WriteCSV writes issued codes as CSV with the header
// device,activation_code,id,expires_at; codes are grouped and expiry is
// RFC 3339 in UTC.
func WriteCSV(w io.Writer, issued []Issued) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"device", "activation_code", "id", "expires_at"}); err != nil {
		return err
	}
	for _, is := range issued {
		if err := cw.Write([]string{is.Device, is.Code.String(), is.ID, is.ExpiresAt.UTC().Format(time.RFC3339)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// List returns the codes of device (of every device when empty), oldest
// first, without their hashes: there is no way back to a plaintext code.
func (s *Service) List(ctx context.Context, device string) ([]store.ActivationCode, error) {
	cs, err := s.st.ListActivationCodes(ctx, device)
	if err != nil {
		return nil, fmt.Errorf("activation: list: %w", err)
	}
	for i := range cs {
		cs[i].Hash = nil
	}
	return cs, nil
}

// Revoke revokes the code with this ID; an unknown ID gives ErrUnknown.
func (s *Service) Revoke(ctx context.Context, id string) error {
	err := s.st.RevokeActivationCode(ctx, id, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknown
	}
	if err != nil {
		return fmt.Errorf("activation: revoke: %w", err)
	}
	return nil
}

// RevokeDevice revokes every unused code of device.
func (s *Service) RevokeDevice(ctx context.Context, device string) error {
	if err := s.st.RevokeDeviceActivationCodes(ctx, device, s.now()); err != nil {
		return fmt.Errorf("activation: revoke codes of %q: %w", device, err)
	}
	return nil
}

// Redeem checks the throttle for source (an IP string) and device, parses
// the code, and redeems it exactly once. It returns the redeemed code's
// record, or ErrMalformed (wrapped), ErrUnknown, ErrWrongDevice (either
// possibly as a *GuessError), ErrLocked, ErrUsed, ErrExpired, ErrRevoked, a
// *ThrottledError, or an infrastructure error.
// It is Attempt followed by RedeemAttempt.
func (s *Service) Redeem(ctx context.Context, source, device, code string) (store.ActivationCode, error) {
	a, err := s.Attempt(source, device)
	if err != nil {
		return store.ActivationCode{}, err
	}
	return s.RedeemAttempt(ctx, a, device, code)
}

// Attempt admits an attempt on device from source with the service's
// limiter (see internal/throttle), or refuses it with a *ThrottledError.
//
// It lets a caller refuse a request before redemption at the cost of a
// failed redemption: end the attempt with Fail (a policy refusal, such as
// S-17 for a device that does not allow activation via MRA, or an unknown
// device) or hand it to RedeemAttempt. Every admitted attempt must be ended;
// `defer a.Abandon()` is a safe guard, since ending twice is a no-op.
func (s *Service) Attempt(source, device string) (*throttle.Attempt, error) {
	return s.limiter.Begin(source, device)
}

// RedeemAttempt parses code and redeems it for device within a, an attempt
// obtained from Attempt for the same device, and ends a itself: Fail on
// ErrMalformed, ErrUnknown, ErrWrongDevice, ErrLocked, ErrUsed, ErrExpired
// or ErrRevoked; Succeed on success; Abandon on an infrastructure error (the
// store, the context). An attempt that has already ended, or that was
// admitted for another device, is refused with an error (and abandoned)
// without touching the store.
//
// The refresh tokens in first are stored with the code's use, in the same
// transaction (see store.SQLite.RedeemActivationCode).
func (s *Service) RedeemAttempt(ctx context.Context, a *throttle.Attempt, device, code string, first ...store.RefreshToken) (store.ActivationCode, error) {
	if a == nil || a.Ended() {
		return store.ActivationCode{}, errors.New("activation: redeem: attempt missing or already ended")
	}
	defer a.Abandon() // ends the attempt on every path, panics included; no-op after Fail/Succeed
	if a.Subject() != device {
		return store.ActivationCode{}, fmt.Errorf("activation: redeem: attempt is for device %q, not %q", a.Subject(), device)
	}
	c, err := Parse(code)
	if err != nil {
		a.Fail()
		return store.ActivationCode{}, err
	}
	ac, err := s.st.RedeemActivationCode(ctx, Hash(s.secret, c), device, s.now(), s.budget, first...)
	if err == nil {
		a.Succeed()
		return ac, nil
	}
	if mapped := mapStoreErr(err); mapped != nil {
		a.Fail()
		var ge *GuessError
		if errors.As(err, &ge) {
			return store.ActivationCode{}, &GuessError{Device: ge.Device, Failures: ge.Failures, Locked: ge.Locked, Err: mapped}
		}
		return store.ActivationCode{}, mapped
	}
	return store.ActivationCode{}, fmt.Errorf("activation: redeem: %w", err) // abandoned: not counted
}

// mapStoreErr maps a store verdict to this package's sentinel, or nil when
// err is not a verdict about the code.
func mapStoreErr(err error) error {
	switch {
	case errors.Is(err, store.ErrLocked):
		return ErrLocked
	case errors.Is(err, store.ErrNotFound):
		return ErrUnknown
	case errors.Is(err, store.ErrWrongDevice):
		return ErrWrongDevice
	case errors.Is(err, store.ErrRevoked):
		return ErrRevoked
	case errors.Is(err, store.ErrAlreadyUsed):
		return ErrUsed
	case errors.Is(err, store.ErrExpired):
		return ErrExpired
	}
	return nil
}

// newID returns a random 128-bit hex ID.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("activation: new id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
