// Package sipx holds the SIP helpers both tiers share on top of sipgo:
// building a user agent with Edgeway's transport limits and parser,
// validating every message before a tier acts on it (ValidateRequest,
// ValidateResponse: RFC 3261 §8.2, §16.3) behind a Guard that every
// handler goes through and that recovers a handler's panic, proxying
// (PrepareForward, Guard.Relay), reading multi-valued headers, contacts
// and addresses of record, and log-safe fingerprints of secrets.
package sipx

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// NewUA builds a sipgo user agent whose TLS connections are closed after
// idle of silence (keep-alive CRLFs count), that dials with tlsConf, and
// that parses with NewParser, so a bad mandatory header reaches
// ValidateRequest instead of closing the connection. A transaction whose
// connection closes ends at once with a transport error, instead of
// waiting out Timer B/F (32 s): a call to a phone whose connection just
// died fails fast (see Guard.RelayToFlow).
func NewUA(name, hostname string, idle time.Duration, log *slog.Logger, tlsConf *tls.Config, extra ...sipgo.UserAgentOption) (*sipgo.UserAgent, error) {
	return NewFilteredUA(name, hostname, idle, log, tlsConf, nil, extra...)
}

// NewFilteredUA is NewUA whose connections pass every read through filter
// first (nil: none): the simulated phone sees the CRLF pongs of RFC 5626
// §4.4.1 there, which sipgo consumes before any handler.
func NewFilteredUA(name, hostname string, idle time.Duration, log *slog.Logger, tlsConf *tls.Config, filter sip.TransportReadFilter, extra ...sipgo.UserAgentOption) (*sipgo.UserAgent, error) {
	tlsTransport := &sip.TransportTLS{TransportTCP: &sip.TransportTCP{ReadTimeout: idle, WriteTimeout: 10 * time.Second}}
	tpOpts := []sip.TransportLayerOption{sip.WithTransportLayerLogger(log)}
	if filter != nil { // before the transports: they copy the filter when set
		tpOpts = append(tpOpts, sip.WithTransportLayerReadFilter(filter))
	}
	tpOpts = append(tpOpts, sip.WithTransportLayerTransports(sip.TransportsConfig{TLS: tlsTransport}))
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(name),
		sipgo.WithUserAgentParser(NewParser()),
		sipgo.WithUserAgentHostname(hostname),
		sipgo.WithUserAgentTransportLayerOptions(tpOpts...),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerTerminateOnConnClose()),
	}
	if tlsConf != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(tlsConf))
	}
	return sipgo.NewUA(append(opts, extra...)...)
}

// Respond sends a response built from req; errors (a closed connection)
// are the client's problem and are dropped.
func Respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, body))
}

// AOR is the address of record of a To header: scheme, user and host, no
// parameters, lower-case host.
func AOR(to *sip.ToHeader) string {
	if to == nil {
		return ""
	}
	scheme := to.Address.Scheme
	if scheme == "" {
		scheme = "sip"
	}
	return scheme + ":" + to.Address.User + "@" + strings.ToLower(to.Address.Host)
}

// ErrBadContact reports an unparsable Contact header.
var ErrBadContact = errors.New("sip: bad Contact header")

// Contacts returns the Contact values of a REGISTER; star reports a
// "Contact: *" (RFC 3261 §10.2.2).
func Contacts(req *sip.Request) (contacts []sip.ContactHeader, star bool, err error) {
	for _, v := range HeaderValues(req, "Contact") {
		if strings.TrimSpace(v) == "*" {
			star = true
			continue
		}
		var c sip.ContactHeader
		c.DisplayName, err = sip.ParseAddressValue(v, &c.Address, &c.Params)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %q: %v", ErrBadContact, v, err)
		}
		contacts = append(contacts, c)
	}
	return contacts, star, nil
}

// HeaderValues returns every value of a header, splitting comma-separated
// lists outside <> and quotes.
func HeaderValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range headersOf(m) {
		if nameIs(h, name) {
			out = appendList(out, h.Value())
		}
	}
	return out
}

