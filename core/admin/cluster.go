package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/store"
)

// adminRoutes adds the chapter's administration to the admin API: node
// settings (S-11), the SIP OAuth mode and the CallManager service (S-7,
// S-13, S-14), security profiles (S-5, S-15, S-16), devices (S-17, S-19),
// trust stores (S-8, S-11) and Expressway-C entries (S-12).
func (a *API) adminRoutes(api *http.ServeMux) {
	c, inv, t := a.cluster, a.inv, a.trust
	api.HandleFunc("GET /api/v1/params", c.apiParamsGet)
	api.HandleFunc("PUT /api/v1/params/{name}", c.apiParamSet)
	api.HandleFunc("GET /api/v1/nodes", c.apiNodes)
	api.HandleFunc("PUT /api/v1/nodes/{name}", c.apiNodeSet)
	api.HandleFunc("POST /api/v1/service/restart", c.apiServiceRestart)
	api.HandleFunc("GET /api/v1/utils/sipoauth-mode", c.apiModeStatus)
	api.HandleFunc("POST /api/v1/utils/sipoauth-mode", c.apiModeSet)
	api.HandleFunc("GET /api/v1/profiles", inv.apiProfiles)
	api.HandleFunc("PUT /api/v1/profiles/{name}", inv.apiProfileSet)
	api.HandleFunc("DELETE /api/v1/profiles/{name}", inv.apiProfileDelete)
	api.HandleFunc("GET /api/v1/devices/{name}", inv.apiDeviceGet)
	api.HandleFunc("PUT /api/v1/devices/{name}", inv.apiDeviceSet)
	api.HandleFunc("DELETE /api/v1/devices/{name}", inv.apiDeviceDelete)
	api.HandleFunc("POST /api/v1/devices/{name}/reset", inv.apiDeviceReset)
	api.HandleFunc("POST /api/v1/devices/{name}/apply-config", inv.apiDeviceReset)
	api.HandleFunc("PUT /api/v1/expressway/{id}", inv.apiExpresswayEdit)
	api.HandleFunc("GET /api/v1/trust", t.apiTrustList)
	api.HandleFunc("POST /api/v1/trust/{store}", t.apiTrustUpload)
	api.HandleFunc("DELETE /api/v1/trust/{store}/{fingerprint}", t.apiTrustDelete)
}

// --- enterprise parameters (S-9, S-10, S-13, S-7) ---

// paramSpec describes one enterprise parameter.
type paramSpec struct {
	def      string
	readOnly string // why it cannot be set, if it cannot
	check    func(string) error
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, x := range values {
			if v == x {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(values, ", "))
	}
}

func duration(min time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("want a duration such as 60m or 1440h: %v", err)
		}
		if d < min {
			return fmt.Errorf("at least %s", min)
		}
		return nil
	}
}

func (s *cluster) paramSpecs() map[string]paramSpec {
	return map[string]paramSpec{
		policy.ParamRefreshLoginFlow:      {def: "disabled", check: oneOf("enabled", "disabled")},
		policy.ParamAccessTokenForDevices: {def: "implicit", check: oneOf("implicit", "explicit")},
		policy.ParamClusterSIPOAuthMode:   {def: "disabled", readOnly: "S-13: Cluster SIPOAuth Mode is read-only; use `utils sipOAuth-mode enable|disable` on the publisher"},
		policy.ParamExportControlled:      {def: "false", check: oneOf("true", "false")},
		policy.ParamAccessTokenTTL:        {def: s.cfg.AccessTokenTTL.String(), check: duration(time.Minute)},
		policy.ParamRefreshTokenTTL:       {def: s.cfg.RefreshTokenTTL.String(), check: duration(time.Hour)},
	}
}

