package admin

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/internal/httpx"
	"github.com/edgeway/edgeway/internal/passwd"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/mtls"
)

// The admin API authenticates every request with a bearer API token.
// Tokens are random, stored only as SHA-256, named, owned by an admin
// account and revocable. An administrator gets one by logging in with the
// account's password (POST /api/v1/auth/tokens with HTTP Basic); the first
// start of a node writes a bootstrap token to admin_token_file so that the
// very first account can be created.

// API token lifetimes (issue 9 item 13). A token never outlives the token
// that created it: a stolen short-lived login cannot mint a long-lived
// script token.
const (
	// LoginTokenTTL is a password login's token lifetime by default;
	// `edgeway admin login --ttl` asks for up to MaxLoginTokenTTL.
	LoginTokenTTL    = 12 * time.Hour
	MaxLoginTokenTTL = 90 * 24 * time.Hour
	// ScriptTokenTTL is the default of `edgeway admin token create`;
	// --ttl asks for up to MaxScriptTokenTTL.
	ScriptTokenTTL    = 90 * 24 * time.Hour
	MaxScriptTokenTTL = 365 * 24 * time.Hour
	// BootstrapTokenTTL is how long the token written to admin_token_file
	// on a node's first start works: long enough to create the first
	// accounts and provision, not a credential for ever. A new one is
	// written when the file is deleted and the node restarted.
	BootstrapTokenTTL = 30 * 24 * time.Hour
)

// apiTokenPrefix marks Edgeway admin tokens (and keeps them apart from
// access tokens and refresh tokens in logs and secret scanners).
const apiTokenPrefix = "ewa_"

type actorKey struct{}