// SplitList splits a SIP header list value at top-level commas.
func SplitList(v string) []string { return appendList(nil, v) }

// appendList appends the top-level comma-separated values of v to out.
func appendList(out []string, v string) []string {
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if quoted {
				i++ // quoted-pair (RFC 3261 §25.1): the next byte is literal
			}
		case '"':
			quoted = !quoted
		case '<':
			if !quoted {
				depth++
			}
		case '>':
			if !quoted && depth > 0 {
				depth--
			}
		case ',':
			if !quoted && depth == 0 {
				if s := strings.TrimSpace(v[start:i]); s != "" {
					out = append(out, s)
				}
				start = i + 1
			}
		}
	}
	if s := strings.TrimSpace(v[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

// Fingerprint is how secrets appear in logs: a short SHA-256 prefix.
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	const prefix = "sha256:"
	var b [len(prefix) + 8]byte
	copy(b[:], prefix)
	hex.Encode(b[len(prefix):], sum[:4])
	return string(b[:])
}

// BearerToken splits the first Authorization header into its scheme and
// credentials; ok is false when there is none.
func BearerToken(m sip.Message) (tok string, scheme string, ok bool) {
	h := FindHeader(m, "Authorization")
	if h == nil {
		return "", "", false
	}
	v := strings.TrimSpace(h.Value())
	// The scheme ends at linear white space: spaces or tabs (RFC 3261 §25.1).
	i := strings.IndexAny(v, " \t")
	if i < 0 {
		return "", v, true
	}
	return strings.TrimSpace(v[i:]), v[:i], true
}

// BearerChallenge builds the WWW-Authenticate value of a 401 (RFC 8898
// §2.3 with the RFC 6750 §3 parameters): realm, the token endpoint the
// client should use, and, when the token was refused, its error code and a
// description.
func BearerChallenge(realm, authzServer, errCode, description string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Bearer realm=%q", realm)
	if authzServer != "" {
		fmt.Fprintf(&b, ", authz_server=%q", authzServer)
	}
	if errCode != "" {
		fmt.Fprintf(&b, ", error=%q", errCode)
		if description != "" {
			fmt.Fprintf(&b, ", error_description=%q", strings.NewReplacer(`"`, "'", `\`, "/").Replace(description))
		}
	}
	return b.String()
}

// ReplaceChallengeServer rewrites the authz_server of a Bearer challenge
// (the edge replaces the core's internal token URL with its public one).
func ReplaceChallengeServer(challenge, authzServer string) string {
	const key = `authz_server="`
	i := strings.Index(challenge, key)
	if i < 0 {
		return challenge
	}
	j := strings.IndexByte(challenge[i+len(key):], '"')
	if j < 0 {
		return challenge
	}
	return challenge[:i+len(key)] + authzServer + challenge[i+len(key)+j:]
}

// NoDNS is a resolver that never resolves: for user agents that must only
// ever send to addresses they were given (the simulated phone sends to the
// edge's address; a name in a Request-URI such as the SIP domain must not
// turn into a DNS query).
func NoDNS() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, errors.New("sip: DNS disabled for this user agent")
	}}
}

// readBufferSize is each SIP connection's read buffer, held by sipgo's
// reader for the connection's lifetime: per idle registered phone on the
// edge (and on the core's Phone OAuth port). sipgo's default is 32 KiB;
// its stream parser is incremental and joins messages across reads
// (TestStreamAcrossReads), so a smaller buffer only means more reads: a
// REGISTER through the edge (~1.3 kB) takes two reads of 1 KiB, which
// costs about as much CPU as one read of 4 KiB (BenchmarkStreamReads),
// and the buffer costs 1 KiB an idle phone instead of 4 (bench/hold/run).
// Edgeway serves SIP over TLS and TCP only (a UDP datagram must fit the
// buffer whole).
const readBufferSize = 1024

func init() {
	// Process-wide in sipgo; set before any connection reads it.
	sip.TransportBufferReadSize = readBufferSize
}