// ParamView is one enterprise parameter.
type ParamView struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Default  string `json:"default"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

func (s *cluster) apiParamsGet(w http.ResponseWriter, r *http.Request) {
	set, err := s.st.ListParams(r.Context())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	specs := s.paramSpecs()
	out := make([]ParamView, 0, len(specs))
	for _, name := range []string{policy.ParamRefreshLoginFlow, policy.ParamAccessTokenForDevices, policy.ParamAccessTokenTTL, policy.ParamRefreshTokenTTL, policy.ParamExportControlled, policy.ParamClusterSIPOAuthMode} {
		sp := specs[name]
		v, ok := set[name]
		if !ok {
			v = sp.def
		}
		out = append(out, ParamView{Name: name, Value: v, Default: sp.def, ReadOnly: sp.readOnly != ""})
	}
	writeJSON(w, 200, out)
}

func (s *cluster) apiParamSet(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	sp, ok := s.paramSpecs()[name]
	if !ok {
		apiError(w, 404, fmt.Errorf("no enterprise parameter %q", name))
		return
	}
	if sp.readOnly != "" {
		apiError(w, 403, errors.New(sp.readOnly))
		return
	}
	var body struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, 400, errors.New(`body must be {"value": "…"}`))
		return
	}
	if err := sp.check(body.Value); err != nil {
		apiError(w, 400, fmt.Errorf("%s: %w", name, err))
		return
	}
	if err := s.st.SetParam(r.Context(), name, body.Value); err != nil {
		apiError(w, 500, err)
		return
	}
	s.audit(r, "params.set", "%s=%s", name, body.Value)
	s.ttl.Reload(r.Context())
	writeJSON(w, 200, ParamView{Name: name, Value: body.Value, Default: sp.def})
}

// --- nodes, the CallManager service and SIP OAuth mode (S-11, S-13, S-14) ---

// RegisterNode records this node in the cluster's store when its SIP
// service starts: its role, its ports, the mode it now runs.
func (s *cluster) RegisterNode(ctx context.Context, mode bool, phonePort, mraPort int) error {
	n, err := s.st.GetNode(ctx, s.cfg.Node)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("core: node %s: %w", s.cfg.Node, err)
	}
	if errors.Is(err, store.ErrNotFound) {
		n = store.Node{Name: s.cfg.Node, PhoneOAuthPort: s.cfg.PhoneOAuthPort, MRAPort: s.cfg.MRAPort}
	}
	n.Role = s.cfg.Role
	n.RunningMode = modeWord(mode)
	n.RestartedAt, n.LastSeen = s.now(), s.now()
	n.ListeningPhoneOAuthPort, n.ListeningMRAPort = phonePort, mraPort
	return s.st.PutNode(ctx, n)
}

func modeWord(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}

// NodeView is a core node as the admin API shows it.
type NodeView struct {
	Name           string    `json:"name"`
	Role           string    `json:"role"`
	PhoneOAuthPort int       `json:"phone_oauth_port"`
	MRAPort        int       `json:"mra_port"`
	RunningMode    string    `json:"running_mode"`
	RestartNeeded  bool      `json:"restart_needed"`
	RestartedAt    time.Time `json:"restarted_at"`
	// The ports the node is listening on (bound at its last start), and
	// whether the configured ones differ: they take effect when edgeway
	// core restarts on that node.
	ListeningPhoneOAuthPort int  `json:"listening_phone_oauth_port"`
	ListeningMRAPort        int  `json:"listening_mra_port"`
	PortsPending            bool `json:"ports_pending"`
}

func nodeView(n store.Node, cluster string) NodeView {
	return NodeView{Name: n.Name, Role: n.Role, PhoneOAuthPort: n.PhoneOAuthPort, MRAPort: n.MRAPort,
		RunningMode: n.RunningMode, RestartNeeded: cluster != "" && n.RunningMode != cluster, RestartedAt: n.RestartedAt,
		ListeningPhoneOAuthPort: n.ListeningPhoneOAuthPort, ListeningMRAPort: n.ListeningMRAPort,
		PortsPending: n.ListeningMRAPort != 0 && (n.PhoneOAuthPort != n.ListeningPhoneOAuthPort || n.MRAPort != n.ListeningMRAPort)}
}

func (s *cluster) nodeViews(ctx context.Context) ([]NodeView, string, error) {
	nodes, err := s.st.ListNodes(ctx)
	if err != nil {
		return nil, "", err
	}
	on, err := policy.ParamIs(ctx, s.st, policy.ParamClusterSIPOAuthMode, "enabled", "disabled")
	if err != nil {
		return nil, "", err
	}
	cluster := modeWord(on)
	out := make([]NodeView, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, nodeView(n, cluster))
	}
	return out, cluster, nil
}

func (s *cluster) apiNodes(w http.ResponseWriter, r *http.Request) {
	nodes, _, err := s.nodeViews(r.Context())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	writeJSON(w, 200, nodes)
}

// apiNodeSet sets a node's SIP Phone OAuth and MRA ports (S-11): each in
// 1024-49151, different from each other and from the node's HTTPS and
// config ports. Like the product, a node binds new ports when it restarts.
func (s *cluster) apiNodeSet(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n, err := s.st.GetNode(r.Context(), name)
	if err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	var body struct {
		PhoneOAuthPort *int `json:"phone_oauth_port"`
		MRAPort        *int `json:"mra_port"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, 400, errors.New(`body must be {"phone_oauth_port": N, "mra_port": N}`))
		return
	}
	if body.PhoneOAuthPort != nil {
		n.PhoneOAuthPort = *body.PhoneOAuthPort
	}
	if body.MRAPort != nil {
		n.MRAPort = *body.MRAPort
	}
	var errs []error
	for _, p := range []struct {
		name string
		v    int
	}{{"SIP Phone OAuth Port", n.PhoneOAuthPort}, {"SIP Mobile and Remote Access Port", n.MRAPort}} {
		if err := policy.ValidatePort(p.name, p.v); err != nil {
			errs = append(errs, err)
		}
	}
	if n.PhoneOAuthPort == n.MRAPort {
		errs = append(errs, fmt.Errorf("S-11: SIP Phone OAuth Port and SIP Mobile and Remote Access Port must differ (both %d)", n.MRAPort))
	}
	if name == s.cfg.Node {
		for _, addr := range []string{s.cfg.HTTPSAddr, s.cfg.ConfigAddr} {
			if p := portOf(addr); p != 0 && (p == n.PhoneOAuthPort || p == n.MRAPort) {
				errs = append(errs, fmt.Errorf("S-11: port %d is already this node's HTTPS or config port", p))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		apiError(w, 400, err)
		return
	}
	if err := s.st.PutNode(r.Context(), n); err != nil {
		apiError(w, 500, err)
		return
	}
	s.audit(r, "node.set", "node=%s phone_oauth_port=%d mra_port=%d", name, n.PhoneOAuthPort, n.MRAPort)
	writeJSON(w, 200, nodeView(n, ""))
}

// apiServiceRestart is `service restart callmanager` on this node: the
// SIP service re-reads the cluster SIP OAuth mode, which takes effect now
// (S-14).
func (s *cluster) apiServiceRestart(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Service string `json:"service"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	if !strings.EqualFold(strings.ReplaceAll(body.Service, " ", ""), "callmanager") && !strings.EqualFold(body.Service, "Cisco CallManager") {
		apiError(w, 400, fmt.Errorf("unknown service %q: only callmanager (the SIP service) can be restarted", body.Service))
		return
	}
	on, err := policy.ParamIs(r.Context(), s.st, policy.ParamClusterSIPOAuthMode, "enabled", "disabled")
	if err != nil {
		apiError(w, 503, err)
		return
	}
	s.setMode(on)
	// The SIP service restarts; its listeners (and so its ports) stay.
	phonePort, mraPort := s.ports()
	if err := s.RegisterNode(r.Context(), on, phonePort, mraPort); err != nil {
		apiError(w, 500, err)
		return
	}
	s.log.Info("CallManager service restarted", "sip_oauth_mode", modeWord(on))
	s.audit(r, "service.restart", "node=%s service=callmanager sip_oauth_mode=%s", s.cfg.Node, modeWord(on))
	writeJSON(w, 200, map[string]string{"node": s.cfg.Node, "service": "callmanager", "sip_oauth_mode": modeWord(on)})
}

// ModeStatus is `utils sipOAuth-mode status`.
type ModeStatus struct {
	ClusterMode string     `json:"cluster_mode"`
	Nodes       []NodeView `json:"nodes"`
	Message     string     `json:"message,omitempty"`
}

func (s *cluster) apiModeStatus(w http.ResponseWriter, r *http.Request) {
	nodes, cluster, err := s.nodeViews(r.Context())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	writeJSON(w, 200, ModeStatus{ClusterMode: cluster, Nodes: nodes, Message: restartMessage(nodes)})
}

func restartMessage(nodes []NodeView) string {
	var stale []string
	for _, n := range nodes {
		if n.RestartNeeded {
			stale = append(stale, n.Name)
		}
	}
	if len(stale) == 0 {
		return ""
	}
	return "S-14: restart the CallManager service on " + strings.Join(stale, ", ") + " for the mode to take effect"
}

// Errors of `utils sipOAuth-mode`.
var (
	ErrNotPublisher     = errors.New("S-13: run utils sipOAuth-mode on the publisher; this node is a subscriber")
	ErrNotExportAllowed = errors.New("S-7: the cluster is not registered with export-controlled functionality allowed (set the export_controlled_allowed parameter to true)")
)

// apiModeSet is `utils sipOAuth-mode enable|disable` (S-13).
func (s *cluster) apiModeSet(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Action string `json:"action"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || (body.Action != "enable" && body.Action != "disable") {
		apiError(w, 400, errors.New(`body must be {"action": "enable"} or {"action": "disable"}`))
		return
	}
	if s.cfg.Role != policy.RolePublisher {
		apiError(w, 409, ErrNotPublisher)
		return
	}
	if body.Action == "enable" {
		ok, err := policy.ParamIs(r.Context(), s.st, policy.ParamExportControlled, "true", "false")
		if err != nil {
			apiError(w, 503, err)
			return
		}
		if !ok {
			apiError(w, 409, ErrNotExportAllowed)
			return
		}
	}
	mode := modeWord(body.Action == "enable")
	if err := s.st.SetParam(r.Context(), policy.ParamClusterSIPOAuthMode, mode); err != nil {
		apiError(w, 500, err)
		return
	}
	s.audit(r, "utils.sipoauth-mode", "%s (cluster mode now %s)", body.Action, mode)
	nodes, cluster, err := s.nodeViews(r.Context())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	writeJSON(w, 200, ModeStatus{ClusterMode: cluster, Nodes: nodes, Message: restartMessage(nodes)})
}

// --- security profiles (S-5, S-15, S-16) ---

// ProfileView is a phone security profile.
type ProfileView struct {
	Name          string `json:"name"`
	DeviceType    string `json:"device_type,omitempty"`
	Mode          string `json:"device_security_mode"`
	Transport     string `json:"transport"`
	OAuth         bool   `json:"enable_oauth_authentication"`
	Digest        bool   `json:"enable_digest_authentication"`
	TFTPEncrypted bool   `json:"tftp_encrypted_config"`
	// RequireBoundTokens: the profile's devices get only certificate-bound
	// tokens (RFC 8705; issue 15).
	RequireBoundTokens bool `json:"require_certificate_bound_tokens"`
}

func profileView(p store.SecurityProfile) ProfileView {
	return ProfileView{Name: p.Name, DeviceType: p.DeviceType, Mode: p.Mode, Transport: p.Transport, OAuth: p.OAuth, Digest: p.Digest, TFTPEncrypted: p.TFTPEncrypted,
		RequireBoundTokens: p.RequireBoundTokens}
}

func (s *inventory) apiProfiles(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, s.st.ListSecurityProfiles, profileView)
}

