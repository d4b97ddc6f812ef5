package admission

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/edgeway/edgeway/internal/store"
	"github.com/edgeway/edgeway/mtls"
)

// ErrEdgeNotConfigured is the S-12 handshake refusal.
var ErrEdgeNotConfigured = errors.New("S-12: certificate names match no configured Expressway-C entry")

// ErrNotAdmitted is the S-12 refusal of a request on an MRA connection
// the gate holds no admitted certificate for.
var ErrNotAdmitted = errors.New("S-12: no admitted Expressway-C certificate is known for this connection")

// Entries is what the per-request checks read: the Expressway-C entries,
// cached (core/lookups).
type Entries interface {
	ListExpressways(ctx context.Context) ([]store.ExpresswayEntry, error)
}

// Store is what the gate reads and writes itself: the entries uncached
// (for the sweep), and the names edges presented (S-12 "Find").
type Store interface {
	ListExpressways(ctx context.Context) ([]store.ExpresswayEntry, error)
	ReportName(ctx context.Context, name, address string, at time.Time) error
}

// Gate admits edges: it runs the S-12 check in every handshake that
// presents a client certificate (MRA port and HTTPS), re-checks the edge
// behind an MRA connection on every REGISTER, and sweeps admitted MRA
// connections whose entry was edited away or whose CA left tomcat-trust
// (S-11). It is the one owner of the map of admitted MRA connections.
type Gate struct {
	entries Entries
	st      Store
	trust   *mtls.TrustStore
	now     func() time.Time
	log     *slog.Logger

	// peers maps the remote address of an admitted MRA connection to the
	// connection and the certificate it presented, so every REGISTER on it
	// is re-checked against the current Expressway-C entries and the sweep
	// closes connections whose entry is gone (S-12). Bounded; entries of
	// closed connections age out.
	peers *lru.Cache[string, peer]
	// edges maps an edge's SIP address (EdgeAddr: the sent-by of the top
	// Via on what it sends over its MRA connections, the host:port of the
	// Path it writes into REGISTERs) to the remote address of the admitted
	// MRA connection it last spoke on, so a call for a phone whose binding
	// came through another node of the cluster can reach it (ConnOf).
	// Bounded like peers.
	edges *lru.Cache[string, string]
	// connected reports whether the MRA listener still holds a connection
	// (set by Attach once the listener exists).
	connected atomic.Pointer[func(remote string) bool]
}

// peer is an admitted connection on the MRA port.
type peer struct {
	leaf  *x509.Certificate
	chain []*x509.Certificate // as presented: leaf, then intermediates
	conn  *tls.Conn
}

// New builds a gate over the entries (cached), the store and tomcat-trust.
func New(entries Entries, st Store, trust *mtls.TrustStore, now func() time.Time, log *slog.Logger) (*Gate, error) {
	peers, err := lru.New[string, peer](65536)
	if err != nil {
		return nil, err
	}
	edges, err := lru.New[string, string](4096)
	if err != nil {
		return nil, err
	}
	return &Gate{entries: entries, st: st, trust: trust, now: now, log: log, peers: peers, edges: edges}, nil
}

// Attach tells the gate how to ask whether the MRA listener still holds a
// connection, so the sweep forgets closed ones.
func (g *Gate) Attach(connected func(remote string) bool) { g.connected.Store(&connected) }

// Admit is the S-12 check run during every handshake that presents a
// client certificate (MRA port and HTTPS): the chain has already been
// verified against tomcat-trust (S-11); the certificate's subject CN or a
// SAN must match a configured Expressway-C entry.
func (g *Gate) Admit(leaf *x509.Certificate) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := g.Match(ctx, leaf)
	return err
}

// Match is the name of the Expressway-C entry leaf matches (S-12).
func (g *Gate) Match(ctx context.Context, leaf *x509.Certificate) (string, error) {
	_, name, err := g.Entry(ctx, leaf)
	return name, err
}

// Entry finds the Expressway-C entry a certificate matches (S-12) and
// the name it matched by.
func (g *Gate) Entry(ctx context.Context, leaf *x509.Certificate) (store.ExpresswayEntry, string, error) {
	entries, err := g.entries.ListExpressways(ctx)
	if err != nil {
		return store.ExpresswayEntry{}, "", fmt.Errorf("S-12: reading Expressway-C entries: %w", err)
	}
	return MatchEntries(entries, leaf)
}

// MatchEntries finds the entry among entries that leaf matches (S-12).
func MatchEntries(entries []store.ExpresswayEntry, leaf *x509.Certificate) (store.ExpresswayEntry, string, error) {
	for _, e := range entries {
		if name, ok := mtls.MatchPeerName(leaf, e.Names); ok {
			return e, name, nil
		}
	}
	return store.ExpresswayEntry{}, "", fmt.Errorf("%w (certificate names %v)", ErrEdgeNotConfigured, mtls.CertNames(leaf))
}

// EdgeOf re-checks the edge behind an MRA connection (S-12) and returns
// the Expressway-C name it matches. A refusal wraps ErrNotAdmitted or
// ErrEdgeNotConfigured; any other error is the store's.
func (g *Gate) EdgeOf(ctx context.Context, source string) (string, error) {
	p, ok := g.peers.Get(source)
	leaf := p.leaf
	if !ok {
		return "", ErrNotAdmitted
	}
	name, err := g.Match(ctx, leaf)
	if errors.Is(err, ErrEdgeNotConfigured) {
		return "", fmt.Errorf("S-12: this edge is no longer a configured Expressway-C: %w", err)
	}
	return name, err
}

