// Package reqid is the request ID that follows one phone's request across
// the DMZ (issue 12 §2): the edge makes one for every request a phone
// sends, logs it as the attribute "rid", and hands it to the core in the
// Header (SIP over the MRA link, HTTPS over the mTLS link); the core logs
// the same "rid". A phone never chooses it: the edge removes any such
// header a phone wrote, and the core believes the header only on
// connections from an admitted edge (the MRA port, or an HTTPS client
// certificate admitted in the handshake, S-11/S-12). Everywhere else the
// core ignores it and makes its own. On SIP the ID rides on the server
// transaction (Tx), never written into the request sipgo holds; each tier
// sets or strips the header only on the copies it forwards.
//
// Both tiers import it; neither imports the other.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
)

// Header carries the ID from the edge to the core, in SIP requests and
// in HTTPS requests alike.
const Header = "X-Edgeway-Request-ID"

// ResponseHeader returns the ID to the client in HTTP responses, so
// support can ask the user for it.
const ResponseHeader = "X-Request-ID"

// Attr is the log attribute key of the ID.
const Attr = "rid"

// MaxLen bounds an ID the core accepts.
const MaxLen = 64

// Valid reports whether s may be used as an ID as it came: 1 to MaxLen
// characters of [0-9A-Za-z._-]. Anything else is replaced, never logged.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Source makes IDs: a random per-source prefix and a counter, so making
// one is an atomic add and one small allocation, with no lock. IDs of
// two sources (two processes, an edge and a core) differ by prefix. The
// zero value is ready to use (it draws its prefix on first use); a
// Source must not be copied after first use.
type Source struct {
	once   sync.Once
	prefix string
	n      atomic.Uint64
}

// NewSource returns a Source with a fresh random prefix.
func NewSource() *Source {
	s := &Source{}
	s.once.Do(s.init)
	return s
}

func (s *Source) init() {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24+)
	s.prefix = hex.EncodeToString(b[:]) + "-"
}

// New returns the next ID: the prefix then the counter in base 36, as in
// "3f9a01c2b7de-1k".
func (s *Source) New() string {
	s.once.Do(s.init)
	var buf [32]byte
	b := append(buf[:0], s.prefix...)
	b = strconv.AppendUint(b, s.n.Add(1), 36)
	return string(b)
}

// FromSIP is req's ID: the value of its first Header, "" when it has none.
func FromSIP(req *sip.Request) string {
	if h := find(req); h != nil {
		return h.Value()
	}
	return ""
}

// find is req's first Header, whatever the case of its name.
func find(req *sip.Request) sip.Header {
	for _, h := range req.Headers() {
		if n := h.Name(); len(n) == len(Header) && strings.EqualFold(n, Header) {
			return h
		}
	}
	return nil
}

// StripSIP removes every Header from req, whatever the case of its name
// (sipgo's RemoveHeader matches the name exactly): for a copy the caller
// owns, as SetSIP.
func StripSIP(req *sip.Request) {
	for {
		h := find(req)
		if h == nil {
			return
		}
		req.RemoveHeader(h.Name())
	}
}

// SetSIP gives req the one Header id, replacing any it had: for a copy
// the caller owns (the one a proxy forwards), never for a request a
// transaction holds.
func SetSIP(req *sip.Request, id string) {
	StripSIP(req)
	req.AppendHeader(sip.NewHeader(Header, id))
}

// Adopt is the ID of a request arriving on a core port: from an admitted
// edge (trusted), the value of its one Header when that is Valid;
// otherwise (no header, two, a malformed one, or not trusted) a new ID
// from src. req is not changed: sipgo's transaction reads it from its
// own goroutines (the 100 Trying it sends), so a handler must not write
// to it; the ID rides on the transaction (Tx).
func Adopt(req *sip.Request, trusted bool, src *Source) string {
	if trusted && countSIP(req) == 1 {
		if v := find(req).Value(); Valid(v) {
			return v
		}
	}
	return src.New()
}

// Tx is a server transaction with the request ID of its request.
type Tx struct {
	sip.ServerTransaction
	ID string
}

// Unwrap is the transaction t wraps.
func (t *Tx) Unwrap() sip.ServerTransaction { return t.ServerTransaction }

// FromTx is the ID of tx's request: the ID of the Tx found by unwrapping
// tx (through wrappers with an Unwrap() sip.ServerTransaction method, as
// the guard's and the edge's counting ones have), "" when there is none.
func FromTx(tx sip.ServerTransaction) string {
	for tx != nil {
		switch t := tx.(type) {
		case *Tx:
			return t.ID
		case interface{ Unwrap() sip.ServerTransaction }:
			tx = t.Unwrap()
		default:
			return ""
		}
	}
	return ""
}

func countSIP(req *sip.Request) int {
	n := 0
	for _, h := range req.Headers() {
		if name := h.Name(); len(name) == len(Header) && strings.EqualFold(name, Header) {
			n++
		}
	}
	return n
}

type ctxKey struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From is the ID ctx carries, "" when none.
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Log is the attribute to log the ID with.
func Log(id string) slog.Attr { return slog.String(Attr, id) }

// HTTP gives every request to next an ID, carried in its context (From)
// and returned in the response's ResponseHeader. When trusted reports
// that the request came from an admitted edge, the one Valid Header it
// carries is the ID; otherwise (trusted nil, or false) an ID from src.
// Either way Header and ResponseHeader are removed from the request, so
// nothing after this reads a value a client wrote.
func HTTP(next http.Handler, src *Source, trusted func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if vs := r.Header.Values(Header); len(vs) == 1 && Valid(vs[0]) && trusted != nil && trusted(r) {
			id = vs[0]
		}
		if id == "" {
			id = src.New()
		}
		r.Header.Del(Header)
		r.Header.Del(ResponseHeader)
		w.Header().Set(ResponseHeader, id)
		next.ServeHTTP(w, r.WithContext(With(r.Context(), id)))
	})
}

// FromRequest is the ID HTTP gave r, "" outside HTTP.
func FromRequest(r *http.Request) string { return From(r.Context()) }