// writeList answers a GET of a collection: the store's rows, each shown
// through view.
func writeList[T, V any](w http.ResponseWriter, r *http.Request, list func(context.Context) ([]T, error), view func(T) V) {
	rows, err := list(r.Context())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	out := make([]V, 0, len(rows))
	for _, row := range rows {
		out = append(out, view(row))
	}
	writeJSON(w, 200, out)
}

func (s *inventory) apiProfileSet(w http.ResponseWriter, r *http.Request) {
	var v ProfileView
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		apiError(w, 400, fmt.Errorf("bad JSON: %w", err))
		return
	}
	v.Name = r.PathValue("name")
	p := store.SecurityProfile{Name: v.Name, DeviceType: v.DeviceType, Mode: strings.ToLower(v.Mode), Transport: strings.ToUpper(v.Transport),
		OAuth: v.OAuth, Digest: v.Digest, TFTPEncrypted: v.TFTPEncrypted, RequireBoundTokens: v.RequireBoundTokens}
	if err := policy.ValidateProfile(p); err != nil {
		apiError(w, 400, err)
		return
	}
	if err := s.st.PutSecurityProfile(r.Context(), p); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "profile.set", "%s: mode=%s transport=%s oauth=%v digest=%v tftp_encrypted=%v device_type=%q require_bound_tokens=%v",
		p.Name, p.Mode, p.Transport, p.OAuth, p.Digest, p.TFTPEncrypted, p.DeviceType, p.RequireBoundTokens)
	writeJSON(w, 200, profileView(p))
}

