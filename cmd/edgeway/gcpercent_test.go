package main

import (
	"testing"

	"github.com/edgeway/edgeway/edge"
)

// TestEdgeGCPercent: the edge runs with its gc_percent (default 50)
// unless GOGC is set in the environment, which the runtime has applied
// and which wins.
func TestEdgeGCPercent(t *testing.T) {
	def := edge.Config{}.WithDefaults().GCPercent
	if def != edge.DefaultGCPercent {
		t.Fatalf("default gc_percent %d, want %d", def, edge.DefaultGCPercent)
	}
	for _, c := range []struct {
		configured int
		env        string
		want       int
		from       string
	}{
		{50, "", 50, "gc_percent"},
		{80, "", 80, "gc_percent"},
		{-1, "", 100, "Go's default"},
		{50, "200", 200, "GOGC"},
		{50, "off", -1, "GOGC"},
		{50, "x", 100, "GOGC (unparsable: Go's default)"},
	} {
		got, from := edgeGCPercent(c.configured, c.env)
		if got != c.want || from != c.from {
			t.Errorf("edgeGCPercent(%d, %q) = %d, %q; want %d, %q", c.configured, c.env, got, from, c.want, c.from)
		}
	}
}
