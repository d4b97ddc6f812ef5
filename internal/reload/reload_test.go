package reload

import (
	"slices"
	"testing"
	"time"
)

type inner struct {
	Cert  string   `yaml:"cert"`
	Names []string `yaml:"names"`
}

type cfg struct {
	Addr    string         `yaml:"addr"`
	Timeout time.Duration  `yaml:"timeout"`
	Grace   *time.Duration `yaml:"grace"`
	TLS     inner          `yaml:"tls"`
	Skipped int            `yaml:"-"`
	hidden  int
}

func TestDiff(t *testing.T) {
	d1, d2 := time.Second, 2*time.Second
	a := cfg{Addr: ":1", Timeout: time.Second, Grace: &d1, TLS: inner{Cert: "a.pem", Names: []string{"x"}}, Skipped: 1, hidden: 1}
	if got := Diff(a, a); len(got) != 0 {
		t.Errorf("Diff of equal configs = %v, want none", got)
	}
	b := a
	b.Addr, b.Grace, b.TLS.Names, b.Skipped, b.hidden = ":2", &d2, []string{"y"}, 2, 2
	want := []string{"addr", "grace", "tls.names"}
	if got := Diff(a, b); !slices.Equal(got, want) {
		t.Errorf("Diff = %v, want %v", got, want)
	}
	b.Grace = nil
	c := Split(a, b, "tls.names", "timeout")
	if !slices.Equal(c.Applied, []string{"tls.names"}) || !slices.Equal(c.Restart, []string{"addr", "grace"}) {
		t.Errorf("Split = %+v", c)
	}
}
