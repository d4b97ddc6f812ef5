package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgeway/edgeway/internal/store"
)

// familyStore is what the refresh-token family handlers use.
type familyStore interface {
	UserFamilies(ctx context.Context, username string) ([]store.FamilyInfo, error)
	Family(ctx context.Context, id string) (store.FamilyInfo, error)
	RevokeFamily(ctx context.Context, family string, now time.Time) error
	RevokeUserFamilies(ctx context.Context, username string, now time.Time) ([]string, error)
}

// families is the part of the admin API that shows a user's refresh-token
// families and revokes them (R-2: an administrator revokes a user's
// existing refresh tokens, e.g. when an employee leaves). A revocation is
// written to the store, whose change feed carries it to every node, and
// read back on this node before the answer (Auth.NoteRevoked): from then
// on the family's refresh token is refused (invalid_grant) and its access
// tokens no longer register (401 invalid_token), as after a refresh-token
// replay or a device's deletion.
type families struct {
	*auditor
	st   familyStore
	auth Auth
}

func (a *API) familyRoutes(api *http.ServeMux) {
	f := &families{auditor: a.auditor, st: a.fam, auth: a.auth}
	api.HandleFunc("GET /api/v1/users/{username}/families", f.apiUserFamilies)
	api.HandleFunc("POST /api/v1/users/{username}/families/revoke", f.apiUserFamiliesRevoke)
	api.HandleFunc("DELETE /api/v1/families/{id}", f.apiFamilyRevoke)
}

// FamilyView is a refresh-token family as the admin API shows it.
type FamilyView struct {
	ID        string    `json:"id"`
	Device    string    `json:"device"`
	Username  string    `json:"username,omitempty"` // a password grant's user
	Origin    string    `json:"origin"`             // activation_code | password
	MRA       bool      `json:"mra"`                // started through the edge
	StartedAt time.Time `json:"started_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // the current refresh token's expiry
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// State is "active", "expired" (its current token has expired) or
	// "revoked".
	State string `json:"state"`
}

func familyView(f store.FamilyInfo, now time.Time) FamilyView {
	v := FamilyView{ID: f.ID, Device: f.Device, Username: f.Username, Origin: f.Origin, MRA: f.MRA,
		StartedAt: f.StartedAt, ExpiresAt: f.ExpiresAt, RevokedAt: f.RevokedAt, State: "active"}
	switch {
	case !f.RevokedAt.IsZero():
		v.State = "revoked"
	case f.ExpiresAt.IsZero() || !now.Before(f.ExpiresAt):
		v.State = "expired"
	}
	return v
}

// UserFamilies is the answer of GET /api/v1/users/{username}/families.
type UserFamilies struct {
	Username string       `json:"username"`
	Families []FamilyView `json:"families"`
	// Note says in words what an empty list means.
	Note string `json:"note,omitempty"`
}

// RevokedUserFamilies is the answer of POST .../families/revoke.
type RevokedUserFamilies struct {
	Username string   `json:"username"`
	Revoked  []string `json:"revoked"`
	Note     string   `json:"note"`
}

// username reads {username}: the user whose families are meant.
func username(r *http.Request) (string, error) {
	u := strings.TrimSpace(r.PathValue("username"))
	if u == "" {
		return "", errors.New("R-2: name the user whose refresh tokens are meant")
	}
	return u, nil
}

func (s *families) apiUserFamilies(w http.ResponseWriter, r *http.Request) {
	user, err := username(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	fams, err := s.st.UserFamilies(r.Context(), user)
	if err != nil {
		apiError(w, 500, err)
		return
	}
	now := s.now()
	out := UserFamilies{Username: user, Families: make([]FamilyView, 0, len(fams))}
	for _, f := range fams {
		out.Families = append(out.Families, familyView(f, now))
	}
	if len(fams) == 0 {
		out.Note = fmt.Sprintf("%s has no refresh-token family: no password grant in this name and no token of a device %s owns", user, user)
	}
	writeJSON(w, 200, out)
}

// apiUserFamiliesRevoke revokes every live family of a user.
func (s *families) apiUserFamiliesRevoke(w http.ResponseWriter, r *http.Request) {
	user, err := username(r)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	ids, err := s.st.RevokeUserFamilies(r.Context(), user, s.now())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	out := RevokedUserFamilies{Username: user, Revoked: ids}
	if out.Revoked == nil {
		out.Revoked = []string{}
	}
	if len(ids) == 0 {
		out.Note = fmt.Sprintf("%s has no live refresh-token family: nothing was revoked", user)
		writeJSON(w, 200, out)
		return
	}
	s.audit(r, "user.families-revoke", "%s: %d famil%s (%s)", user, len(ids), plural(len(ids), "y", "ies"), strings.Join(ids, ", "))
	if err := s.auth.NoteRevoked(r.Context(), store.ChangeFamily, ""); err != nil {
		apiError(w, 503, fmt.Errorf("R-2: %s's refresh tokens are revoked, but not yet in force on this node: %w", user, err))
		return
	}
	out.Note = fmt.Sprintf("R-2: revoked %d refresh-token famil%s of %s: their refresh tokens are refused and their access tokens no longer register", len(ids), plural(len(ids), "y", "ies"), user)
	writeJSON(w, 200, out)
}

// apiFamilyRevoke revokes one family; an unknown id is 404.
func (s *families) apiFamilyRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f, err := s.st.Family(r.Context(), id)
	if err != nil {
		apiError(w, storeStatus(err), fmt.Errorf("no refresh-token family %q: %w", id, err))
		return
	}
	if !f.RevokedAt.IsZero() {
		w.WriteHeader(http.StatusNoContent) // revoked already: nothing changes
		return
	}
	if err := s.st.RevokeFamily(r.Context(), id, s.now()); err != nil {
		apiError(w, 500, err)
		return
	}
	s.audit(r, "family.revoke", "%s (device %s, %s)", id, f.Device, f.Origin)
	if err := s.auth.NoteRevoked(r.Context(), store.ChangeFamily, id); err != nil {
		apiError(w, 503, fmt.Errorf("R-2: family %s is revoked, but not yet in force on this node: %w", id, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
