package edge

// The OAuth proxy: /oauth2/token, /oauth2/revoke,
// /oauth2/device_authorization (RFC 8628) and the JWKS go to the
// core's HTTPS port over mutual TLS (httpHandler routes them here), and
// every token response on the way back gets TURN credentials.
//
// TURN credentials in the token response: the edge adds a "turn" member
// (WebRTC's ICE-server shape) to every token response it forwards, with a
// TURN REST API credential (internal/turncred) for the device that lives
// as long as the response's expires_in says the access token does (and
// never past the token's exp) and names its refresh-token family, so it
// dies with it (edge/revocations.go, edge/relay/revoke.go).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/internal/httpx"
	"github.com/edgeway/edgeway/internal/token"
	"github.com/edgeway/edgeway/internal/turncred"
)

// tokenProxies are the proxies to the core's OAuth endpoints: oauth for
// every request, activation for activation-code grants, whose refusals
// (invalid_grant) also spend the edge's failure budget (edge/budget.go).
// Both add TURN credentials to token responses (addTURNCredentials).
func (s *Server) tokenProxies(rewrite func(*httputil.ProxyRequest), fromCore func(func(*http.Response) error) func(*http.Response) error,
	unavailable func(http.ResponseWriter, *http.Request, error)) (oauth, activation *httputil.ReverseProxy) {
	oauth = &httputil.ReverseProxy{
		Transport: s.http.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(s.coreURL)
			pr.Out.Host = s.coreURL.Host
			// Phones are public clients: no credential a phone wrote
			// reaches the core's OAuth endpoints (an admin API token
			// there would be an administrator's, noCredentials).
			pr.Out.Header.Del("Authorization")
			rewrite(pr)
		},
		ModifyResponse: fromCore(s.addTURNCredentials),
		ErrorHandler:   unavailable,
	}
	activation = &httputil.ReverseProxy{
		Transport: oauth.Transport,
		Rewrite:   oauth.Rewrite,
		ModifyResponse: fromCore(func(res *http.Response) error {
			if err := spendOnFailure(s.activationBudget, res); err != nil {
				return err
			}
			return s.addTURNCredentials(res)
		}),
		ErrorHandler: unavailable,
	}
	return oauth, activation
}

// maxTokenResponse bounds the token response the edge rewrites; a larger
// one passes through untouched.
const maxTokenResponse = 64 << 10

// TURNOffer is the "turn" member the edge adds to a token response: the
// shape WebRTC uses for an ICE server.
type TURNOffer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
	TTL        int64    `json:"ttl"`
}

// turnURLs are the turn:/turns: URIs (RFC 7065) for turn.public_host.
func (s *Server) turnURLs() []string {
	host := s.cfg.TURN.PublicHost
	_, port, _ := net.SplitHostPort(s.cfg.TURN.Listen)
	_, tlsPort, _ := net.SplitHostPort(s.cfg.TURN.TLSListen)
	plain := net.JoinHostPort(host, port)
	return []string{
		"turn:" + plain + "?transport=udp",
		"turn:" + plain + "?transport=tcp",
		"turns:" + net.JoinHostPort(host, tlsPort) + "?transport=tcp",
	}
}

// addTURNCredentials is the token proxy's ModifyResponse: a 200 JSON
// response to POST /oauth2/token with "access_token", "expires_in" and
// "device" gains TURN credentials for the device that expire no later
// than the access token. Anything else passes through untouched.
func (s *Server) addTURNCredentials(res *http.Response) error {
	if s.turnSecret == nil || res.StatusCode != http.StatusOK || res.Request == nil ||
		res.Request.Method != http.MethodPost || !strings.HasSuffix(res.Request.URL.Path, "/oauth2/token") {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(res.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil
	}
	if ce := res.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxTokenResponse+1))
	if err != nil {
		return fmt.Errorf("edge: reading the token response: %w", err)
	}
	if len(body) > maxTokenResponse {
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), res.Body), res.Body}
		return nil
	}
	_ = res.Body.Close()
	out, ok := s.withTURN(body, time.Now())
	if !ok {
		out = body
	}
	res.Body = io.NopCloser(bytes.NewReader(out))
	res.ContentLength = int64(len(out))
	res.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// withTURN returns the token response body with the "turn" member added,
// or false when body is not a token response. The credential lives for
// the response's expires_in (RFC 6749 §5.1: the access token's lifetime)
// and never past the token's exp; it names the token's refresh family.
// The token's claims are read, unverified, by the JWT library: it comes
// from the core over mutual TLS, and a forged one would only give its
// bearer a credential for the device it names, which the core already
// gave it.
func (s *Server) withTURN(body []byte, now time.Time) ([]byte, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil, false
	}
	var access, device string
	var expiresIn json.Number
	if json.Unmarshal(m["access_token"], &access) != nil || json.Unmarshal(m["device"], &device) != nil ||
		json.Unmarshal(m["expires_in"], &expiresIn) != nil {
		return nil, false
	}
	secs, err := expiresIn.Int64()
	if err != nil || secs <= 0 || access == "" || device == "" || len(device) > 256 {
		return nil, false
	}
	expires := now.Add(time.Duration(secs) * time.Second)
	claims := accessClaims(access)
	if claims.ExpiresAt != nil && claims.ExpiresAt.Before(expires) {
		expires = claims.ExpiresAt.Time
	}
	ttl := int64(expires.Sub(now) / time.Second)
	if ttl <= 0 {
		return nil, false
	}
	// The credential names the token's refresh family, so it dies with it
	// (edge/relay/revoke.go).
	user, cred := turncred.IssueName(s.turnSecret, turncred.Name{Device: device, Family: turncred.FamilyTag(claims.Family)},
		now.Add(time.Duration(ttl)*time.Second))
	offer, err := json.Marshal(TURNOffer{URLs: s.turnURLs(), Username: user, Credential: cred, TTL: ttl})
	if err != nil {
		return nil, false
	}
	m["turn"] = offer
	out, err := json.Marshal(m)
	if err != nil {
		return nil, false
	}
	return out, true
}

// accessClaims are the claims of the access token in a token response,
// unverified (see withTURN); zero when it is not a JWT.
func accessClaims(access string) *token.Claims {
	var c token.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(access, &c); err != nil {
		return &token.Claims{}
	}
	return &c
}

// noCredentials refuses a revocation that carries credentials (RFC 7009
// §2.1 client authentication, RFC 6749 §5.2 invalid_client): the only
// credential the core's /oauth2/revoke takes is an administrator's admin
// API token, and the admin API is not reachable through the edge. A phone
// revokes its own token with the token alone.
func noCredentials(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Authorization"]; ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgeway"`)
			httpx.WriteOAuthError(w, http.StatusUnauthorized, "invalid_client",
				"RFC 7009 §2.1: the edge takes no credentials on /oauth2/revoke; an administrator revokes tokens on the core, not through the edge", 0)
			return
		}
		next.ServeHTTP(w, r)
	})
}