// actorOf is who made an admin request, for the audit log.
func actorOf(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

type tokenKey struct{}

// tokenOf is the API token an admin request authenticated with.
func tokenOf(ctx context.Context) (store.APIToken, bool) {
	t, ok := ctx.Value(tokenKey{}).(store.APIToken)
	return t, ok
}

func hashAPIToken(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

// newAPIToken creates and stores a token for owner, made by parent ("" for
// a password login, login true, or the bootstrap file); the plaintext is
// returned once.
func (s *API) newAPIToken(ctx context.Context, name, owner, parent string, login bool, expires time.Time) (string, store.APIToken, error) {
	b, err := randomBytes(24)
	if err != nil {
		return "", store.APIToken{}, err
	}
	id, err := randomBytes(6)
	if err != nil {
		return "", store.APIToken{}, err
	}
	raw := apiTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	t := store.APIToken{ID: hex.EncodeToString(id), Hash: hashAPIToken(raw), Name: name, Owner: owner, Parent: parent, Login: login,
		CreatedAt: s.now(), ExpiresAt: expires}
	if err := s.st.PutAPIToken(ctx, t); err != nil {
		return "", store.APIToken{}, err
	}
	return raw, t, nil
}

// EnsureBootstrapToken makes sure admin_token_file holds a token the store
// accepts: it creates both on the first start, and re-registers a token
// file an operator kept (or moved to a new node) if the store lacks it.
func (s *API) EnsureBootstrapToken(ctx context.Context) error {
	path := s.cfg.AdminTokenFile
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		raw, _, err := s.newAPIToken(ctx, "bootstrap ("+filepath.Base(path)+")", "admin", "", false, s.now().Add(BootstrapTokenTTL))
		if err != nil {
			return fmt.Errorf("core: bootstrap admin token: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("core: admin token dir: %w", err)
		}
		if err := mtls.WriteFileAtomic(path, []byte(raw+"\n"), 0o600); err != nil {
			return fmt.Errorf("core: writing admin token: %w", err)
		}
		s.log.Info("bootstrap admin token created", "file", path)
		return nil
	case err != nil:
		return fmt.Errorf("core: reading admin token: %w", err)
	}
	raw := strings.TrimSpace(string(b))
	if len(raw) < 16 {
		return fmt.Errorf("core: admin token in %s is shorter than 16 characters", path)
	}
	if _, err := s.st.APITokenByHash(ctx, hashAPIToken(raw), s.now()); err == nil {
		return nil
	} else if errors.Is(err, store.ErrExpired) {
		s.log.Warn("the admin token file holds an expired bootstrap token; log in with an admin account (edgeway admin login), or delete the file and restart this node for a new one", "file", path)
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// Known file, unknown (or revoked) token: a revoked bootstrap token
	// stays revoked; a token from a file the store never saw is adopted.
	tokens, err := s.st.ListAPITokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if t.ID == bootstrapID(raw) {
			s.log.Warn("the admin token file holds a revoked token", "file", path)
			return nil
		}
	}
	err = s.st.PutAPIToken(ctx, store.APIToken{ID: bootstrapID(raw), Hash: hashAPIToken(raw),
		Name: "bootstrap (" + filepath.Base(path) + ")", Owner: "admin", CreatedAt: s.now(), ExpiresAt: s.now().Add(BootstrapTokenTTL)})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	return nil
}

// bootstrapID is a stable id for an adopted token file.
func bootstrapID(raw string) string { return "file-" + hex.EncodeToString(hashAPIToken(raw)[:6]) }

// TokenError is why a bearer API token was refused: the status and
// WWW-Authenticate challenge the admin API answers with, and the message.
type TokenError struct {
	Status    int
	Challenge string
	Err       error
}

func (e *TokenError) Error() string { return e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// Authenticate checks a raw API token exactly as every admin API request
// is checked (requireAdmin): unknown, revoked and expired tokens are
// refused with the API's own answer. The web UI checks its session cookie
// with it.
func (s *API) Authenticate(ctx context.Context, raw string) (store.APIToken, *TokenError) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return store.APIToken{}, &TokenError{Status: http.StatusUnauthorized, Challenge: `Bearer realm="edgeway-admin"`,
			Err: errors.New("admin API: a bearer API token is required (edgeway admin token create)")}
	}
	t, err := s.st.APITokenByHash(ctx, hashAPIToken(raw), s.now())
	switch {
	case errors.Is(err, store.ErrExpired):
		return t, &TokenError{Status: http.StatusUnauthorized, Challenge: `Bearer realm="edgeway-admin", error="invalid_token", error_description="the API token has expired"`,
			Err: errors.New("admin API: the API token has expired; log in again (edgeway admin login) or create a new one (edgeway admin token create --ttl)")}
	case errors.Is(err, store.ErrNotFound):
		return t, &TokenError{Status: http.StatusUnauthorized, Challenge: `Bearer realm="edgeway-admin", error="invalid_token"`,
			Err: errors.New("admin API: unknown or revoked API token")}
	case err != nil:
		return t, &TokenError{Status: http.StatusServiceUnavailable, Err: err}
	}
	return t, nil
}

// TokenActor is who acts with API token t, as the audit log names them.
func TokenActor(t store.APIToken) string {
	return fmt.Sprintf("%s (token %s %q)", t.Owner, t.ID, t.Name)
}

// requireAdmin authenticates an admin API request by its bearer API token.
func (s *API) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			tok = ""
		}
		t, terr := s.Authenticate(r.Context(), tok)
		if terr != nil {
			if terr.Challenge != "" {
				w.Header().Set("WWW-Authenticate", terr.Challenge)
			}
			apiError(w, terr.Status, terr.Err)
			return
		}
		if err := httpx.BufferBody(w, r, maxAdminBody); err != nil {
			adminBodyError(w, err, maxAdminBody)
			return
		}
		ctx := context.WithValue(r.Context(), actorKey{}, TokenActor(t))
		ctx = context.WithValue(ctx, tokenKey{}, t)
		if r.Method != http.MethodGet {
			// A change here takes effect on this node's next REGISTER.
			defer s.purge()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// maxAdminBody bounds the body of an admin API request (a trust-store
// upload is the largest).
const maxAdminBody = 1 << 20

// adminBodyError answers a body BufferBody refused: 413 when it was over
// limit, 400 when it could not be read.
func adminBodyError(w http.ResponseWriter, err error, limit int64) {
	if httpx.TooLarge(err) {
		apiError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("the request body is larger than %d bytes", limit))
		return
	}
	apiError(w, http.StatusBadRequest, fmt.Errorf("the request body could not be read: %w", err))
}