func (s *inventory) apiProfileDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.st.DeleteSecurityProfile(r.Context(), name); err != nil {
		if errors.Is(err, store.ErrConflict) {
			apiError(w, 409, fmt.Errorf("profile %q is applied to devices; move them to another profile first", name))
			return
		}
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "profile.delete", "%s", name)
	w.WriteHeader(http.StatusNoContent)
}

// --- devices (S-5, S-17, S-19) ---

// DeviceView is a device as the admin API shows and takes it.
type DeviceView struct {
	Name             string `json:"name"`
	Model            string `json:"model"`
	Line             string `json:"line"`
	Owner            string `json:"owner,omitempty"`
	SecurityProfile  string `json:"security_profile"`
	AllowMRA         bool   `json:"allow_activation_code_via_mra"`
	MRAServiceDomain string `json:"activation_code_mra_service_domain,omitempty"`
}

func deviceView(d store.Device) DeviceView {
	return DeviceView{Name: d.Name, Model: d.Model, Line: d.Line, Owner: d.Owner, SecurityProfile: d.SecurityProfile, AllowMRA: d.AllowMRA, MRAServiceDomain: d.MRAServiceDomain}
}

func (s *inventory) apiDeviceGet(w http.ResponseWriter, r *http.Request) {
	d, err := s.st.GetDevice(r.Context(), r.PathValue("name"))
	if err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	writeJSON(w, 200, deviceView(d))
}

