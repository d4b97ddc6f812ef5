// Package store is the core's store of record: devices, lines, users, security
// profiles, enterprise parameters, Expressway-C entries, activation codes
// (hashed), refresh-token families (hashed), revoked access tokens, signing
// keys, secrets and registrations.
//
// Callers depend on the Store interface (or a narrower one they declare); it
// has two implementations: SQLite (Open), embedded, one node, and PostgreSQL
// (OpenPostgres), which the core nodes of a cluster share; OpenURL picks one
// from core.yaml's store value. Nothing here assumes a single
// process: every state change that must happen exactly once is a conditional
// UPDATE whose affected-row count decides the winner, so several core nodes
// sharing one database stay correct.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Implementations wrap them with %w.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: already exists")
	// ErrAlreadyUsed is returned when a one-time item (activation code,
	// refresh token) has already been consumed by an earlier call.
	ErrAlreadyUsed = errors.New("store: already used")
	ErrRevoked     = errors.New("store: revoked")
	ErrExpired     = errors.New("store: expired")
	// ErrWrongDevice is returned when an activation code exists but is bound
	// to another device; the code is left untouched.
	ErrWrongDevice = errors.New("store: bound to another device")
	// ErrLocked is returned for any redemption naming a device whose
	// outstanding code is locked after too many wrong guesses (see
	// GuessBudget); only issuing a new code unlocks the device.
	ErrLocked = errors.New("store: locked after too many wrong guesses")
)

// GuessBudget bounds the wrong guesses a device's outstanding activation
// code can take, across every source, edge and core node sharing the
// store. The zero value counts nothing.
type GuessBudget struct {
	// Max wrong guesses in one Window; the guess that reaches it locks the
	// device's outstanding codes.
	Max int
	// Window is a fixed window opened by the first wrong guess counted in
	// it; a guess after it has closed opens a new one, counting from 1.
	Window time.Duration
}

// GuessError is a wrong guess that RedeemActivationCode counted against the
// device the request named. It wraps ErrNotFound or ErrWrongDevice, so
// errors.Is on those still holds.
type GuessError struct {
	Device   string
	Failures int  // wrong guesses in the current window, this one included
	Locked   bool // this guess reached the budget and locked the device's outstanding codes
	Err      error
}

func (e *GuessError) Error() string {
	if e.Locked {
		return fmt.Sprintf("%v (wrong guess %d on device %s: its code is now locked)", e.Err, e.Failures, e.Device)
	}
	return fmt.Sprintf("%v (wrong guess %d on device %s)", e.Err, e.Failures, e.Device)
}

// Unwrap returns the verdict the guess got.
func (e *GuessError) Unwrap() error { return e.Err }

// Device is a phone or soft client (S-5, S-17, S-19).
type Device struct {
	Name             string // e.g. SEP0011223344AA or CSFJSMITH
	Model            string // e.g. "8845", "CSF", "BOT"; see S-5
	Line             string // directory number, e.g. "1001"
	Owner            string // username, may be empty
	SecurityProfile  string // name of a SecurityProfile
	AllowMRA         bool   // "Allow Activation Code via MRA" (S-17)
	MRAServiceDomain string // "Activation Code MRA Service Domain" (S-17)
	CreatedAt        time.Time
}

// SecurityProfile is a phone security profile (S-15, S-16).
type SecurityProfile struct {
	Name          string
	DeviceType    string // the device type it is for: a model ("8845") or "UDT"; "" = any
	Mode          string // "non-secure" | "authenticated" | "encrypted"
	Transport     string // "TCP" | "UDP" | "TLS" | "TCP+UDP"
	OAuth         bool   // Enable OAuth Authentication
	Digest        bool   // Enable Digest Authentication
	TFTPEncrypted bool   // TFTP Encrypted Config
	// RequireBoundTokens: the profile's devices get only certificate-bound
	// tokens (RFC 8705): a token request without a client certificate is
	// refused, and so is an unbound token at REGISTER (issue 15).
	RequireBoundTokens bool
}

