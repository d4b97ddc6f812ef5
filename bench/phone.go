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

	EdgeHTTPS string // https://127.0.0.1:8443 (or the core's, on premises)
	EdgeSIP   string // 127.0.0.1:5061 (or the core's 5090, on premises)
	// Edges are the edges the phone may use, in order, as a phone finds
	// several Expressway-E peers in _collab-edge._tls SRV records
	// (LookupEdges). The phone starts on Edges[FirstEdge mod len] and, when
	// its flow there fails, registers through the next one, cycling (RFC
	// 5626 §4.5; see Run). Empty: the one edge EdgeHTTPS and EdgeSIP name.
	Edges []Edge
	// FirstEdge is the index in Edges of the edge to start on (a load
	// generator spreads its phones: phone i starts on edge i mod n).
	FirstEdge int
	// Resolver resolves edge host names, for HTTPS and SIP (LookupEdges'
	// resolver). Nil: HTTPS uses the system's, and SIP addresses must be
	// IP addresses (the phone never sends a DNS query for a SIP name).
	Resolver *net.Resolver
	// ServerName is the name to verify in the server certificate. Default:
	// the host of the edges' HTTPS URLs when they all share one; otherwise
	// each connection verifies the host it was made to.
	ServerName string
	RootCAs    *x509.CertPool // trust for the edge's certificate (the dev CA)
	// ClientCert, when set, is the phone's device certificate (a Cisco
	// phone's MIC or LSC), presented on its HTTPS and SIP/TLS connections
	// when the server asks: the edge binds the phone's tokens to it (RFC
	// 8705). Nil: the phone presents none and gets bearer tokens.
	ClientCert *tls.Certificate
	// ConfigURL is the base URL config files are downloaded from (S-16):
	// the edge's public HTTPS in MRA mode, the core's config port (6971)
	// on premises. Default: the current edge's HTTPS URL.
	ConfigURL string
	// MediaIP is the address of the phone's own media socket, used when
	// its token response names no TURN server (on premises). Default: the
	// local address the system routes EdgeSIP's host from.
	MediaIP netip.Addr
	// SourceIP, when set, is the local address of the phone's HTTPS and
	// SIP connections (a load generator spreads phones over 127.0.0.0/8
	// as real phones come from many addresses).
	SourceIP netip.Addr

	// OnTokens, when set, is called with every token response the phone
	// accepts (onboarding, login, each refresh) before it is used. A
	// refresh token rotates on every refresh and a replayed one revokes
	// its family (RFC 9700 §4.14.2), so a phone that keeps its tokens
	// must save each set here; an error fails the token request.
	OnTokens func(Tokens) error

	Expires int          // REGISTER expiry asked for, seconds (default 600)
	Log     *slog.Logger // default slog.Default()

	// KeepAlive is how often Run sends a CRLF ping (RFC 5626 §4.4.1) on
	// the flow it registered, each time at a random 80-100 % of it; a
	// Flow-Timer in the registrar's 2xx shortens it. Default 30s;
	// negative: no pings (the flow is then found dead only when a
	// REGISTER fails).
	KeepAlive time.Duration
	// PongTimeout is how long a ping waits for its CRLF pong before the
	// flow counts as failed (default 10s, RFC 5626 §4.4.1).
	PongTimeout time.Duration
	// RecoveryBase and RecoveryMax are the back-off of flow recovery once
	// every edge has failed in a row: wait min(max, base·2^failures),
	// randomised to 50-100 % (RFC 5626 §4.5; defaults 30s and 30m).
	RecoveryBase, RecoveryMax time.Duration
}

// Edge is one edge a phone may use: its public HTTPS base URL and its
// SIP/TLS address.
type Edge struct {
	HTTPS string // https://edge-1.example.com:8443
	SIP   string // edge-1.example.com:5061
}

// Tokens are what the OAuth server returned.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	// RefreshExpiresIn is the refresh token's lifetime left (R-3: kept
	// before half of it has passed, renewed after).
	RefreshExpiresIn int    `json:"refresh_token_expires_in,omitempty"`
	Device           string `json:"device"`
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
	// instance is the phone's +sip.instance (RFC 5626 §4.1), the same on
	// every flow it registers, with reg-id 1.
	instance string
	callID   string
	tag      string
	edges    []Edge
	// pongs carries the remote address of every read that held only CRLF
	// (a pong, or the edge's own ping: either shows the flow alive).
	pongs  chan string
	pingMu sync.Mutex

	mu     sync.Mutex
	tokens Tokens
	cseq   uint32
	cur    int    // index in edges of the edge the phone uses
	flow   string // remote "ip:port" of the connection its last REGISTER went on
	// flowTimer is the registrar's Flow-Timer (RFC 5626 §4.4.1), 0 if none.
	flowTimer  time.Duration
	recoveries int
	tokenEdge  int // index in edges of the edge the tokens came through

	// calls
	srv        *sipgo.Server
	dialogsOut *sipgo.DialogClientCache
	dialogsIn  *sipgo.DialogServerCache
	incoming   chan *Call
	answerer   Answerer
	refusalHdr []sip.Header // added to the refusals an Answerer asks for
	calls      map[string]*Call
}

