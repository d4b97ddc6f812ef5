package admin

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/edgeway/edgeway/activation"
	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/internal/httpx"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/throttle"
	"github.com/edgeway/edgeway/mtls"
)

// Config is what the admin API needs of the core's configuration.
type Config struct {
	// Node and Role are this node's name and role (S-13).
	Node, Role string
	// PhoneOAuthPort and MRAPort are recorded for a node the store does
	// not know yet (S-11).
	PhoneOAuthPort, MRAPort int
	// HTTPSAddr and ConfigAddr are this node's other ports, which its SIP
	// ports may not take (S-11).
	HTTPSAddr, ConfigAddr string
	// AccessTokenTTL and RefreshTokenTTL are the configured lifetimes, the
	// parameters' defaults.
	AccessTokenTTL, RefreshTokenTTL time.Duration
	// AdminTokenFile holds the bootstrap API token.
	AdminTokenFile string
	// Trust are the configured trust-store files (S-8, S-11).
	Trust TrustFiles
}

// TrustFiles are the configured bundles of the trust stores.
type TrustFiles struct {
	TomcatTrust    string // S-11: verifies an edge's client certificate
	PhoneEdgeTrust string // S-8: what phones trust the edge and core by
}

// Auth is what the admin API asks core/oauth.
type Auth interface {
	// Activation is the activation-code service (S-17).
	Activation() *activation.Service
	// PeerOf tells an admitted edge from on-premises traffic (S-12).
	PeerOf(r *http.Request) (oauth.Peer, *oauth.OAuthError)
	// Logins and PasswordSlot bound password checks (admin logins count
	// like the password grant's).
	Logins() *throttle.Limiter
	PasswordSlot() (release func(), ok bool)
	// NoteRevoked makes a revocation hold on this node at once.
	NoteRevoked(ctx context.Context, kind, key string) error
}

// Keys rotates the signing key.
type Keys interface {
	Rotate(ctx context.Context, regen bool) (string, error)
}

// Lifetimes reloads the token lifetimes after a parameter changed.
type Lifetimes interface {
	Reload(ctx context.Context)
}

// Edges sweeps admitted MRA connections after an Expressway-C entry or
// tomcat-trust changed (core/admission, S-11, S-12).
type Edges interface {
	Sweep(ctx context.Context)
}

// Deps are the admin API's collaborators.
type Deps struct {
	Auth      Auth
	Keys      Keys
	Lifetimes Lifetimes
	Edges     Edges
	// TLSTrust is tomcat-trust as the TLS listeners use it; uploaded
	// certificates are added to it (S-11).
	TLSTrust *mtls.TrustStore
	// DropBindings removes every binding of a device from this node's
	// location service, durably.
	DropBindings func(ctx context.Context, device string) ([]store.Registration, error)
	// SetMode sets the SIP OAuth mode this node's SIP service runs
	// (`service restart callmanager`, S-14); Ports are the SIP ports it
	// listens on (0 before it serves).
	SetMode func(on bool)
	Ports   func() (phone, mra int)
	// Purge forgets the per-REGISTER cache (core/lookups) after a write.
	Purge func()
	Now   func() time.Time
	Log   *slog.Logger
}

// Store is everything the admin API reads and writes: the union of what
// each of its parts declares.
type Store interface {
	apiStore
	inventoryStore
	clusterStore
	trustStore
	familyStore
}

// auditor records administrative changes; every part of the API embeds it.
type auditor struct {
	records interface {
		Audit(ctx context.Context, e store.AuditEntry) error
	}
	now func() time.Time
	log *slog.Logger
}

// apiStore is what the API's own handlers use: API tokens, admin
// accounts, the audit log and the registrations list.
type apiStore interface {
	APITokenByHash(ctx context.Context, hash []byte, now time.Time) (store.APIToken, error)
	PutAPIToken(ctx context.Context, t store.APIToken) error
	ListAPITokens(ctx context.Context) ([]store.APIToken, error)
	RevokeAPIToken(ctx context.Context, id string, now time.Time) error
	RevokeAPITokensOf(ctx context.Context, owner, except string, now time.Time) error
	GetAdmin(ctx context.Context, username string) (store.Admin, error)
	PutAdmin(ctx context.Context, a store.Admin) error
	Audit(ctx context.Context, e store.AuditEntry) error
	ListAudit(ctx context.Context, limit int) ([]store.AuditEntry, error)
	Registrations(ctx context.Context, aor string, now time.Time) ([]store.Registration, error)
}

// API is the admin API the `edgeway admin` CLI speaks, on the core's
// HTTPS port: authentication (API tokens, admin accounts, the audit log),
// and its parts: devices, profiles, Expressway-C entries and activation
// codes (inventory), enterprise parameters, nodes and the SIP OAuth mode
// (cluster), and the trust stores (Trust).
type API struct {
	*auditor
	cfg   Config
	st    apiStore
	auth  Auth
	keys  Keys
	purge func()
	fam   familyStore

	inv     *inventory
	cluster *cluster
	trust   *Trust
}