// apiDeviceSet is "Save" on a device (S-19): it checks the device against
// its profile and the line plan; the change reaches a registered phone
// with apply-config or reset.
func (s *inventory) apiDeviceSet(w http.ResponseWriter, r *http.Request) {
	var v DeviceView
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		apiError(w, 400, fmt.Errorf("bad JSON: %w", err))
		return
	}
	v.Name = r.PathValue("name")
	d := store.Device{Name: v.Name, Model: strings.ToUpper(strings.TrimSpace(v.Model)), Line: strings.TrimSpace(v.Line), Owner: v.Owner,
		SecurityProfile: v.SecurityProfile, AllowMRA: v.AllowMRA, MRAServiceDomain: strings.ToLower(strings.TrimSpace(v.MRAServiceDomain))}
	if err := s.validateDevice(r.Context(), d); err != nil {
		status := 400
		if errors.Is(err, store.ErrConflict) {
			status = 409
		}
		apiError(w, status, err)
		return
	}
	if err := s.st.PutDevice(r.Context(), d); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "device.set", "%s: model=%s line=%s profile=%q owner=%q allow_mra=%v mra_domain=%q",
		d.Name, d.Model, d.Line, d.SecurityProfile, d.Owner, d.AllowMRA, d.MRAServiceDomain)
	writeJSON(w, 200, deviceView(d))
}