// audit records an administrative change: who, what, when.
func (s *auditor) audit(r *http.Request, action, format string, args ...any) {
	err := s.records.Audit(r.Context(), store.AuditEntry{At: s.now(), Actor: actorOf(r.Context()), Action: action, Detail: fmt.Sprintf(format, args...)})
	if err != nil {
		s.log.Error("audit", "action", action, "err", err)
	}
}

// LoginError is why a password login was refused: the status the admin
// API answers with, the headers it sets (WWW-Authenticate, Retry-After)
// and the message.
type LoginError struct {
	Status  int
	Headers map[string]string
	Err     error
}

func (e *LoginError) Error() string { return e.Err.Error() }
func (e *LoginError) Unwrap() error { return e.Err }

// Login is a successful password login: the new login API token's
// plaintext (shown once) and its record.
type Login struct {
	Raw   string
	Token store.APIToken
}

// PasswordLogin checks an admin account's password and makes a login API
// token (Login true) that expires after ttl. It is the one password check
// of the admin API (POST /api/v1/auth/tokens) and the web UI's login form:
// throttled like any password login, refused through an edge, audited as
// auth.token-create by "<user> (password login)".
func (s *API) PasswordLogin(r *http.Request, user, pass, name string, ttl time.Duration) (Login, *LoginError) {
	basic := map[string]string{"WWW-Authenticate": `Basic realm="edgeway-admin"`}
	if user == "" {
		return Login{}, &LoginError{Status: http.StatusUnauthorized, Headers: basic, Err: errors.New("admin login needs HTTP Basic credentials of an admin account")}
	}
	if name == "" {
		name = "login " + s.now().UTC().Format(time.RFC3339)
	}
	p, _ := s.auth.PeerOf(r)
	if p.MRA {
		return Login{}, &LoginError{Status: http.StatusForbidden, Err: errors.New("the admin API is not reachable through an edge")}
	}
	a, err := s.auth.Logins().Begin(p.Source, "admin:"+user)
	if err != nil {
		if te := oauth.Throttled(err); te != nil {
			return Login{}, &LoginError{Status: http.StatusTooManyRequests, Headers: map[string]string{"Retry-After": fmt.Sprint(int(te.RetryAfter/time.Second) + 1)}, Err: te}
		}
		return Login{}, &LoginError{Status: http.StatusServiceUnavailable, Err: err}
	}
	defer a.Abandon()
	release, ok := s.auth.PasswordSlot()
	if !ok {
		return Login{}, &LoginError{Status: http.StatusServiceUnavailable, Headers: map[string]string{"Retry-After": "1"}, Err: errors.New("too many logins in progress; try again")}
	}
	defer release()
	acct, err := s.st.GetAdmin(r.Context(), user)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Login{}, &LoginError{Status: http.StatusServiceUnavailable, Err: err}
	}
	hash := acct.PasswordHash
	if hash == "" {
		hash = oauth.DummyHash()
	}
	if perr := passwd.Check(hash, pass); perr != nil || err != nil {
		a.Fail()
		return Login{}, &LoginError{Status: http.StatusUnauthorized, Headers: basic, Err: errors.New("invalid admin username or password")}
	}
	a.Succeed()
	raw, t, err := s.newAPIToken(r.Context(), name, user, "", true, s.now().Add(ttl))
	if err != nil {
		return Login{}, &LoginError{Status: http.StatusServiceUnavailable, Err: err}
	}
	ctx := context.WithValue(r.Context(), actorKey{}, user+" (password login)")
	s.audit(r.WithContext(ctx), "auth.token-create", "id=%s name=%q expires=%s", t.ID, t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	return Login{Raw: raw, Token: t}, nil
}