// User is an end user who may log in with a password on premises (never
// over MRA: S-18).
type User struct {
	Username     string
	PasswordHash string // PHC-style string, see internal/passwd
	CreatedAt    time.Time
}

// ExpresswayEntry is a configured Expressway-C (S-12).
type ExpresswayEntry struct {
	ID          int64
	Address     string   // IP, hostname or FQDN
	Description string   // free text
	Names       []string // X.509 subject names / SANs admitted on the MRA port
	Domains     []string // extra domains (S-12: an Expressway-C in another domain)
}

// ReportedName is an X.509 name an edge presented to the core (S-12 "Find").
type ReportedName struct {
	Name      string
	Address   string // remote address the certificate was last seen from
	FirstSeen time.Time
	LastSeen  time.Time
}

// ActivationCode is a one-time onboarding code bound to one device. Only a
// keyed hash of the code is ever stored.
type ActivationCode struct {
	ID        string // opaque, safe to show and to revoke by
	Device    string
	Hash      []byte // HMAC-SHA256(secret, normalized code)
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero when unused
	RevokedAt time.Time // zero when not revoked
	LockedAt  time.Time // zero unless locked after too many wrong guesses (GuessBudget)
}

// RefreshToken is one member of a refresh-token family. Only its hash is
// stored. A family is started by one grant (activation code or password) and
// each refresh rotates to a new member.
type RefreshToken struct {
	Hash      []byte // SHA-256 of the opaque token
	Family    string
	Device    string
	Username  string // set for password-grant families
	Origin    string // grant that started the family: "activation_code" | "password"
	MRA       bool   // family started through the edge
	IssuedAt  time.Time
	ExpiresAt time.Time
	RotatedAt time.Time // zero while current
	// Cnf is the x5t#S256 thumbprint (RFC 8705 §3.1) of the client
	// certificate the family is bound to, "" for a bearer family. It is
	// the family's (the first token stored sets it), read back on every
	// token of the family.
	Cnf string
}

// Grace is what a rotation records on the old token for a retry whose
// response was lost: until when, from whom (the caller's notion of the same
// device), and the response, sealed by the caller (the store never sees the
// plaintext successor). The zero Grace records nothing.
type Grace struct {
	Until  time.Time
	From   string
	Sealed []byte
}

// SigningKey is a token-signing key shared by every core node.
type SigningKey struct {
	KID        string
	Alg        string // "ES256"
	PrivatePEM []byte // PKCS#8
	CreatedAt  time.Time
	RetiredAt  time.Time // zero while it is the active key; verification-only after
}

// Registration is one SIP binding (RFC 3261 §10, Path per RFC 3327).
type Registration struct {
	AOR       string // sip:1001@example.com (no params)
	Contact   string // full Contact URI
	Device    string
	Path      []string // Path header values, top first
	CallID    string
	CSeq      uint32
	ExpiresAt time.Time
	MRA       bool   // arrived over the MRA port
	Edge      string // admitted Expressway-C name when MRA
	Node      string // core node that accepted it
	Source    string // transport source address
	UpdatedAt time.Time
}

// RegistrationKey names one binding (every binding of the AOR when Contact
// is empty).
type RegistrationKey struct {
	AOR, Contact string
}

// Admin is an administrator account of the admin API.
type Admin struct {
	Username     string
	PasswordHash string // PHC-style string, see internal/passwd
	CreatedAt    time.Time
}

// APIToken is a revocable bearer token for the admin API. Only its hash is
// stored.
type APIToken struct {
	ID    string // opaque, safe to show and to revoke by
	Hash  []byte // SHA-256 of the token
	Name  string // what it is for, e.g. "provisioning script"
	Owner string // admin username it acts as
	// Parent is the token that created this one through the API ("" for a
	// password login or the bootstrap file): a token is valid only while
	// every token up its chain is.
	Parent string
	// Login marks a token issued by a password login of Owner.
	Login     bool
	CreatedAt time.Time
	RevokedAt time.Time // zero while valid
	LastUsed  time.Time
	// ExpiresAt is when the token stops working (zero: never).
	ExpiresAt time.Time
}

