package main

import (
	"context"
	"errors"
	"testing"

	"github.com/edgeway/edgeway/bench"
)

// `edgeway phone --edge a,b --sip a,b` pairs the lists in order (issue 11
// §2, flag names a deploy script uses); mismatched lists, or --srv with
// them, are usage errors.
func TestPhoneEdgeFlags(t *testing.T) {
	pf := phoneFlags{edge: "https://10.77.2.11:8443, https://10.77.2.12:8443", sip: "10.77.2.11:5061,10.77.2.12:5061"}
	edges, err := pf.edges(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []bench.Edge{{HTTPS: "https://10.77.2.11:8443", SIP: "10.77.2.11:5061"}, {HTTPS: "https://10.77.2.12:8443", SIP: "10.77.2.12:5061"}}
	if len(edges) != 2 || edges[0] != want[0] || edges[1] != want[1] {
		t.Fatalf("edges %v, want %v", edges, want)
	}
	for name, bad := range map[string]phoneFlags{
		"more URLs than SIP addresses": {edge: "https://a:8443,https://b:8443", sip: "a:5061"},
		"--srv with --edge":            {srv: "example.test", edge: "https://a:8443", sip: "a:5061"},
	} {
		if _, err := bad.edges(context.Background(), nil); !errors.Is(err, errUsage) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}