// handleLogin is POST /api/v1/auth/tokens with HTTP Basic credentials of an
// admin account: it returns a new API token. Failures are throttled like
// any password login.
func (s *API) handleLogin(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="edgeway-admin"`)
		apiError(w, http.StatusUnauthorized, errors.New("admin login needs HTTP Basic credentials of an admin account"))
		return
	}
	var body struct {
		Name string `json:"name"`
		TTL  string `json:"ttl"`
	}
	if err := httpx.BufferBody(w, r, 4<<10); err != nil {
		adminBodyError(w, err, 4<<10)
		return
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	ttl, err := parseTokenTTL(body.TTL, LoginTokenTTL, MaxLoginTokenTTL)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	l, lerr := s.PasswordLogin(r, user, pass, body.Name, ttl)
	if lerr != nil {
		for k, v := range lerr.Headers {
			w.Header().Set(k, v)
		}
		apiError(w, lerr.Status, lerr.Err)
		return
	}
	v := tokenView(l.Token)
	v.Token = l.Raw
	writeJSON(w, http.StatusCreated, v)
}

// APITokenView is an API token as the admin API shows it; Token is set
// only in the response that creates it.
type APITokenView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Owner     string     `json:"owner"`
	Parent    string     `json:"parent,omitempty"` // the token that created it
	Login     bool       `json:"login,omitempty"`  // issued by a password login
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// ExpiresAt is when the token stops working (absent: never).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Clamped: a shorter lifetime than asked for, because the token that
	// created it expires sooner.
	Clamped bool   `json:"clamped,omitempty"`
	Token   string `json:"token,omitempty"`
}

func tokenView(t store.APIToken) APITokenView {
	v := APITokenView{ID: t.ID, Name: t.Name, Owner: t.Owner, Parent: t.Parent, Login: t.Login, CreatedAt: t.CreatedAt}
	if !t.LastUsed.IsZero() {
		lu := t.LastUsed
		v.LastUsed = &lu
	}
	if !t.RevokedAt.IsZero() {
		ra := t.RevokedAt
		v.RevokedAt = &ra
	}
	if !t.ExpiresAt.IsZero() {
		ea := t.ExpiresAt
		v.ExpiresAt = &ea
	}
	return v
}

// parseTokenTTL reads a requested token lifetime ("" for def), at least a
// minute and at most max.
func parseTokenTTL(v string, def, max time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute || d > max {
		return 0, fmt.Errorf("ttl %q: want a duration from 1m to %v", v, max)
	}
	return d, nil
}

func (s *API) apiTokensCreate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
		TTL  string `json:"ttl"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || strings.TrimSpace(body.Name) == "" {
		apiError(w, 400, errors.New(`body must be {"name": "<what the token is for>", "ttl": "<optional lifetime, e.g. 720h>"}`))
		return
	}
	ttl, err := parseTokenTTL(body.TTL, ScriptTokenTTL, MaxScriptTokenTTL)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	parent, _ := tokenOf(r.Context())
	if parent.Parent != "" {
		// A token made through the API cannot make more: a leaked script
		// token must not mint credentials that outlive its revocation.
		apiError(w, http.StatusForbidden, errors.New("tokens are created with a token from a password login (edgeway admin login) or the bootstrap file, not with one created through the API"))
		return
	}
	// Never beyond the parent's own expiry.
	expires, clamped := s.now().Add(ttl), false
	if !parent.ExpiresAt.IsZero() && parent.ExpiresAt.Before(expires) {
		expires, clamped = parent.ExpiresAt, true
	}
	raw, t, err := s.newAPIToken(r.Context(), body.Name, parent.Owner, parent.ID, false, expires)
	if err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "auth.token-create", "id=%s name=%q expires=%s", t.ID, t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	v := tokenView(t)
	v.Token, v.Clamped = raw, clamped
	writeJSON(w, http.StatusCreated, v)
}

func (s *API) apiTokensList(w http.ResponseWriter, r *http.Request) {
	ts, err := s.st.ListAPITokens(r.Context())
	if err != nil {
		apiError(w, 500, err)
		return
	}
	out := make([]APITokenView, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenView(t))
	}
	writeJSON(w, 200, out)
}

