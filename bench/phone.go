package bench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/token"
)

// PhoneConfig says where a simulated phone connects and who it is.
type PhoneConfig struct {
	Device string // e.g. SEP0011223344AA
	Line   string // e.g. 1001
	Domain string // SIP domain of the line, e.g. edgeway.test

	EdgeHTTPS  string         // https://127.0.0.1:8443 (or the core's, on premises)
	EdgeSIP    string         // 127.0.0.1:5061 (or the core's 5090, on premises)
	ServerName string         // name to verify in the server certificate (default: host of EdgeHTTPS)
	RootCAs    *x509.CertPool // trust for the edge's certificate (the dev CA)
	// ConfigURL is the base URL config files are downloaded from (S-16):
	// the edge's public HTTPS in MRA mode, the core's config port (6971)
	// on premises. Default: EdgeHTTPS.
	ConfigURL string
	// MediaIP is the address of the phone's own media socket, used when
	// its token response names no TURN server (on premises). Default: the
	// local address the system routes EdgeSIP's host from.
	MediaIP netip.Addr
	// SourceIP, when set, is the local address of the phone's HTTPS and
	// SIP connections (a load generator spreads phones over 127.0.0.0/8
	// as real phones come from many addresses).
	SourceIP netip.Addr

	Expires int          // REGISTER expiry asked for, seconds (default 600)
	Log     *slog.Logger // default slog.Default()
}

// Tokens are what the OAuth server returned.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	Device       string `json:"device"`
	// TURN is the edge's relay and credentials for this device, expiring
	// no later than the access token (WebRTC's ICE-server shape).
	TURN     *TURNServer `json:"turn,omitempty"`
	Obtained time.Time   `json:"-"`
}

// TURNServer is the "turn" object of a token response.
type TURNServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
	TTL        int64    `json:"ttl"`
}

// Expiry is when the access token stops working.
func (t Tokens) Expiry() time.Time { return t.Obtained.Add(time.Duration(t.ExpiresIn) * time.Second) }

// TokenError is an RFC 6749 §5.2 error from the token endpoint.
type TokenError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
	RetryAfter  string `json:"-"` // the Retry-After header, if any
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("token endpoint: HTTP %d %s: %s", e.Status, e.Code, e.Description)
}

// Phone is one simulated SIP OAuth phone on its own TLS connection.
type Phone struct {
	cfg     PhoneConfig
	http    *http.Client
	ua      *sipgo.UserAgent
	client  *sipgo.Client
	contact string
	callID  string
	tag     string

	mu     sync.Mutex
	tokens Tokens
	cseq   uint32

	// calls
	srv        *sipgo.Server
	dialogsOut *sipgo.DialogClientCache
	dialogsIn  *sipgo.DialogServerCache
	incoming   chan *Call
	answerer   Answerer
	calls      map[string]*Call
}

// NewPhone prepares a phone; nothing is sent until Onboard or Register.
func NewPhone(cfg PhoneConfig) (*Phone, error) {
	if cfg.Device == "" || cfg.Line == "" || cfg.Domain == "" || cfg.EdgeSIP == "" || cfg.EdgeHTTPS == "" {
		return nil, errors.New("phone: device, line, domain, edge HTTPS URL and edge SIP address are required")
	}
	if cfg.Expires == 0 {
		cfg.Expires = 600
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ConfigURL == "" {
		cfg.ConfigURL = cfg.EdgeHTTPS
	}
	if cfg.ServerName == "" {
		u, err := url.Parse(cfg.EdgeHTTPS)
		if err != nil {
			return nil, fmt.Errorf("phone: edge URL: %w", err)
		}
		cfg.ServerName = u.Hostname()
	}
	tlsConf := &tls.Config{RootCAs: cfg.RootCAs, ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}
	p := &Phone{cfg: cfg, callID: randHex(12), tag: randHex(6), calls: map[string]*Call{}}
	tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: 2}
	var clientOpts []sipgo.ClientOption
	if cfg.SourceIP.IsValid() {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: cfg.SourceIP.AsSlice()}, Timeout: 10 * time.Second}
		tr.DialContext = d.DialContext
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(netip.AddrPortFrom(cfg.SourceIP, 0).String()))
	}
	p.http = &http.Client{Timeout: 15 * time.Second, Transport: tr}
	instance := randHex(16)
	p.contact = fmt.Sprintf("sip:%s@%s.invalid;transport=tls;ob", cfg.Line, instance)
	var err error
	p.ua, err = sipx.NewUA("Edgeway phone "+cfg.Device, cfg.Device+".invalid", 0, cfg.Log, tlsConf,
		sipgo.WithUserAgentDNSResolver(sipx.NoDNS()))
	if err != nil {
		return nil, fmt.Errorf("phone: %w", err)
	}
	// No client host name: Via carries the connection's real local address.
	if p.client, err = sipgo.NewClient(p.ua, clientOpts...); err != nil {
		p.ua.Close()
		return nil, fmt.Errorf("phone: %w", err)
	}
	if err := p.initCalls(); err != nil {
		p.client.Close()
		p.ua.Close()
		return nil, fmt.Errorf("phone: %w", err)
	}
	return p, nil
}

