package registrar

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/core/admission"
	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// Each check of the REGISTER admission chain, one at a time, on requests
// built in memory: no sockets, no store.

type fakeTokens map[string]*token.Claims

func (f fakeTokens) CheckAccessToken(_ context.Context, raw string) (*token.Claims, error) {
	if c, ok := f[raw]; ok {
		return c, nil
	}
	if raw == "store-down" {
		return nil, errors.New("store down")
	}
	return nil, &oauth.TokenError{Reason: "token signature, issuer or audience is not valid"}
}

type fakeEdges map[string]string

func (f fakeEdges) EdgeOf(_ context.Context, source string) (string, error) {
	if source == "192.0.2.99:5061" {
		return "", errors.New("S-12: reading Expressway-C entries: store down")
	}
	if name, ok := f[source]; ok {
		return name, nil
	}
	return "", admission.ErrNotAdmitted
}

type fakeLookups struct {
	devices  map[string]store.Device
	profiles map[string]store.SecurityProfile
	params   map[string]string
}

func (f *fakeLookups) GetDevice(_ context.Context, name string) (store.Device, error) {
	if d, ok := f.devices[name]; ok {
		return d, nil
	}
	return store.Device{}, fmt.Errorf("device %s: %w", name, store.ErrNotFound)
}

func (f *fakeLookups) GetSecurityProfile(_ context.Context, name string) (store.SecurityProfile, error) {
	if p, ok := f.profiles[name]; ok {
		return p, nil
	}
	return store.SecurityProfile{}, fmt.Errorf("profile %s: %w", name, store.ErrNotFound)
}

func (f *fakeLookups) GetParam(_ context.Context, name string) (string, bool, error) {
	v, ok := f.params[name]
	return v, ok, nil
}

const (
	testDomain = "edgeway.test"
	phoneDev   = "SEP001122334401"
	edgeSource = "192.0.2.10:5061"
)

func claims(device, origin string) *token.Claims {
	return &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: device, ID: "jti-" + device,
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Origin: origin}
}

func testRegistrar(mode bool) (*Registrar, *fakeLookups) {
	look := &fakeLookups{
		devices: map[string]store.Device{
			phoneDev:           {Name: phoneDev, Model: "8845", Line: "1001", SecurityProfile: "oauth"},
			"SEP0000000007940": {Name: "SEP0000000007940", Model: "7940", Line: "1940", SecurityProfile: "oauth"},
			"SEP000000000DIGE": {Name: "SEP000000000DIGE", Model: "8845", Line: "1003", SecurityProfile: "digest"},
		},
		profiles: map[string]store.SecurityProfile{
			"oauth":  {Name: "oauth", Mode: "encrypted", Transport: "TLS", OAuth: true},
			"digest": {Name: "digest", Mode: "authenticated", Transport: "TLS", Digest: true},
		},
		params: map[string]string{},
	}
	tokens := fakeTokens{
		"good":       claims(phoneDev, token.GrantActivationCode),
		"refreshed":  claims(phoneDev, token.GrantPassword),
		"gone":       claims("SEP00000000GONE", token.GrantActivationCode),
		"old-model":  claims("SEP0000000007940", token.GrantActivationCode),
		"digest-dev": claims("SEP000000000DIGE", token.GrantActivationCode),
	}
	g := New(Config{Node: "cucm1", SIPDomain: testDomain, MaxRegisterExpires: 3600},
		Deps{Mode: func() bool { return mode }, Edges: fakeEdges{edgeSource: "expc.example.com"}, Tokens: tokens, Lookups: look, Now: time.Now})
	return g, look
}

// register builds a REGISTER for line@domain from source, with an
// Authorization header value auth ("" for none).
func register(line, domain, source, auth string) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: domain})
	to := &sip.ToHeader{Address: sip.Uri{User: line, Host: domain}}
	req.AppendHeader(to)
	if auth != "" {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	req.SetSource(source)
	return req
}

// wantRefusal checks err is a SIP refusal with status (and Bearer error
// code, for a 401) that wraps want when want is set.
func wantRefusal(t *testing.T, err error, status int, bearer string, want error) {
	t.Helper()
	var re *Refusal
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a %d refusal", err, status)
	}
	if re.Status != status || re.Bearer != bearer {
		t.Fatalf("refusal %d bearer %q (%v), want %d bearer %q", re.Status, re.Bearer, re.Err, status, bearer)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("refusal %v, want it to wrap %v", err, want)
	}
}