// Refused reports whether err is an S-12 refusal of EdgeOf, Entry or
// Match (as opposed to a store failure).
func Refused(err error) bool {
	return errors.Is(err, ErrEdgeNotConfigured) || errors.Is(err, ErrNotAdmitted)
}

// maxReportedNames bounds what one certificate can add to "Find".
const maxReportedNames = 16

// ReportNames records the names an edge's certificate carried (S-12
// "Find"). Only certificates that chain to tomcat-trust are reported, so
// the list holds what the operator's own PKI issued, not what strangers
// sent.
func (g *Gate) ReportNames(remote net.Addr, names []string) {
	if len(names) > maxReportedNames {
		names = names[:maxReportedNames]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	addr := ""
	if remote != nil {
		addr = remote.String()
	}
	for _, n := range names {
		if err := g.st.ReportName(ctx, n, addr, g.now()); err != nil {
			g.log.Warn("recording reported edge name", "name", n, "err", err)
		}
	}
}

// Admitted records a connection the MRA listener admitted (its handshake
// passed Admit), for EdgeOf and the sweep.
func (g *Gate) Admitted(c *tls.Conn) {
	st := c.ConnectionState()
	leaf := st.PeerCertificates[0]
	g.ReportNames(c.RemoteAddr(), mtls.CertNames(leaf))
	g.peers.Add(c.RemoteAddr().String(), peer{leaf: leaf, chain: st.PeerCertificates, conn: c})
	g.log.Info("edge connected on MRA port", "remote", c.RemoteAddr(), "names", mtls.CertNames(leaf))
}

// Sweep closes MRA connections whose certificate no longer matches an
// Expressway-C entry (S-12: deleting an entry shuts that edge out within
// seconds, not only at its next handshake) or no longer verifies against
// tomcat-trust (S-11: removing the CA that issued it), and forgets
// connections the MRA listener has already closed. It reads the entries
// from the store itself, once, not from the per-REGISTER cache.
func (g *Gate) Sweep(ctx context.Context) {
	entries, err := g.st.ListExpressways(ctx)
	if err != nil {
		g.log.Warn("S-12 sweep: reading Expressway-C entries", "err", err)
		return
	}
	connected := g.connected.Load()
	for _, remote := range g.peers.Keys() {
		p, ok := g.peers.Peek(remote)
		if !ok {
			continue
		}
		if connected != nil && !(*connected)(remote) {
			g.peers.Remove(remote) // closed already
			continue
		}
		why := ""
		if _, _, err := MatchEntries(entries, p.leaf); errors.Is(err, ErrEdgeNotConfigured) {
			why = "S-12: no Expressway-C entry matches its certificate any more"
		} else if _, err := g.trust.Verify(p.chain, x509.ExtKeyUsageClientAuth); err != nil {
			why = "S-11: tomcat-trust no longer verifies its certificate: " + err.Error()
		}
		if why != "" {
			g.log.Warn("closing an edge's MRA connection", "remote", remote, "why", why)
			_ = p.conn.Close()
			g.peers.Remove(remote)
		}
	}
}

// ErrNoEdgeConnection is the refusal of ConnOf: this node holds no live,
// admitted MRA connection from the edge a binding names.
var ErrNoEdgeConnection = errors.New("no live MRA connection from the edge that holds the phone's flow")

// EdgeAddr is the key an edge is known by: its SIP address as it writes it
// into Via and Path, host lower-cased (an IPv6 address without its
// brackets, as SIP URIs and Via write it), port 5061 when absent.
func EdgeAddr(host string, port int) string {
	if port == 0 {
		port = 5061
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port))
}

// Announce records that the edge whose SIP address is edge (EdgeAddr)
// speaks on the MRA connection from remote. Only a connection the gate
// admitted (S-11, S-12) is recorded; the latest one an edge spoke on wins.
func (g *Gate) Announce(remote, edge string) {
	if _, ok := g.peers.Peek(remote); !ok {
		return
	}
	if cur, ok := g.edges.Peek(edge); ok && cur == remote {
		return
	}
	g.edges.Add(edge, remote)
}

// ConnOf is the remote address of a live MRA connection on this node from
// the edge whose SIP address is edge (EdgeAddr), re-checked as every
// REGISTER is (S-12): its certificate must still match an Expressway-C
// entry, and, when entry is not empty, the entry the binding was made
// through, so one admitted edge is never handed another's phones by what
// it writes in Via. A refusal wraps ErrNoEdgeConnection, ErrNotAdmitted or
// ErrEdgeNotConfigured; any other error is the store's.
func (g *Gate) ConnOf(ctx context.Context, edge, entry string) (string, error) {
	remote, ok := g.edges.Get(edge)
	if !ok {
		return "", fmt.Errorf("%w (edge %s)", ErrNoEdgeConnection, edge)
	}
	if c := g.connected.Load(); c != nil && !(*c)(remote) {
		g.edges.Remove(edge)
		return "", fmt.Errorf("%w (edge %s: its connection closed)", ErrNoEdgeConnection, edge)
	}
	name, err := g.EdgeOf(ctx, remote)
	if err != nil {
		return "", err
	}
	if entry != "" && name != entry {
		return "", fmt.Errorf("%w: the connection claiming edge %s matches Expressway-C %q, the binding was made through %q", ErrNotAdmitted, edge, name, entry)
	}
	return remote, nil
}