// Close drops the phone's connections.
// CloseIdleConnections closes the phone's idle HTTPS connections, as a
// phone does after onboarding.
func (p *Phone) CloseIdleConnections() { p.http.CloseIdleConnections() }

func (p *Phone) Close() {
	if p.srv != nil {
		p.srv.Close()
	}
	p.client.Close()
	p.ua.Close()
	p.http.CloseIdleConnections()
}

// Tokens returns the phone's current tokens.
func (p *Phone) Tokens() Tokens {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens
}

// SetTokens replaces the phone's tokens (tests; resuming a saved phone).
func (p *Phone) SetTokens(t Tokens) {
	p.mu.Lock()
	p.tokens = t
	p.mu.Unlock()
}

// Onboard redeems an activation code for tokens (S-17).
func (p *Phone) Onboard(ctx context.Context, code string) (Tokens, error) {
	// The phone names the service domain it discovered the edge through
	// (S-17: Activation Code MRA Service Domain).
	return p.tokenRequest(ctx, url.Values{"grant_type": {token.GrantTypeActivationCode}, "device": {p.cfg.Device},
		"activation_code": {code}, "service_domain": {p.cfg.Domain}})
}

// Login uses the password grant (on-premises soft clients only; S-18).
func (p *Phone) Login(ctx context.Context, username, password string) (Tokens, error) {
	return p.tokenRequest(ctx, url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}, "device": {p.cfg.Device}})
}

// Refresh exchanges the refresh token for new tokens (S-10).
func (p *Phone) Refresh(ctx context.Context) (Tokens, error) {
	rt := p.Tokens().RefreshToken
	if rt == "" {
		return Tokens{}, errors.New("phone: no refresh token")
	}
	return p.tokenRequest(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func (p *Phone) tokenRequest(ctx context.Context, form url.Values) (Tokens, error) {
	t, err := PostToken(ctx, p.http, p.cfg.EdgeHTTPS, form)
	if err != nil {
		return Tokens{}, err
	}
	p.SetTokens(t)
	return t, nil
}

// PostToken calls an OAuth token endpoint (base URL + /oauth2/token).
func PostToken(ctx context.Context, client *http.Client, base string, form url.Values) (Tokens, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return Tokens{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return Tokens{}, fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Tokens{}, fmt.Errorf("token endpoint: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		te := &TokenError{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
		if err := json.Unmarshal(body, te); err != nil || te.Code == "" {
			te.Code, te.Description = "http_error", strings.TrimSpace(string(body))
		}
		return Tokens{}, te
	}
	var t Tokens
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" {
		return Tokens{}, fmt.Errorf("token endpoint: bad success response: %s", body)
	}
	t.Obtained = time.Now()
	return t, nil
}

// FetchConfig downloads the phone's config file, GET
// <ConfigURL>/<device>.cnf.xml with its access token as the bearer
// credential (S-2, S-16), and returns the body and the HTTP status,
// whatever it is.
func (p *Phone) FetchConfig(ctx context.Context) ([]byte, int, error) {
	return p.FetchFile(ctx, "/"+url.PathEscape(p.cfg.Device)+".cnf.xml")
}

// FetchFile downloads a file from the config server, GET <ConfigURL><path>
// (for example /phone-edge-trust.pem, S-8) with the phone's access token,
// and returns the body (at most 1 MiB) and the HTTP status, whatever it is.
func (p *Phone) FetchFile(ctx context.Context, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.cfg.ConfigURL, "/")+path, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("phone %s: config download: %w", p.cfg.Device, err)
	}
	if at := p.Tokens().AccessToken; at != "" {
		req.Header.Set("Authorization", "Bearer "+at)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("phone %s: config download %s: %w", p.cfg.Device, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("phone %s: config download %s: %w", p.cfg.Device, path, err)
	}
	return body, resp.StatusCode, nil
}

// Register sends REGISTER with the current access token and returns the
// final response, whatever its status.
func (p *Phone) Register(ctx context.Context, expires int) (*sip.Response, error) {
	return p.RegisterWith(ctx, "Bearer "+p.Tokens().AccessToken, expires)
}

// RegisterWith sends REGISTER with the given Authorization value ("" for
// none) — for tests of refusals.
func (p *Phone) RegisterWith(ctx context.Context, authorization string, expires int) (*sip.Response, error) {
	p.mu.Lock()
	p.cseq++
	cseq := p.cseq
	p.mu.Unlock()
	aor := sip.Uri{Scheme: "sip", User: p.cfg.Line, Host: p.cfg.Domain}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: p.cfg.Domain})
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", p.tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	cid := sip.CallIDHeader(p.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<%s>", p.contact)))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.AppendHeader(sip.NewHeader("Supported", "path, outbound"))
	if authorization != "" {
		req.AppendHeader(sip.NewHeader("Authorization", authorization))
	}
	req.SetDestination(p.cfg.EdgeSIP)
	req.SetTransport("TLS")
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("phone %s: REGISTER: %w", p.cfg.Device, err)
	}
	return res, nil
}