// NewPhone prepares a phone; nothing is sent until Onboard or Register.
func NewPhone(cfg PhoneConfig) (*Phone, error) {
	edges := cfg.Edges
	if len(edges) == 0 {
		edges = []Edge{{HTTPS: cfg.EdgeHTTPS, SIP: cfg.EdgeSIP}}
	}
	if cfg.Device == "" || cfg.Line == "" || cfg.Domain == "" {
		return nil, errors.New("phone: device, line and domain are required")
	}
	hosts := map[string]bool{}
	for i, e := range edges {
		if e.SIP == "" || e.HTTPS == "" {
			return nil, fmt.Errorf("phone: edge %d: an HTTPS URL and a SIP address are required", i+1)
		}
		u, err := url.Parse(e.HTTPS)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("phone: edge %d: HTTPS URL %q: want https://host:port", i+1, e.HTTPS)
		}
		hosts[u.Hostname()] = true
	}
	if cfg.Expires == 0 {
		cfg.Expires = 600
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = 10 * time.Second
	}
	if cfg.RecoveryBase <= 0 {
		cfg.RecoveryBase = 30 * time.Second
	}
	if cfg.RecoveryMax <= 0 {
		cfg.RecoveryMax = 30 * time.Minute
	}
	if cfg.ServerName == "" && len(hosts) == 1 {
		for h := range hosts {
			cfg.ServerName = h
		}
	}
	first := ((cfg.FirstEdge % len(edges)) + len(edges)) % len(edges)
	cfg.EdgeHTTPS, cfg.EdgeSIP = edges[first].HTTPS, edges[first].SIP
	tlsConf := &tls.Config{RootCAs: cfg.RootCAs, ServerName: cfg.ServerName, MinVersion: tls.VersionTLS12}
	if cfg.ClientCert != nil {
		tlsConf.Certificates = []tls.Certificate{*cfg.ClientCert}
	}
	p := &Phone{cfg: cfg, callID: randHex(12), tag: randHex(6), calls: map[string]*Call{},
		edges: edges, cur: first, tokenEdge: first, pongs: make(chan string, 4), instance: uuidURN()}
	tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: 2}
	d := &net.Dialer{Timeout: 10 * time.Second, Resolver: cfg.Resolver}
	var clientOpts []sipgo.ClientOption
	if cfg.SourceIP.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: cfg.SourceIP.AsSlice()}
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(netip.AddrPortFrom(cfg.SourceIP, 0).String()))
	}
	if cfg.SourceIP.IsValid() || cfg.Resolver != nil {
		tr.DialContext = d.DialContext
	}
	p.http = &http.Client{Timeout: 15 * time.Second, Transport: tr}
	p.contact = fmt.Sprintf("sip:%s@%s.invalid;transport=tls;ob", cfg.Line, randHex(16))
	resolver := cfg.Resolver
	if resolver == nil {
		resolver = sipx.NoDNS()
	}
	var err error
	p.ua, err = sipx.NewFilteredUA("Edgeway phone "+cfg.Device, cfg.Device+".invalid", 0, cfg.Log, tlsConf, p.readFilter,
		sipgo.WithUserAgentDNSResolver(resolver))
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

// tokenRequest posts to the current edge's token endpoint. When the edge
// cannot even be connected to, nothing was sent — no code redeemed, no
// refresh token used — so the next edge is tried, each once.
func (p *Phone) tokenRequest(ctx context.Context, form url.Values) (Tokens, error) {
	var i int
	var t Tokens
	var err error
	for range p.edges {
		var e Edge
		i, e = p.edgeIndex()
		t, err = PostToken(ctx, p.http, e.HTTPS, form)
		if !dialFailed(err) || ctx.Err() != nil {
			break
		}
		p.moveOn(i)
	}
	if err != nil {
		return Tokens{}, err
	}
	if p.cfg.OnTokens != nil {
		if err := p.cfg.OnTokens(t); err != nil {
			return Tokens{}, fmt.Errorf("phone: keeping the new tokens: %w", err)
		}
	}
	p.SetTokens(t)
	p.mu.Lock()
	p.tokenEdge = i // its TURN server is that edge's (turnServers)
	p.mu.Unlock()
	return t, nil
}

// dialFailed reports whether err is a failure to connect (the request
// never left).
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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
	base := p.cfg.ConfigURL
	if base == "" {
		base = p.Edge().HTTPS
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path, nil)
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
	// The same instance and reg-id on every flow: a REGISTER through
	// another edge replaces the binding (RFC 5626 §4.2, §4.5).
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf(`<%s>;+sip.instance="<%s>";reg-id=1`, p.contact, p.instance)))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.AppendHeader(sip.NewHeader("Supported", "path, outbound"))
	if authorization != "" {
		req.AppendHeader(sip.NewHeader("Authorization", authorization))
	}
	i, e := p.edgeIndex()
	req.SetDestination(e.SIP)
	req.SetTransport("TLS")
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		// The flow failed (no connection, closed, or the transaction
		// timed out): the next REGISTER goes through the next edge.
		p.moveOn(i)
		return nil, fmt.Errorf("phone %s: REGISTER via %s: %w: %w", p.cfg.Device, e.SIP, ErrFlowFailed, err)
	}
	p.registeredOn(i, res)
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

func headerValue(res *sip.Response, name string) string {
	return strings.Join(sipx.HeaderValues(res, name), ", ")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