// state is the chain's state as the checks before the one under test
// leave it.
func state(t *testing.T, g *Registrar, mra bool, req *sip.Request, upTo string) *regState {
	t.Helper()
	st := &regState{mra: mra, req: req}
	for _, c := range registerChain {
		if c.name == upTo {
			return st
		}
		if err := c.run(g, context.Background(), st); err != nil {
			t.Fatalf("check %q before the one under test refused: %v", c.name, err)
		}
	}
	t.Fatalf("no check %q in the chain", upTo)
	return nil
}

func TestRegisterChainOrder(t *testing.T) {
	var names []string
	for _, c := range registerChain {
		names = append(names, c.name)
	}
	want := []string{"S-13/S-14 SIP OAuth mode", "S-12 Expressway-C behind the MRA connection", "RFC 8898/S-16/R-2 Bearer token",
		"token's device", "S-5/S-15 device may use OAuth", "RFC 8705 certificate-bound token", "S-9 explicit tokens", "served domain", "device owns the line"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("chain %q, want %q", names, want)
	}
	// The first refusal answers: SIP OAuth mode off wins over a missing token.
	g, _ := testRegistrar(false)
	err := g.admit(context.Background(), &regState{req: register("1001", testDomain, "198.51.100.7:40000", "")})
	wantRefusal(t, err, 403, "", policy.ErrModeDisabled)
	g, _ = testRegistrar(true)
	if err := g.admit(context.Background(), &regState{req: register("1001", testDomain, "198.51.100.7:40000", "Bearer good")}); err != nil {
		t.Fatalf("a REGISTER every check admits was refused: %v", err)
	}
}

// S-13/S-14: with SIP OAuth mode off on this node, every REGISTER is 403.
func TestCheckMode(t *testing.T) {
	req := register("1001", testDomain, "198.51.100.7:40000", "Bearer good")
	off, _ := testRegistrar(false)
	wantRefusal(t, off.checkMode(context.Background(), &regState{req: req}), 403, "", policy.ErrModeDisabled)
	on, _ := testRegistrar(true)
	if err := on.checkMode(context.Background(), &regState{req: req}); err != nil {
		t.Fatalf("mode on: %v", err)
	}
}

// S-12: on the MRA port the connection must still be an admitted
// Expressway-C; on the Phone OAuth port there is no edge to check.
func TestCheckEdge(t *testing.T) {
	g, _ := testRegistrar(true)
	ctx := context.Background()
	st := &regState{mra: true, req: register("1001", testDomain, edgeSource, "Bearer good")}
	if err := g.checkEdge(ctx, st); err != nil || st.edge != "expc.example.com" {
		t.Fatalf("admitted edge: edge %q, %v", st.edge, err)
	}
	wantRefusal(t, g.checkEdge(ctx, &regState{mra: true, req: register("1001", testDomain, "192.0.2.66:5061", "Bearer good")}), 403, "", admission.ErrNotAdmitted)
	if err := g.checkEdge(ctx, &regState{mra: true, req: register("1001", testDomain, "192.0.2.99:5061", "Bearer good")}); err == nil || errors.As(err, new(*Refusal)) {
		t.Fatalf("store down: %v, want an error that is not a refusal (503)", err)
	}
	if err := g.checkEdge(ctx, &regState{mra: false, req: register("1001", testDomain, "192.0.2.66:5061", "Bearer good")}); err != nil {
		t.Fatalf("Phone OAuth port: %v", err)
	}
}

// RFC 8898: a Bearer token is required (401 without an error code when
// there is none), Digest is refused (S-16), another scheme is 400, and an
// invalid or revoked token is 401 invalid_token (S-2, R-2).
func TestCheckToken(t *testing.T) {
	g, _ := testRegistrar(true)
	ctx := context.Background()
	check := func(auth string) error {
		return g.checkToken(ctx, &regState{req: register("1001", testDomain, "198.51.100.7:40000", auth)})
	}
	wantRefusal(t, check(""), 401, "", nil)
	wantRefusal(t, check(`Digest username="1001", realm="edgeway.test"`), 403, "", policy.ErrDigestInOAuth)
	wantRefusal(t, check("Basic MTAwMTpwdw=="), 400, "", nil)
	wantRefusal(t, check("Bearer forged"), 401, "invalid_token", nil)
	if err := check("Bearer store-down"); err == nil || errors.As(err, new(*Refusal)) {
		t.Fatalf("store down: %v, want an error that is not a refusal (503)", err)
	}
	st := &regState{req: register("1001", testDomain, "198.51.100.7:40000", "Bearer good")}
	if err := g.checkToken(ctx, st); err != nil || st.claims.Device() != phoneDev {
		t.Fatalf("good token: %v, claims %+v", err, st.claims)
	}
}