// Unregister removes the phone's binding (Expires: 0).
func (p *Phone) Unregister(ctx context.Context) error {
	res, err := p.Register(ctx, 0)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("phone %s: un-REGISTER: %d %s", p.cfg.Device, res.StatusCode, res.Reason)
	}
	return nil
}

// Event is something Run reports.
type Event struct {
	At     time.Time
	Kind   string // "registered", "refreshed", "unregistered", "error"
	Detail string
}

// Run keeps the phone registered until ctx ends: it registers, refreshes
// the token at 80 % of its life and re-registers, re-registers before the
// binding expires, and un-registers when ctx is cancelled.
func (p *Phone) Run(ctx context.Context, events func(Event)) error {
	emit := func(kind, format string, args ...any) {
		if events != nil {
			events(Event{At: time.Now(), Kind: kind, Detail: fmt.Sprintf(format, args...)})
		}
	}
	register := func() error {
		res, err := p.Register(ctx, p.cfg.Expires)
		if err != nil {
			return err
		}
		if res.StatusCode != 200 {
			return fmt.Errorf("REGISTER refused: %d %s %s", res.StatusCode, res.Reason, headerValue(res, "WWW-Authenticate"))
		}
		emit("registered", "%d %s; Path %s", res.StatusCode, res.Reason, headerValue(res, "Path"))
		return nil
	}
	if err := register(); err != nil {
		emit("error", "%v", err)
		return err
	}
	for {
		t := p.Tokens()
		refreshIn := time.Until(t.Obtained.Add(time.Duration(float64(t.ExpiresIn)*0.8) * time.Second))
		reregIn := time.Duration(p.cfg.Expires) * time.Second * 8 / 10
		wait := min(refreshIn, reregIn)
		timer := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			timer.Stop()
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := p.Unregister(uctx)
			cancel()
			if err != nil {
				emit("error", "un-register: %v", err)
				return err
			}
			emit("unregistered", "binding removed")
			return nil
		case <-timer.C:
		}
		if refreshIn <= reregIn && t.RefreshToken != "" {
			if _, err := p.Refresh(ctx); err != nil {
				emit("error", "refresh: %v", err)
				return err
			}
			emit("refreshed", "new access token valid %ds", p.Tokens().ExpiresIn)
		}
		if err := register(); err != nil {
			emit("error", "%v", err)
			return err
		}
	}
}

func headerValue(res *sip.Response, name string) string {
	return strings.Join(sipx.HeaderValues(res, name), ", ")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
