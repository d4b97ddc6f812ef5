package admin

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/store"
)

// Issue 9 item 13: a token made through the API revokes only its own
// lineage; a login token only its account's tokens; the bootstrap token
// any.
func TestMayRevoke(t *testing.T) {
	all := []store.APIToken{
		{ID: "boot", Owner: "admin"},
		{ID: "alice-login", Owner: "alice", Login: true},
		{ID: "alice-script", Owner: "alice", Parent: "alice-login"},
		{ID: "alice-child", Owner: "alice", Parent: "alice-script"},
		{ID: "bob-login", Owner: "bob", Login: true},
	}
	byID := map[string]store.APIToken{}
	for _, tk := range all {
		byID[tk.ID] = tk
	}
	for _, tt := range []struct {
		by, target string
		ok         bool
	}{
		{"boot", "bob-login", true},
		{"alice-login", "alice-child", true},
		{"alice-login", "bob-login", false},
		{"alice-script", "alice-child", true},
		{"alice-script", "alice-script", true},
		{"alice-script", "alice-login", false},
		{"alice-child", "alice-script", false},
	} {
		err := mayRevoke(byID[tt.by], tt.target, all)
		if (err == nil) != tt.ok {
			t.Errorf("mayRevoke(%s, %s) = %v, want allowed %v", tt.by, tt.target, err, tt.ok)
		}
	}
	if err := mayRevoke(byID["boot"], "nope", all); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown target: %v, want ErrNotFound", err)
	}
}

func TestParseTokenTTL(t *testing.T) {
	if d, err := parseTokenTTL("", LoginTokenTTL, MaxLoginTokenTTL); err != nil || d != LoginTokenTTL {
		t.Fatalf(`"" = %v, %v; want the default`, d, err)
	}
	if d, err := parseTokenTTL("720h", ScriptTokenTTL, MaxScriptTokenTTL); err != nil || d != 720*time.Hour {
		t.Fatalf("720h = %v, %v", d, err)
	}
	for _, v := range []string{"30s", "9000h", "soon", "-1h"} {
		if _, err := parseTokenTTL(v, LoginTokenTTL, MaxLoginTokenTTL); err == nil {
			t.Errorf("parseTokenTTL(%q) accepted", v)
		}
	}
}

// S-12: an entry needs an address and at least one non-empty name.
func TestValidateExpressway(t *testing.T) {
	for _, tt := range []struct {
		v  ExpresswayEntryView
		ok bool
	}{
		{ExpresswayEntryView{Address: "expc.example.com", Names: []string{"expc.example.com"}}, true},
		{ExpresswayEntryView{Address: " ", Names: []string{"expc.example.com"}}, false},
		{ExpresswayEntryView{Address: "expc.example.com"}, false},
		{ExpresswayEntryView{Address: "expc.example.com", Names: []string{"expc.example.com", " "}}, false},
	} {
		err := validateExpressway(tt.v)
		if (err == nil) != tt.ok {
			t.Errorf("validateExpressway(%+v) = %v, want ok %v", tt.v, err, tt.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "S-12: ") {
			t.Errorf("refusal %q does not name S-12", err)
		}
	}
}
