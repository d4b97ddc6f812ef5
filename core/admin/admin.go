package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/activation"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/mtls"
)

// Routes adds the admin API to mux: the password login
// (POST /api/v1/auth/tokens, HTTP Basic) and everything under /api/ behind
// a bearer API token.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/auth/tokens", a.handleLogin) // HTTP Basic, not a token
	mux.Handle("/api/", a.Handler())
}

// Handler is the admin API under /api/ behind a bearer API token (all but
// the password login): what Routes mounts, and what the web UI serves its
// pages' requests through, so that they get the API's own checks,
// refusals and audit entries.
func (a *API) Handler() http.Handler {
	inv := a.inv
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/registrations", a.apiRegistrations)
	api.HandleFunc("GET /api/v1/expressway", inv.apiExpresswayList)
	api.HandleFunc("GET /api/v1/expressway/find", inv.apiExpresswayFind)
	api.HandleFunc("POST /api/v1/expressway", inv.apiExpresswayAdd)
	api.HandleFunc("DELETE /api/v1/expressway/{id}", inv.apiExpresswayDelete)
	api.HandleFunc("POST /api/v1/activation", inv.apiActivationIssue)
	api.HandleFunc("POST /api/v1/activation/bulk", inv.apiActivationBulk)
	api.HandleFunc("GET /api/v1/activation", inv.apiActivationList)
	api.HandleFunc("DELETE /api/v1/activation/{id}", inv.apiActivationRevoke)
	api.HandleFunc("GET /api/v1/devices", inv.apiDevices)
	api.HandleFunc("POST /api/v1/keys/rotate", a.apiRotateKey)
	api.HandleFunc("POST /api/v1/auth/tokens/new", a.apiTokensCreate)
	api.HandleFunc("GET /api/v1/auth/tokens", a.apiTokensList)
	api.HandleFunc("DELETE /api/v1/auth/tokens/{id}", a.apiTokensRevoke)
	api.HandleFunc("PUT /api/v1/accounts/{username}", a.apiAccountSet)
	api.HandleFunc("GET /api/v1/audit", a.apiAudit)
	a.adminRoutes(api)
	a.familyRoutes(api)
	a.deviceCodeRoutes(api) // RFC 8628 (devicecodes.go)
	return a.requireAdmin(api)
}

func apiError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func storeStatus(err error) int {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, activation.ErrUnknown):
		return http.StatusNotFound
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// RegistrationView is a binding as the admin API shows it.
type RegistrationView struct {
	AOR       string    `json:"aor"`
	Contact   string    `json:"contact"`
	Device    string    `json:"device"`
	Path      []string  `json:"path,omitempty"`
	MRA       bool      `json:"mra"`
	Edge      string    `json:"edge,omitempty"`
	Node      string    `json:"node"`
	Source    string    `json:"source"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *API) apiRegistrations(w http.ResponseWriter, r *http.Request) {
	regs, err := s.st.Registrations(r.Context(), r.URL.Query().Get("aor"), s.now())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	out := make([]RegistrationView, 0, len(regs))
	for _, g := range regs {
		out = append(out, RegistrationView{AOR: g.AOR, Contact: g.Contact, Device: g.Device, Path: g.Path, MRA: g.MRA,
			Edge: g.Edge, Node: g.Node, Source: g.Source, ExpiresAt: g.ExpiresAt})
	}
	writeJSON(w, 200, out)
}

// ExpresswayEntryView is an Expressway-C entry (S-12).
type ExpresswayEntryView struct {
	ID          int64    `json:"id"`
	Address     string   `json:"address"`
	Description string   `json:"description,omitempty"`
	Names       []string `json:"names"`
	Domains     []string `json:"domains,omitempty"`
}

// FoundName is one row of "Find" (S-12): a name an edge presented and
// whether an entry admits it.
type FoundName struct {
	Name       string    `json:"name"`
	Address    string    `json:"address"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Configured bool      `json:"configured"`
	EntryID    int64     `json:"entry_id,omitempty"`
}

func (s *inventory) apiExpresswayList(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, s.st.ListExpressways, func(e store.ExpresswayEntry) ExpresswayEntryView {
		return ExpresswayEntryView{ID: e.ID, Address: e.Address, Description: e.Description, Names: e.Names, Domains: e.Domains}
	})
}

func (s *inventory) apiExpresswayFind(w http.ResponseWriter, r *http.Request) {
	names, err := s.st.ListReportedNames(r.Context())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	es, err := s.st.ListExpressways(r.Context())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	out := make([]FoundName, 0, len(names))
	for _, n := range names {
		f := FoundName{Name: n.Name, Address: n.Address, FirstSeen: n.FirstSeen, LastSeen: n.LastSeen}
		for _, e := range es {
			for _, en := range e.Names {
				if mtls.SameName(en, n.Name) {
					f.Configured, f.EntryID = true, e.ID
				}
			}
		}
		out = append(out, f)
	}
	writeJSON(w, 200, out)
}