// mayRevoke is the revocation scope of the token a request authenticated
// with (issue 9 item 13): a token made through the API revokes only its own
// lineage (itself and the tokens made from it); a login token revokes its
// own account's tokens; the bootstrap token, the operator's key to the node,
// revokes any. There are no account roles beyond that.
func mayRevoke(by store.APIToken, target string, all []store.APIToken) error {
	byID := make(map[string]store.APIToken, len(all))
	for _, t := range all {
		byID[t.ID] = t
	}
	tgt, ok := byID[target]
	if !ok {
		return fmt.Errorf("API token %q: %w", target, store.ErrNotFound)
	}
	switch {
	case by.Parent != "":
		for id, depth := target, 0; id != "" && depth <= 32; depth++ {
			if id == by.ID {
				return nil
			}
			id = byID[id].Parent
		}
		return fmt.Errorf("a token created through the API may revoke only itself and the tokens made from it, not token %s of %s", tgt.ID, tgt.Owner)
	case by.Login:
		if tgt.Owner == by.Owner {
			return nil
		}
		return fmt.Errorf("a login token of %s may revoke only %s's tokens, not token %s of %s (use the bootstrap token to revoke another account's)", by.Owner, by.Owner, tgt.ID, tgt.Owner)
	}
	return nil
}

func (s *API) apiTokensRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	by, _ := tokenOf(r.Context())
	all, err := s.st.ListAPITokens(r.Context())
	if err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	if err := mayRevoke(by, id, all); err != nil {
		status := http.StatusForbidden
		if errors.Is(err, store.ErrNotFound) {
			status = http.StatusNotFound
		}
		apiError(w, status, err)
		return
	}
	if err := s.st.RevokeAPIToken(r.Context(), id, s.now()); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	s.audit(r, "auth.token-revoke", "id=%s", id)
	w.WriteHeader(http.StatusNoContent)
}

// apiAccountSet is PUT /api/v1/accounts/{username} {"password": …}: create
// an admin account (with a login or bootstrap token), or change an existing account's
// password — only with a token from that account's own password login, so
// a leaked token cannot take accounts over; the change revokes the
// account's other tokens.
func (s *API) apiAccountSet(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("username")
	if !validAccountName(user) {
		apiError(w, 400, fmt.Errorf("account name %q: 1-64 letters, digits, '.', '-' or '_'", user))
		return
	}
	tok, _ := tokenOf(r.Context())
	_, err := s.st.GetAdmin(r.Context(), user)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		apiError(w, storeStatus(err), err)
		return
	}
	if !exists && tok.Parent != "" {
		apiError(w, http.StatusForbidden, errors.New("accounts are created with a token from a password login or the bootstrap file, not with one created through the API"))
		return
	}
	if exists && !(tok.Login && tok.Owner == user) {
		apiError(w, http.StatusForbidden, fmt.Errorf("the password of the existing account %q can be changed only with a token from its own password login (edgeway admin login --user %s)", user, user))
		return
	}
	var body struct {
		Password string `json:"password"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, 400, errors.New(`body must be {"password": "…"}`))
		return
	}
	if len(body.Password) < 12 {
		apiError(w, 400, errors.New("admin passwords need at least 12 characters"))
		return
	}
	h, err := passwd.Hash(body.Password)
	if err != nil {
		apiError(w, 500, err)
		return
	}
	if err := s.st.PutAdmin(r.Context(), store.Admin{Username: user, PasswordHash: h}); err != nil {
		apiError(w, storeStatus(err), err)
		return
	}
	if exists {
		if err := s.st.RevokeAPITokensOf(r.Context(), user, tok.ID, s.now()); err != nil {
			apiError(w, storeStatus(err), err)
			return
		}
		s.audit(r, "account.set", "username=%s: password changed, the account's other tokens revoked", user)
	} else {
		s.audit(r, "account.set", "username=%s: created", user)
	}
	w.WriteHeader(http.StatusNoContent)
}

// validAccountName bounds admin account names: they appear in tokens'
// owners, audit lines and URLs.
func validAccountName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// AuditView is one audit log entry.
type AuditView struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

func (s *API) apiAudit(w http.ResponseWriter, r *http.Request) {
	limit := 500
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			apiError(w, 400, fmt.Errorf("limit %q: want 1-10000", v))
			return
		}
		limit = n
	}
	entries, err := s.st.ListAudit(r.Context(), limit)
	if err != nil {
		apiError(w, 500, err)
		return
	}
	out := make([]AuditView, 0, len(entries))
	for _, e := range entries {
		out = append(out, AuditView{At: e.At, Actor: e.Actor, Action: e.Action, Detail: e.Detail})
	}
	writeJSON(w, 200, out)
}