// The token's device must exist (deleted since the token was issued: 401).
func TestCheckDevice(t *testing.T) {
	g, _ := testRegistrar(true)
	st := state(t, g, false, register("1001", testDomain, "198.51.100.7:40000", "Bearer gone"), "token's device")
	wantRefusal(t, g.checkDevice(context.Background(), st), 401, "invalid_token", nil)
	st = state(t, g, false, register("1001", testDomain, "198.51.100.7:40000", "Bearer good"), "token's device")
	if err := g.checkDevice(context.Background(), st); err != nil || st.dev.Name != phoneDev {
		t.Fatalf("known device: %v, device %q", err, st.dev.Name)
	}
}

// S-5: the model must be one that may use OAuth; S-15: its profile must
// be Encrypted over TLS with OAuth enabled.
func TestCheckDeviceMayUseOAuth(t *testing.T) {
	g, _ := testRegistrar(true)
	ctx := context.Background()
	for _, tt := range []struct {
		tok  string
		want error
	}{
		{"old-model", policy.ErrModelNotOAuth},
		{"digest-dev", policy.ErrProfileNotOAuth},
		{"good", nil},
	} {
		st := state(t, g, false, register("1001", testDomain, "198.51.100.7:40000", "Bearer "+tt.tok), "S-5/S-15 device may use OAuth")
		err := g.checkDeviceOAuth(ctx, st)
		if tt.want == nil {
			if err != nil {
				t.Fatalf("%s: %v", tt.tok, err)
			}
			continue
		}
		wantRefusal(t, err, 403, "", tt.want)
	}
}

// S-9: with OAuth Access Token for Devices explicit, only tokens whose
// grant began with an activation code may register; implicit takes any.
func TestCheckExplicit(t *testing.T) {
	g, look := testRegistrar(true)
	ctx := context.Background()
	st := state(t, g, false, register("1001", testDomain, "198.51.100.7:40000", "Bearer refreshed"), "S-9 explicit tokens")
	if err := g.checkExplicit(ctx, st); err != nil {
		t.Fatalf("implicit (default), password grant: %v", err)
	}
	look.params[policy.ParamAccessTokenForDevices] = "explicit"
	wantRefusal(t, g.checkExplicit(ctx, st), 403, "", policy.ErrExplicitOnly)
	st = state(t, g, false, register("1001", testDomain, "198.51.100.7:40000", "Bearer good"), "S-9 explicit tokens")
	if err := g.checkExplicit(ctx, st); err != nil {
		t.Fatalf("explicit, activation-code grant: %v", err)
	}
}

// The AOR must be in this cluster's SIP domain (any case).
func TestCheckDomain(t *testing.T) {
	g, _ := testRegistrar(true)
	ctx := context.Background()
	wantRefusal(t, g.checkDomain(ctx, &regState{req: register("1001", "elsewhere.example", "198.51.100.7:40000", "Bearer good")}), 403, "", nil)
	if err := g.checkDomain(ctx, &regState{req: register("1001", "EdgeWay.Test", "198.51.100.7:40000", "Bearer good")}); err != nil {
		t.Fatalf("own domain: %v", err)
	}
}

// The token's device must own the AOR's line: a token of one phone does
// not register another's line (401 invalid_token).
func TestCheckLine(t *testing.T) {
	g, _ := testRegistrar(true)
	ctx := context.Background()
	st := state(t, g, false, register("1002", testDomain, "198.51.100.7:40000", "Bearer good"), "device owns the line")
	wantRefusal(t, g.checkLine(ctx, st), 401, "invalid_token", nil)
	st = state(t, g, false, register("1001", testDomain, "198.51.100.7:40000", "Bearer good"), "device owns the line")
	if err := g.checkLine(ctx, st); err != nil {
		t.Fatalf("own line: %v", err)
	}
}
