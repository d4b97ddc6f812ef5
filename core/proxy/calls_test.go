package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/core/registrar"
	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/internal/token"
)

// Call set-up, on requests built in memory: no sockets.

type fakeTokens map[string]*token.Claims

func (f fakeTokens) CheckAccessToken(_ context.Context, raw string) (*token.Claims, error) {
	if c, ok := f[raw]; ok {
		return c, nil
	}
	return nil, &oauth.TokenError{Reason: "token signature, issuer or audience is not valid"}
}

type fakeStore struct{ devices []store.Device }

func (f *fakeStore) GetDevice(_ context.Context, name string) (store.Device, error) {
	for _, d := range f.devices {
		if d.Name == name {
			return d, nil
		}
	}
	return store.Device{}, store.ErrNotFound
}

func (f *fakeStore) DeviceByLine(_ context.Context, line string) (store.Device, error) {
	for _, d := range f.devices {
		if d.Line == line {
			return d, nil
		}
	}
	return store.Device{}, store.ErrNotFound
}

func (f *fakeStore) GetSecurityProfile(_ context.Context, name string) (store.SecurityProfile, error) {
	if name == "oauth" {
		return store.SecurityProfile{Name: name, Mode: "encrypted", Transport: "TLS", OAuth: true}, nil
	}
	return store.SecurityProfile{}, store.ErrNotFound
}

// memBindings is the location service's store, in memory.
type memBindings struct {
	mu sync.Mutex
	m  map[string]store.Registration
}

func (b *memBindings) ApplyRegistrations(_ context.Context, puts []store.Registration, dels []store.RegistrationKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range dels {
		delete(b.m, d.AOR+"|"+d.Contact)
	}
	for _, p := range puts {
		b.m[p.AOR+"|"+p.Contact] = p
	}
	return nil
}

func (b *memBindings) Registrations(_ context.Context, aor string, now time.Time) ([]store.Registration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []store.Registration
	for _, r := range b.m {
		if (aor == "" || r.AOR == aor) && r.ExpiresAt.After(now) {
			out = append(out, r)
		}
	}
	return out, nil
}

func testProxy(t *testing.T, mode bool) (*Proxy, *registrar.Location) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	loc, err := registrar.NewLocation(context.Background(), &memBindings{m: map[string]store.Registration{}}, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loc.Close)
	st := &fakeStore{devices: []store.Device{
		{Name: "SEP001122334401", Model: "8845", Line: "1001", SecurityProfile: "oauth"},
		{Name: "SEP001122334402", Model: "8865", Line: "1002", SecurityProfile: "oauth"},
		{Name: "SEP001122334403", Model: "8865", Line: "1003", SecurityProfile: "oauth"},
		{Name: "SEP000000007940", Model: "7940", Line: "1940", SecurityProfile: "oauth"},
	}}
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	tokens := fakeTokens{
		"alice":     {RegisteredClaims: jwt.RegisteredClaims{Subject: "SEP001122334401", ExpiresAt: exp}},
		"old-model": {RegisteredClaims: jwt.RegisteredClaims{Subject: "SEP000000007940", ExpiresAt: exp}},
	}
	x := New(Config{SIPDomain: "edgeway.test", AdvertisedHost: "cucm1.edgeway.test"},
		Deps{Mode: func() bool { return mode }, Tokens: tokens, Store: st, Location: loc, Now: time.Now}, nil, nil)
	return x, loc
}

func invite(fromLine, toLine, auth string) *sip.Request {
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: toLine, Host: "edgeway.test"})
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{User: fromLine, Host: "edgeway.test"}})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: toLine, Host: "edgeway.test"}})
	if auth != "" {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	req.SetSource("198.51.100.7:40000")
	return req
}

func wantRefusal(t *testing.T, err error, status int, want error) {
	t.Helper()
	var re *registrar.Refusal
	if !errors.As(err, &re) || re.Status != status {
		t.Fatalf("err = %v, want a %d refusal", err, status)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("refusal %v, want it to wrap %v", err, want)
	}
}