// New builds the admin API.
func New(cfg Config, st Store, d Deps) *API {
	au := &auditor{records: st, now: d.Now, log: d.Log}
	return &API{auditor: au, cfg: cfg, st: st, auth: d.Auth, keys: d.Keys, purge: d.Purge, fam: st,
		inv:     &inventory{auditor: au, st: st, auth: d.Auth, gate: d.Edges, bindings: d.DropBindings},
		cluster: &cluster{auditor: au, cfg: cfg, st: st, ttl: d.Lifetimes, setMode: d.SetMode, ports: d.Ports},
		trust:   &Trust{auditor: au, files: cfg.Trust, st: st, trust: d.TLSTrust, gate: d.Edges},
	}
}

// Trust is the trust stores (S-8, S-11).
func (a *API) Trust() *Trust { return a.trust }

// RegisterNode records this node in the cluster's store when its SIP
// service starts: its role, its ports, the mode it now runs (S-13, S-14).
func (a *API) RegisterNode(ctx context.Context, mode bool, phonePort, mraPort int) error {
	return a.cluster.RegisterNode(ctx, mode, phonePort, mraPort)
}

// inventoryStore is what the provisioning handlers use: devices, security
// profiles, Expressway-C entries and the bindings of a deleted device.
type inventoryStore interface {
	GetDevice(ctx context.Context, name string) (store.Device, error)
	ListDevices(ctx context.Context) ([]store.Device, error)
	PutDevice(ctx context.Context, d store.Device) error
	DeleteDevice(ctx context.Context, name string) error
	DeviceByLine(ctx context.Context, line string) (store.Device, error)
	RevokeDeviceFamilies(ctx context.Context, device string, now time.Time) error
	GetSecurityProfile(ctx context.Context, name string) (store.SecurityProfile, error)
	ListSecurityProfiles(ctx context.Context) ([]store.SecurityProfile, error)
	PutSecurityProfile(ctx context.Context, p store.SecurityProfile) error
	DeleteSecurityProfile(ctx context.Context, name string) error
	ListExpressways(ctx context.Context) ([]store.ExpresswayEntry, error)
	AddExpressway(ctx context.Context, e store.ExpresswayEntry) (int64, error)
	UpdateExpressway(ctx context.Context, e store.ExpresswayEntry) error
	DeleteExpressway(ctx context.Context, id int64) error
	ListReportedNames(ctx context.Context) ([]store.ReportedName, error)
	Registrations(ctx context.Context, aor string, now time.Time) ([]store.Registration, error)
	DeleteRegistration(ctx context.Context, aor, contact string) error
}

// inventory is the provisioning part of the admin API: devices (S-5,
// S-17, S-19), security profiles (S-5, S-15, S-16), Expressway-C entries
// (S-12) and activation codes (S-17).
type inventory struct {
	*auditor
	st       inventoryStore
	auth     Auth
	gate     Edges
	bindings func(ctx context.Context, device string) ([]store.Registration, error)
}

// clusterStore is what the cluster handlers use: enterprise parameters
// and nodes.
type clusterStore interface {
	GetParam(ctx context.Context, name string) (string, bool, error)
	ListParams(ctx context.Context) (map[string]string, error)
	SetParam(ctx context.Context, name, value string) error
	GetNode(ctx context.Context, name string) (store.Node, error)
	PutNode(ctx context.Context, n store.Node) error
	ListNodes(ctx context.Context) ([]store.Node, error)
}

// cluster is the cluster part of the admin API: enterprise parameters
// (S-7, S-9, S-10, S-13), nodes and their SIP ports (S-11), the SIP OAuth
// mode and the CallManager service (S-13, S-14).
type cluster struct {
	*auditor
	cfg     Config
	st      clusterStore
	ttl     Lifetimes
	setMode func(on bool)
	ports   func() (phone, mra int)
}

// trustStore is what the trust stores keep in the store: uploaded
// certificates.
type trustStore interface {
	ListTrustCerts(ctx context.Context, store string) ([]store.TrustCert, error)
	PutTrustCert(ctx context.Context, c store.TrustCert) error
	DeleteTrustCert(ctx context.Context, store, fingerprint string) error
}

// Trust is the trust stores (S-8 Phone-Edge-Trust, S-11 tomcat-trust):
// the configured files and the certificates uploaded through the admin
// API.
type Trust struct {
	*auditor
	files TrustFiles
	st    trustStore
	trust *mtls.TrustStore
	gate  Edges
}

// writeJSON writes v as JSON no cache may keep (httpx.WriteJSON).
func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return b, nil
}

// portOf is the port of a host:port address, 0 if it has none.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