func (s *inventory) validateDevice(ctx context.Context, d store.Device) error {
	if !validDeviceName(d.Name) {
		return fmt.Errorf("device name %q: 1-64 letters, digits, '-' or '_'", d.Name)
	}
	if d.Model == "" || d.Line == "" {
		return errors.New("a device needs a model and a line")
	}
	if other, err := s.st.DeviceByLine(ctx, d.Line); err == nil && other.Name != d.Name {
		return fmt.Errorf("line %s already belongs to %s: %w", d.Line, other.Name, store.ErrConflict)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	p, err := s.st.GetSecurityProfile(ctx, d.SecurityProfile)
	if err != nil {
		return fmt.Errorf("security profile %q: %w", d.SecurityProfile, err)
	}
	if p.DeviceType != "" && !strings.EqualFold(p.DeviceType, "UDT") && !strings.EqualFold(p.DeviceType, d.Model) {
		return fmt.Errorf("security profile %q is for device type %s, not %s", p.Name, p.DeviceType, d.Model)
	}
	if p.OAuth && !policy.OAuthCapable(d.Model) {
		return fmt.Errorf("%w: %s cannot use profile %q, which enables OAuth", policy.ErrModelNotOAuth, d.Model, p.Name)
	}
	if d.AllowMRA && d.MRAServiceDomain == "" {
		return errors.New("S-17: Allow Activation Code via MRA needs an Activation Code MRA Service Domain")
	}
	return nil
}

func validDeviceName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// dropDeviceBindings removes every binding of a device, whatever line it
// registered (the line may have changed since).
// This node's bindings leave its location service (and the store); those
// another node of the cluster accepted leave the store here and that
// node's memory when they expire or the device registers again.
func (s *inventory) dropDeviceBindings(ctx context.Context, device string) ([]store.Registration, error) {
	out, err := s.bindings(ctx, device)
	if err != nil {
		return out, err
	}
	all, err := s.st.Registrations(ctx, "", s.now())
	if err != nil {
		return out, err
	}
	for _, g := range all {
		if g.Device == device {
			if err := s.st.DeleteRegistration(ctx, g.AOR, g.Contact); err != nil {
				return out, err
			}
			out = append(out, g)
		}
	}
	return out, nil
}

func (s *inventory) apiDeviceDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d, err := s.st.GetDevice(r.Context(), name)
	if err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	if _, err := s.dropDeviceBindings(r.Context(), d.Name); err != nil {
		apiError(w, 500, err)
		return
	}
	if err := s.st.RevokeDeviceFamilies(r.Context(), d.Name, s.now()); err != nil {
		apiError(w, 500, err)
		return
	}
	if err := s.auth.NoteRevoked(r.Context(), store.ChangeFamily, ""); err != nil {
		apiError(w, 503, fmt.Errorf("device's grants revoked, but not yet in force on this node: %w", err))
		return
	}
	if err := s.st.DeleteDevice(r.Context(), name); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "device.delete", "%s", name)
	w.WriteHeader(http.StatusNoContent)
}

// apiDeviceReset is reset and apply-config (S-15, S-19): the device's
// bindings are dropped, so the phone registers again — and downloads its
// new config — before it can take calls.
func (s *inventory) apiDeviceReset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d, err := s.st.GetDevice(r.Context(), name)
	if err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	regs, err := s.dropDeviceBindings(r.Context(), d.Name)
	if err != nil {
		apiError(w, 500, err)
		return
	}
	action := "device.reset"
	if strings.HasSuffix(r.URL.Path, "/apply-config") {
		action = "device.apply-config"
	}
	s.audit(r, action, "%s: %d binding(s) removed", name, len(regs))
	writeJSON(w, 200, map[string]any{"device": name, "bindings_removed": len(regs)})
}

// --- Expressway-C entries at run time (S-12) ---

func (s *inventory) apiExpresswayEdit(w http.ResponseWriter, r *http.Request) {
	var v ExpresswayEntryView
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		apiError(w, 400, fmt.Errorf("bad JSON: %w", err))
		return
	}
	var err error
	if v.ID, err = strconv.ParseInt(r.PathValue("id"), 10, 64); err != nil {
		apiError(w, 400, fmt.Errorf("bad id %q", r.PathValue("id")))
		return
	}
	if err := validateExpressway(v); err != nil {
		apiError(w, 400, err)
		return
	}
	e := store.ExpresswayEntry{ID: v.ID, Address: v.Address, Description: v.Description, Names: v.Names, Domains: v.Domains}
	if err := s.st.UpdateExpressway(r.Context(), e); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "expressway.edit", "id=%d address=%s names=%v domains=%v", v.ID, v.Address, v.Names, v.Domains)
	s.gate.Sweep(r.Context())
	writeJSON(w, 200, v)
}

func validateExpressway(v ExpresswayEntryView) error {
	if strings.TrimSpace(v.Address) == "" {
		return errors.New("S-12: an Expressway-C entry needs an address (IP, hostname or FQDN)")
	}
	if len(v.Names) == 0 {
		return errors.New("S-12: an Expressway-C entry needs at least one X.509 subject name / SAN")
	}
	for _, n := range v.Names {
		if strings.TrimSpace(n) == "" {
			return errors.New("S-12: empty X.509 subject name / SAN")
		}
	}
	return nil
}