// A new INVITE is refused with SIP OAuth mode off (S-13), without a valid
// Bearer token (RFC 8898, S-2), from a device that may not use OAuth
// (S-5), from a line not the caller's own, to a line that does not exist
// (404) or is not registered (480); else it goes to the callee's newest
// binding.
func TestAdmitCall(t *testing.T) {
	ctx := context.Background()
	off, _ := testProxy(t, false)
	_, err := off.admitCall(ctx, invite("1001", "1002", "Bearer alice"), false)
	wantRefusal(t, err, 403, policy.ErrModeDisabled)

	x, loc := testProxy(t, true)
	_, err = x.admitCall(ctx, invite("1001", "1002", ""), false)
	wantRefusal(t, err, 401, nil)
	_, err = x.admitCall(ctx, invite("1001", "1002", "Bearer forged"), false)
	wantRefusal(t, err, 401, nil)
	_, err = x.admitCall(ctx, invite("1940", "1002", "Bearer old-model"), false)
	wantRefusal(t, err, 403, policy.ErrModelNotOAuth)
	_, err = x.admitCall(ctx, invite("1003", "1002", "Bearer alice"), false)
	wantRefusal(t, err, 403, nil)
	_, err = x.admitCall(ctx, invite("1001", "1999", "Bearer alice"), false)
	wantRefusal(t, err, 404, nil)
	_, err = x.admitCall(ctx, invite("1001", "1002", "Bearer alice"), false)
	wantRefusal(t, err, 480, nil)

	now := time.Now()
	aor := "sip:1002@edgeway.test"
	for i, contact := range []string{"sip:old@192.0.2.1", "sip:new@192.0.2.2"} {
		b := store.Registration{AOR: aor, Contact: contact, Device: "SEP001122334402", Source: fmt.Sprintf("192.0.2.%d:5061", i+1),
			ExpiresAt: now.Add(time.Hour), UpdatedAt: now.Add(time.Duration(i) * time.Second)}
		if _, err := loc.Update(ctx, aor, func([]store.Registration) (registrar.BindingChange, error) {
			return registrar.BindingChange{Put: []store.Registration{b}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := x.admitCall(ctx, invite("1001", "1002", "Bearer alice"), false)
	if err != nil || got.Contact != "sip:new@192.0.2.2" {
		t.Fatalf("registered callee: %+v, %v; want the newest binding", got, err)
	}
}

// A request inside a dialog goes to the side it did not come from.
func TestRoute(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	guard := sipx.NewGuard(log)
	ports := map[bool]*registrar.Port{}
	for _, mra := range []bool{false, true} {
		p, err := registrar.NewPort(registrar.PortConfig{MRA: mra, Node: "cucm1", AdvertisedHost: "cucm1.edgeway.test"}, guard, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		ports[mra] = p
	}
	d := &dialog{caller: hop{mra: false, source: "198.51.100.7:40000"}, callee: hop{mra: true, source: "192.0.2.10:5061"}}
	fromCaller := invite("1001", "1002", "")
	if h := route(ports[false], d, fromCaller); h.source != d.callee.source || !h.mra {
		t.Fatalf("from the caller: %+v, want the callee", h)
	}
	fromCallee := invite("1002", "1001", "")
	fromCallee.SetSource("192.0.2.10:5061")
	if h := route(ports[true], d, fromCallee); h.source != d.caller.source || h.mra {
		t.Fatalf("from the callee: %+v, want the caller", h)
	}
	// The caller's address arriving on the other port is not the caller.
	if h := route(ports[true], d, fromCaller); h.source != d.caller.source {
		t.Fatalf("caller's address on the MRA port: %+v, want the caller side", h)
	}
}

// The edge a binding's Path names (issue 11): the host and port of its
// first URI, as admission.EdgeAddr keys it.
func TestPathEdge(t *testing.T) {
	for _, tc := range []struct {
		path, want string
		ok         bool
	}{
		{"<sip:AbC_12@expe-1.example.com:5061;transport=tls;lr;ob>", "expe-1.example.com:5061", true},
		{"<sip:tok@EXPE-1.Example.com;lr>", "expe-1.example.com:5061", true},
		{"<sip:tok@127.0.0.1:40123;transport=tls;lr;ob>", "127.0.0.1:40123", true},
		{"<sip:tok@[2001:db8::1]:5061;lr>", "[2001:db8::1]:5061", true},
		{"sip:tok@expe-2.example.com:5062;lr", "expe-2.example.com:5062", true},
		{"<sip:tok@expe-1.example.com:5061", "", false},
		{"", "", false},
	} {
		got, ok := pathEdge(tc.path)
		if ok != tc.ok || got != tc.want {
			t.Errorf("pathEdge(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}
