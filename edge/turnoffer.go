package edge

// TURN credentials in the token response: the edge adds a "turn" member
// (WebRTC's ICE-server shape) to every token response it forwards, with a
// TURN REST API credential (internal/turncred) for the device that
// expires no later than the access token and names its refresh-token
// family, so it dies with it (turnrevoke.go).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/internal/turncred"
)

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
// or false when body is not a token response.
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
	if exp, ok := jwtExpiry(access); ok && exp.Before(expires) {
		expires = exp
	}
	ttl := int64(expires.Sub(now) / time.Second)
	if ttl <= 0 {
		return nil, false
	}
	// The credential names the token's refresh family, so it dies with it
	// (edge/turnrevoke.go).
	user, cred := turncred.IssueName(s.turnSecret, turncred.Name{Device: device, Family: turncred.FamilyTag(jwtFamily(access))},
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

// jwtClaims reads the claims the edge needs of a JWT without verifying
// it (the token comes from the core over mutual TLS; this only keeps TURN
// credentials from outliving it or its refresh family).
func jwtClaims(tok string) (c struct {
	Exp    json.Number `json:"exp"`
	Family string      `json:"fam"`
}, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, false
	}
	return c, json.Unmarshal(payload, &c) == nil
}

// jwtFamily is the token's refresh family id (claim "fam"), or "".
func jwtFamily(tok string) string {
	c, _ := jwtClaims(tok)
	return c.Family
}

// jwtExpiry reads the exp claim of a JWT without verifying it.
func jwtExpiry(tok string) (time.Time, bool) {
	c, ok := jwtClaims(tok)
	if !ok || c.Exp == "" {
		return time.Time{}, false
	}
	f, err := c.Exp.Float64()
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