func (s *inventory) apiExpresswayAdd(w http.ResponseWriter, r *http.Request) {
	var v ExpresswayEntryView
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		apiError(w, 400, fmt.Errorf("bad JSON: %w", err))
		return
	}
	if err := validateExpressway(v); err != nil {
		apiError(w, 400, err)
		return
	}
	id, err := s.st.AddExpressway(r.Context(), store.ExpresswayEntry{Address: v.Address, Description: v.Description, Names: v.Names, Domains: v.Domains})
	if err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "expressway.add", "id=%d address=%s names=%v", id, v.Address, v.Names)
	v.ID = id
	writeJSON(w, 201, v)
}

func (s *inventory) apiExpresswayDelete(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		apiError(w, 400, fmt.Errorf("bad id %q", r.PathValue("id")))
		return
	}
	if err := s.st.DeleteExpressway(r.Context(), id); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "expressway.delete", "id=%d", id)
	s.gate.Sweep(r.Context())
	w.WriteHeader(http.StatusNoContent)
}

// IssuedCode is an activation code as returned once, at issue time.
type IssuedCode struct {
	Device         string    `json:"device"`
	ActivationCode string    `json:"activation_code"`
	ID             string    `json:"id"`
	ExpiresAt      time.Time `json:"expires_at"`
}

func (s *inventory) apiActivationIssue(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Device string `json:"device"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Device == "" {
		apiError(w, 400, errors.New(`body must be {"device": "<name>"}`))
		return
	}
	if _, err := s.st.GetDevice(r.Context(), req.Device); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	is, err := s.auth.Activation().Issue(r.Context(), req.Device)
	if err != nil {
		apiError(w, 500, err)
		return
	}
	s.audit(r, "activation.issue", "device=%s id=%s", is.Device, is.ID)
	writeJSON(w, 201, IssuedCode{Device: is.Device, ActivationCode: is.Code.String(), ID: is.ID, ExpiresAt: is.ExpiresAt})
}

func (s *inventory) apiActivationBulk(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Devices []string `json:"devices"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Devices) == 0 {
		apiError(w, 400, errors.New(`body must be {"devices": ["<name>", ...]}`))
		return
	}
	seen := map[string]bool{}
	for _, d := range req.Devices {
		if seen[d] {
			apiError(w, 400, fmt.Errorf("device %q is listed twice", d))
			return
		}
		seen[d] = true
		if _, err := s.st.GetDevice(r.Context(), d); err != nil {
			apiError(w, storeStatus(err), err)
			return
		}
	}
	issued, err := s.auth.Activation().IssueBulk(r.Context(), req.Devices)
	if err != nil {
		// Codes issued before the failure are valid (and replaced older
		// ones): hand them out rather than lose them.
		var partial strings.Builder
		_ = activation.WriteCSV(&partial, issued)
		s.audit(r, "activation.issue-bulk", "devices=%d of %d, then failed: %v", len(issued), len(req.Devices), err)
		writeJSON(w, 500, map[string]string{"error": err.Error(), "issued_csv": partial.String()})
		return
	}
	s.audit(r, "activation.issue-bulk", "devices=%d", len(issued))
	w.Header().Set("Content-Type", "text/csv")
	w.Header().Set("Cache-Control", "no-store")
	_ = activation.WriteCSV(w, issued)
}

// CodeView is an activation code without its plaintext.
type CodeView struct {
	ID        string     `json:"id"`
	Device    string     `json:"device"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	LockedAt  *time.Time `json:"locked_at,omitempty"` // after too many wrong guesses (issue 9)
	State     string     `json:"state"`               // valid, used, revoked, expired or locked
}

func (s *inventory) apiActivationList(w http.ResponseWriter, r *http.Request) {
	codes, err := s.auth.Activation().List(r.Context(), r.URL.Query().Get("device"))
	if err != nil {
		apiError(w, 500, err)
		return
	}
	now := s.now()
	out := make([]CodeView, 0, len(codes))
	for _, c := range codes {
		v := CodeView{ID: c.ID, Device: c.Device, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, State: "valid"}
		if !c.UsedAt.IsZero() {
			t := c.UsedAt
			v.UsedAt, v.State = &t, "used"
		} else if !c.RevokedAt.IsZero() {
			t := c.RevokedAt
			v.RevokedAt, v.State = &t, "revoked"
		} else if !now.Before(c.ExpiresAt) {
			v.State = "expired"
		} else if !c.LockedAt.IsZero() {
			t := c.LockedAt
			v.LockedAt, v.State = &t, "locked"
		}
		out = append(out, v)
	}
	writeJSON(w, 200, out)
}

func (s *inventory) apiActivationRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.auth.Activation().Revoke(r.Context(), id); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "activation.revoke", "id=%s", id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *inventory) apiDevices(w http.ResponseWriter, r *http.Request) {
	writeList(w, r, s.st.ListDevices, deviceView)
}

// apiRotateKey is POST /api/v1/keys/rotate; ?regen=true drops the old
// keys at once.
func (s *API) apiRotateKey(w http.ResponseWriter, r *http.Request) {
	regen := r.URL.Query().Get("regen") == "true"
	kid, err := s.keys.Rotate(r.Context(), regen)
	if err != nil {
		apiError(w, 500, err)
		return
	}
	s.audit(r, "keys.rotate", "kid=%s regen=%v", kid, regen)
	writeJSON(w, 200, map[string]string{"kid": kid})
}