// Node is one core node of the cluster (S-11, S-13, S-14).
type Node struct {
	Name           string
	Role           string // "publisher" | "subscriber"
	PhoneOAuthPort int    // SIP Phone OAuth port, 1024-49151
	MRAPort        int    // SIP MRA port, 1024-49151
	// ListeningPhoneOAuthPort and ListeningMRAPort are the ports the node's
	// listeners were bound to at its last start (0 before it); the
	// configured ones take effect at the next start.
	ListeningPhoneOAuthPort int
	ListeningMRAPort        int
	// RunningMode is the SIP OAuth mode the node's SIP service applied at
	// its last (re)start: "enabled" | "disabled" (S-14).
	RunningMode string
	RestartedAt time.Time // last CallManager service (re)start
	LastSeen    time.Time
}

// TrustCert is a certificate uploaded to a trust store (S-8, S-11).
type TrustCert struct {
	Store       string // "tomcat-trust" | "phone-edge-trust"
	Fingerprint string // lower-case hex SHA-256 of the DER
	PEM         []byte
	Subject     string
	Issuer      string
	NotAfter    time.Time
	AddedAt     time.Time
}

// AuditEntry records one administrative change.
type AuditEntry struct {
	ID     int64
	At     time.Time
	Actor  string
	Action string
	Detail string
}

