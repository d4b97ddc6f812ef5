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

// Cross-node routing (issue 11): the gate learns which edge an admitted
// MRA connection speaks for from what the edge writes on it, and hands a
// connection out only while S-12 still admits it and only for the
// Expressway-C entry the binding was made through: an unadmitted
// connection is never recorded, and an admitted edge that writes another
// edge's address gets none of that edge's phones.
func TestGateConnOf(t *testing.T) {
	ctx := context.Background()
	e := &entries{list: []store.ExpresswayEntry{{ID: 1, Names: []string{"expc1.example.com"}}, {ID: 2, Names: []string{"expc2.example.com"}}}}
	g := newGate(t, e)
	edge1 := EdgeAddr("EXPE-1.example.com", 0)
	if edge1 != "expe-1.example.com:5061" {
		t.Fatalf("EdgeAddr = %q", edge1)
	}
	g.Announce("192.0.2.9:40000", edge1) // never admitted
	if _, err := g.ConnOf(ctx, edge1, ""); !errors.Is(err, ErrNoEdgeConnection) {
		t.Fatalf("ConnOf after an unadmitted connection announced = %v, want %v", err, ErrNoEdgeConnection)
	}
	g.peers.Add("192.0.2.1:40001", peer{leaf: leaf("expc1.example.com")})
	g.peers.Add("192.0.2.2:40002", peer{leaf: leaf("expc2.example.com")})
	g.Announce("192.0.2.1:40001", edge1)
	if got, err := g.ConnOf(ctx, edge1, "expc1.example.com"); err != nil || got != "192.0.2.1:40001" {
		t.Fatalf("ConnOf(edge 1, its entry) = %q, %v", got, err)
	}
	if _, err := g.ConnOf(ctx, edge1, "expc2.example.com"); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("ConnOf for a binding made through another entry = %v, want %v", err, ErrNotAdmitted)
	}
	g.Announce("192.0.2.2:40002", edge1) // edge 2 writes edge 1's address
	if _, err := g.ConnOf(ctx, edge1, "expc1.example.com"); !errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("ConnOf after another edge claimed edge 1's address = %v, want %v", err, ErrNotAdmitted)
	}
	g.Announce("192.0.2.1:40001", edge1)
	e.list = e.list[1:] // edge 1's entry deleted (S-12)
	if _, err := g.ConnOf(ctx, edge1, "expc1.example.com"); !errors.Is(err, ErrEdgeNotConfigured) {
		t.Fatalf("ConnOf after the entry was deleted = %v, want %v", err, ErrEdgeNotConfigured)
	}
	e.list = []store.ExpresswayEntry{{ID: 1, Names: []string{"expc1.example.com"}}}
	g.Attach(func(string) bool { return false }) // the connection closed
	if _, err := g.ConnOf(ctx, edge1, "expc1.example.com"); !errors.Is(err, ErrNoEdgeConnection) {
		t.Fatalf("ConnOf after the connection closed = %v, want %v", err, ErrNoEdgeConnection)
	}
}
