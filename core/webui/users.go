package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/edgeway/edgeway/core/admin"
)

// User Management: a user's refresh-token families, with revoke.

// userPages are this file's pages (see allPages).
var userPages = []page{
	{Name: "users", Title: "User Management → Refresh tokens", Label: "Refresh tokens", Menu: "User Management", Path: "/ui/users",
		Rule: "R-2: an administrator revokes a user's existing refresh tokens (e.g. when an employee leaves): the families of the user's password grants and of the devices the user owns; a revoked family's refresh token is refused and its access tokens no longer register"},
}

// userRoutes mounts this file's handlers.
func (u *UI) userRoutes(m *http.ServeMux) {
	m.Handle("GET /ui/users", u.session(u.usersPage))
	m.Handle("POST /ui/users/revoke", u.session(u.usersRevokeAll))
	m.Handle("POST /ui/users/families/{id}/revoke", u.session(u.usersRevokeFamily))
}

type usersData struct {
	User     string
	Found    bool // the user's families were read
	Families []admin.FamilyView
	Note     string // the API's word on an empty list
	Notice   string // what the last revocation did
	Error    string // the API's refusal (or the page's, naming R-2)
	LoadErr  string
}

// errNoUser is the page's own refusal of a revocation without a user.
const errNoUser = "R-2: name the user whose refresh tokens are to be revoked"

func (u *UI) usersPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := usersData{User: strings.TrimSpace(q.Get("user"))}
	if d.User != "" {
		switch n, fam := q.Get("revoked"), q.Get("family"); {
		case fam != "":
			d.Notice = fmt.Sprintf("R-2: refresh-token family %s revoked.", fam)
		case n == "0":
			d.Notice = fmt.Sprintf("%s has no live refresh-token family: nothing was revoked.", d.User)
		case n != "":
			if k, err := strconv.Atoi(n); err == nil && k > 0 {
				d.Notice = fmt.Sprintf("R-2: revoked %s of %s: their refresh tokens are refused and their access tokens no longer register.", families(k), d.User)
			}
		}
	}
	u.renderUsers(w, r, s, http.StatusOK, d)
}

func (u *UI) renderUsers(w http.ResponseWriter, r *http.Request, s *session, status int, d usersData) {
	if d.User != "" {
		var uf admin.UserFamilies
		if err := u.call(r, s, http.MethodGet, "/api/v1/users/"+url.PathEscape(d.User)+"/families", nil).decode(&uf); err != nil {
			d.LoadErr = err.Error()
		} else {
			d.Found, d.Families, d.Note = true, uf.Families, uf.Note
		}
	}
	u.render(w, status, "users", s, d)
}

// usersBack is the page of user, after a revocation.
func usersBack(user string, v url.Values) string {
	v.Set("user", user)
	return "/ui/users?" + v.Encode()
}

// usersRevokeAll revokes every refresh-token family of the user
// through POST /api/v1/users/{username}/families/revoke.
func (u *UI) usersRevokeAll(w http.ResponseWriter, r *http.Request, s *session) {
	user := strings.TrimSpace(r.PostForm.Get("user"))
	if user == "" {
		u.renderUsers(w, r, s, http.StatusBadRequest, usersData{Error: errNoUser})
		return
	}
	res := u.call(r, s, http.MethodPost, "/api/v1/users/"+url.PathEscape(user)+"/families/revoke", nil)
	var out admin.RevokedUserFamilies
	if err := res.decode(&out); err != nil {
		u.renderUsers(w, r, s, res.status, usersData{User: user, Error: res.err})
		return
	}
	http.Redirect(w, r, usersBack(user, url.Values{"revoked": {strconv.Itoa(len(out.Revoked))}}), http.StatusSeeOther)
}

// usersRevokeFamily revokes one family through DELETE /api/v1/families/{id}.
func (u *UI) usersRevokeFamily(w http.ResponseWriter, r *http.Request, s *session) {
	id, user := r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("user"))
	res := u.call(r, s, http.MethodDelete, "/api/v1/families/"+url.PathEscape(id), nil)
	if !res.ok() {
		u.renderUsers(w, r, s, res.status, usersData{User: user, Error: res.err})
		return
	}
	if user == "" {
		http.Redirect(w, r, "/ui/users", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, usersBack(user, url.Values{"family": {id}}), http.StatusSeeOther)
}

// families is "1 refresh-token family" or "n refresh-token families".
func families(n int) string {
	if n == 1 {
		return "1 refresh-token family"
	}
	return strconv.Itoa(n) + " refresh-token families"
}
