package admission

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/store"
)

type entries struct {
	list []store.ExpresswayEntry
	err  error
}

func (e *entries) ListExpressways(context.Context) ([]store.ExpresswayEntry, error) {
	return e.list, e.err
}

func (e *entries) ReportName(context.Context, string, string, time.Time) error { return nil }

func leaf(cn string, dns ...string) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
}

func newGate(t *testing.T, e *entries) *Gate {
	t.Helper()
	g, err := New(e, e, nil, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// S-12: an edge is admitted by its certificate's CN or a SAN matching a
// configured Expressway-C entry, and by nothing else.
func TestMatchEntries(t *testing.T) {
	es := []store.ExpresswayEntry{
		{ID: 1, Names: []string{"expc1.example.com"}},
		{ID: 2, Names: []string{"expc2.example.com", "expc2-alt.example.com"}},
	}
	for _, tt := range []struct {
		name   string
		leaf   *x509.Certificate
		wantID int64
	}{
		{"CN", leaf("expc1.example.com"), 1},
		{"SAN", leaf("other", "expc2-alt.example.com"), 2},
		{"no match", leaf("expe.example.com", "expe-alt.example.com"), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, _, err := MatchEntries(es, tt.leaf)
			if tt.wantID == 0 {
				if !errors.Is(err, ErrEdgeNotConfigured) {
					t.Fatalf("MatchEntries = %v, want %v", err, ErrEdgeNotConfigured)
				}
				return
			}
			if err != nil || e.ID != tt.wantID {
				t.Fatalf("MatchEntries = entry %d, %v; want entry %d", e.ID, err, tt.wantID)
			}
		})
	}
}

// A handshake whose names match no entry is refused (S-12); a store that
// cannot be read is not mistaken for a refusal.
func TestGateAdmit(t *testing.T) {
	e := &entries{list: []store.ExpresswayEntry{{ID: 1, Names: []string{"expc1.example.com"}}}}
	g := newGate(t, e)
	if err := g.Admit(leaf("expc1.example.com")); err != nil {
		t.Fatalf("Admit(configured) = %v", err)
	}
	if err := g.Admit(leaf("stranger.example.com")); !errors.Is(err, ErrEdgeNotConfigured) || !Refused(err) {
		t.Fatalf("Admit(unconfigured) = %v, want %v", err, ErrEdgeNotConfigured)
	}
	e.err = errors.New("store down")
	if err := g.Admit(leaf("expc1.example.com")); err == nil || Refused(err) {
		t.Fatalf("Admit(store down) = %v, want a store error that is not a refusal", err)
	}
}

// A request on an MRA connection the gate never admitted is refused
// (S-12), whatever it carries.
func TestGateEdgeOfUnknownConnection(t *testing.T) {
	g := newGate(t, &entries{list: []store.ExpresswayEntry{{ID: 1, Names: []string{"expc1.example.com"}}}})
	if _, err := g.EdgeOf(context.Background(), "192.0.2.1:5061"); !errors.Is(err, ErrNotAdmitted) || !Refused(err) {
		t.Fatalf("EdgeOf(unknown) = %v, want %v", err, ErrNotAdmitted)
	}
}