// Store is everything the core keeps. Implementations must be safe for
// concurrent use by many goroutines and by several processes sharing the
// same database.
type Store interface {
	Close() error

	// Enterprise parameters and other settings, keyed by name.
	GetParam(ctx context.Context, name string) (value string, ok bool, err error)
	SetParam(ctx context.Context, name, value string) error
	ListParams(ctx context.Context) (map[string]string, error)

	// Secrets are random byte strings created once and shared by all nodes
	// (the activation-code HMAC key, for example). gen is called only when
	// no secret of that name exists yet; concurrent callers see one value.
	Secret(ctx context.Context, name string, gen func() ([]byte, error)) ([]byte, error)

	PutSecurityProfile(ctx context.Context, p SecurityProfile) error
	GetSecurityProfile(ctx context.Context, name string) (SecurityProfile, error)
	ListSecurityProfiles(ctx context.Context) ([]SecurityProfile, error)
	// DeleteSecurityProfile fails with ErrConflict while a device uses it.
	DeleteSecurityProfile(ctx context.Context, name string) error

	PutDevice(ctx context.Context, d Device) error
	GetDevice(ctx context.Context, name string) (Device, error)
	DeviceByLine(ctx context.Context, line string) (Device, error)
	ListDevices(ctx context.Context) ([]Device, error)
	DeleteDevice(ctx context.Context, name string) error

	PutUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, username string) (User, error)

	// Expressway-C entries (S-12).
	AddExpressway(ctx context.Context, e ExpresswayEntry) (int64, error)
	UpdateExpressway(ctx context.Context, e ExpresswayEntry) error
	DeleteExpressway(ctx context.Context, id int64) error
	ListExpressways(ctx context.Context) ([]ExpresswayEntry, error)
	ReportName(ctx context.Context, name, address string, at time.Time) error
	ListReportedNames(ctx context.Context) ([]ReportedName, error)

	// Activation codes.
	PutActivationCode(ctx context.Context, c ActivationCode) error
	// RedeemActivationCode marks the code with this hash used, exactly once
	// across all callers and processes, and returns it. It fails with
	// ErrLocked (the device's outstanding code is locked: the hash is not
	// even looked up), ErrNotFound, ErrWrongDevice (the code is bound to
	// another device), ErrRevoked, ErrAlreadyUsed or ErrExpired (checked in
	// that order). ErrNotFound and ErrWrongDevice are wrong guesses: while
	// device has an outstanding code (unused, unrevoked, unexpired) each
	// is counted against budget in the same transaction and comes back as
	// a *GuessError; the guess that reaches budget.Max locks the device's
	// outstanding codes. Nothing else changes on failure. The refresh
	// tokens in first are stored in the same transaction as the code's
	// use: both or neither.
	RedeemActivationCode(ctx context.Context, hash []byte, device string, now time.Time, budget GuessBudget, first ...RefreshToken) (ActivationCode, error)
	ListActivationCodes(ctx context.Context, device string) ([]ActivationCode, error)
	RevokeActivationCode(ctx context.Context, id string, now time.Time) error
	// RevokeDeviceActivationCodes revokes every unused code of a device, so
	// issuing a new code invalidates older ones.
	RevokeDeviceActivationCodes(ctx context.Context, device string, now time.Time) error
	// ResetActivationGuesses forgets the wrong guesses counted against a
	// device (a new code was issued).
	ResetActivationGuesses(ctx context.Context, device string) error

	// Refresh tokens and families.
	PutRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken marks the token with this hash rotated, exactly once,
	// and returns it. When it was already rotated it returns the token and
	// ErrAlreadyUsed (a replay: the caller revokes the family). A token of a
	// revoked family gives ErrRevoked; an expired one ErrExpired; unknown
	// ErrNotFound. When next is not nil, the successor it returns is stored
	// in the same transaction as the rotation: a failure leaves the old
	// token unrotated, so a retry is not mistaken for a replay.
	// next may also return a Grace: recorded on the old token's row, it lets
	// RedeemGrace hand the successor's response back once.
	RotateRefreshToken(ctx context.Context, hash []byte, now time.Time, next func(old RefreshToken) (RefreshToken, Grace, error)) (RefreshToken, error)
	// RedeemGrace is the retry of a rotated refresh token whose response was
	// lost (issue 9 item 15, RFC 9700 §4.14.2): it returns, exactly once,
	// the sealed response recorded by the rotation, when the retry comes
	// from the same Grace.From before Grace.Until, the family is not
	// revoked and the successor has not been used. Anything else is
	// ErrAlreadyUsed: a replay. The claim is a conditional UPDATE, so of
	// two simultaneous retries only one wins.
	RedeemGrace(ctx context.Context, hash []byte, from string, now time.Time) ([]byte, error)
	RevokeFamily(ctx context.Context, family string, now time.Time) error
	// RevokeDeviceFamilies revokes every family of a device.
	RevokeDeviceFamilies(ctx context.Context, device string, now time.Time) error
	// UserFamilies lists the refresh-token families of a user:
	// those whose tokens carry username (password grants) and those of a
	// device the user owns (devices.owner), revoked ones included, oldest
	// first. An empty username is an error.
	UserFamilies(ctx context.Context, username string) ([]FamilyInfo, error)
	// Family returns one family as UserFamilies shows it; an unknown id
	// gives ErrNotFound.
	Family(ctx context.Context, id string) (FamilyInfo, error)
	// RevokeUserFamilies revokes, in one transaction, every family of a
	// user that UserFamilies lists and is not revoked yet, and
	// returns the ids it revoked. Like RevokeFamily it reaches the change
	// feed, so every node refuses the families' tokens.
	RevokeUserFamilies(ctx context.Context, username string, now time.Time) ([]string, error)
	// RevokedFamilies lists at most limit families revoked after after, in
	// the order they were revoked (for edges, whose TURN credentials die
	// with their family).
	RevokedFamilies(ctx context.Context, after time.Time, limit int) ([]RevokedFamily, error)

	// Revoked access tokens, kept until they would have expired anyway.
	RevokeAccessToken(ctx context.Context, jti string, expiresAt time.Time) error
	// RefreshTokenByHash reads a refresh token, changing nothing (RFC 7662
	// introspection; refresh_lookup.go).
	RefreshTokenByHash(ctx context.Context, hash []byte) (RefreshToken, error)
	// TokenRevocation answers both questions a presented access token
	// raises in one round trip: is it revoked, and is its grant family
	// (when family is not "") revoked or gone.
	TokenRevocation(ctx context.Context, jti, family string) (Revocation, error)

	// Signing keys.
	PutSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKey sets when a key stopped signing; a retirement can
	// only move earlier (regenerating a compromised key, R-1).
	RetireSigningKey(ctx context.Context, kid string, at time.Time) error

	// Registrations. PutRegistration replaces the binding with the same
	// (AOR, Contact).
	PutRegistration(ctx context.Context, r Registration) error
	DeleteRegistration(ctx context.Context, aor, contact string) error
	DeleteRegistrations(ctx context.Context, aor string) error
	// ApplyRegistrations writes deletes then puts in one transaction: all
	// of them are durable when it returns nil, none otherwise. A key with
	// an empty Contact removes every binding of its AOR.
	ApplyRegistrations(ctx context.Context, puts []Registration, deletes []RegistrationKey) error
	// Registrations lists live bindings of one AOR (all AORs when aor is
	// empty), dropping expired ones as of now.
	Registrations(ctx context.Context, aor string, now time.Time) ([]Registration, error)

	// Administrators and their API tokens.
	PutAdmin(ctx context.Context, a Admin) error
	GetAdmin(ctx context.Context, username string) (Admin, error)
	CountAdmins(ctx context.Context) (int, error)
	PutAPIToken(ctx context.Context, t APIToken) error
	// APITokenByHash returns a token that is neither revoked nor expired,
	// nor has a revoked or expired token up its chain, and records its use
	// at now. An expired token gives ErrExpired, anything else ErrNotFound.
	APITokenByHash(ctx context.Context, hash []byte, now time.Time) (APIToken, error)
	ListAPITokens(ctx context.Context) ([]APIToken, error)
	// RevokeAPIToken revokes a token and every token created from it.
	RevokeAPIToken(ctx context.Context, id string, now time.Time) error
	// RevokeAPITokensOf revokes every token of owner but keep (and the
	// tokens created from them): after a password change.
	RevokeAPITokensOf(ctx context.Context, owner, keep string, now time.Time) error

	// Core nodes. PutNode is an upsert by name.
	PutNode(ctx context.Context, n Node) error
	GetNode(ctx context.Context, name string) (Node, error)
	ListNodes(ctx context.Context) ([]Node, error)

	// Uploaded trust-store certificates. PutTrustCert of a fingerprint that
	// is already in that store gives ErrConflict.
	PutTrustCert(ctx context.Context, c TrustCert) error
	ListTrustCerts(ctx context.Context, store string) ([]TrustCert, error)
	DeleteTrustCert(ctx context.Context, store, fingerprint string) error

	Audit(ctx context.Context, e AuditEntry) error
	ListAudit(ctx context.Context, limit int) ([]AuditEntry, error)

	// The change feed (migration 8). Changes lists at most limit changes
	// with an id above after, oldest first; ChangeCursor is the id of the
	// newest change (0 when there is none).
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	ChangeCursor(ctx context.Context) (int64, error)
	// RevokedAccessTokens lists the ids of revoked access tokens that
	// have not expired at now.
	RevokedAccessTokens(ctx context.Context, now time.Time) ([]string, error)

	// Purge removes expired codes, tokens, revocations and bindings.
	Purge(ctx context.Context, now time.Time) error
}

// Change kinds of the change feed.
const (
	ChangeToken  = "token"  // Key: an access token id that was revoked
	ChangeFamily = "family" // Key: a grant family revoked or deleted
	ChangeConfig = "config" // Key: the table; what a REGISTER reads changed
)

// Change is one entry of the change feed.
type Change struct {
	ID   int64
	Kind string
	Key  string
}

// FamilyInfo is a refresh-token family as an administrator sees it
// where it came from and its current (newest) token.
type FamilyInfo struct {
	ID        string
	Device    string // the device its tokens were issued to
	Username  string // the user of a password grant ("" for an activation code)
	Origin    string // the grant that started it: "activation_code" | "password"
	MRA       bool   // started through the edge
	StartedAt time.Time
	ExpiresAt time.Time // the current token's expiry (zero: no token left)
	RevokedAt time.Time // zero while not revoked
}

// RevokedFamily is a revoked refresh-token family.
type RevokedFamily struct {
	ID        string
	RevokedAt time.Time
}

// Revocation is what TokenRevocation found.
type Revocation struct {
	Revoked       bool // the access token itself (RFC 7009)
	FamilyRevoked bool // its grant family (R-2, refresh-token replay)
	FamilyMissing bool // its grant family is not in the store
}
