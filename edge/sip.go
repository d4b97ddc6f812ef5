package edge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/sipx"
	"github.com/edgeway/edgeway/internal/token"
)

// SIPFront is the edge's public SIP/TLS side. It answers what it can decide
// alone (a missing or invalid bearer token, OPTIONS pings) and forwards the
// rest to the core's MRA port over mutual TLS.
type SIPFront struct {
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	ver     *token.Verifier
	coreMRA string
	authz   string // public token endpoint named in Bearer challenges
	host    string
	port    int
	flowKey []byte
	log     *slog.Logger
	txWait  time.Duration
}

func newSIPFront(cfg Config, ua *sipgo.UserAgent, ver *token.Verifier, sipPort int, flowKey []byte, log *slog.Logger) (*SIPFront, error) {
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(cfg.AdvertisedHost), sipgo.WithClientPort(sipPort))
	if err != nil {
		return nil, fmt.Errorf("edge: SIP client: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		return nil, fmt.Errorf("edge: SIP server: %w", err)
	}
	f := &SIPFront{ua: ua, srv: srv, client: client, ver: ver, coreMRA: cfg.CoreMRA, host: cfg.AdvertisedHost,
		authz: strings.TrimSuffix(cfg.PublicURL, "/") + "/oauth2/token",
		port:  sipPort, flowKey: flowKey, log: log, txWait: 32 * time.Second}
	srv.OnRegister(f.onRegister)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) { sipx.Respond(tx, req, 200, "OK", nil) })
	srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.IsAck() {
			return
		}
		sipx.Respond(tx, req, 501, "Not Implemented", nil)
	})
	return f, nil
}

// onRegister pre-checks the bearer token and forwards the REGISTER.
func (f *SIPFront) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	tok, scheme, ok := sipx.BearerToken(req)
	realm := ""
	if to := req.To(); to != nil {
		realm = to.Address.Host
	}
	switch {
	case !ok:
		f.refuse(req, tx, sipx.BearerChallenge(realm, f.authz, "", ""), "no credentials")
		return
	case strings.EqualFold(scheme, "Bearer"):
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := f.ver.Verify(ctx, tok)
		cancel()
		if errors.Is(err, token.ErrUnavailable) {
			f.log.Warn("cannot pre-check token: core keys unavailable", "err", err)
			res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
			res.AppendHeader(sip.NewHeader("Retry-After", "5"))
			_ = tx.Respond(res)
			return
		}
		if err != nil {
			desc := "token signature, issuer or audience is not valid"
			if errors.Is(err, token.ErrExpired) {
				desc = "token expired"
			}
			f.refuse(req, tx, sipx.BearerChallenge(realm, f.authz, "invalid_token", desc), err.Error())
			return
		}
	}
	// Other schemes (Digest) go to the core, which owns S-16.
	f.forward(req, tx)
}

func (f *SIPFront) refuse(req *sip.Request, tx sip.ServerTransaction, challenge, why string) {
	f.log.Info("REGISTER refused at edge", "src", req.Source(), "why", why)
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", challenge))
	_ = tx.Respond(res)
}

// forward proxies req to the core's MRA port (RFC 3261 §16.6) with a Path
// naming this edge and the phone's flow (RFC 3327, RFC 5626 §5.1), and
// relays every response back on the phone's connection.
func (f *SIPFront) forward(req *sip.Request, tx sip.ServerTransaction) {
	fwd := req.Clone()
	if mf := fwd.MaxForwards(); mf != nil {
		if mf.Val() <= 1 {
			sipx.Respond(tx, req, 483, "Too Many Hops", nil)
			return
		}
		mf.Dec()
	} else {
		mf := sip.MaxForwardsHeader(69) // RFC 3261 §16.6 step 3: 70, less this hop
		fwd.AppendHeader(&mf)
	}
	if req.Method == sip.REGISTER {
		// The phone is the first hop: any Path it wrote is its own
		// invention, and the core must see only ours (RFC 3327 §5.2).
		for fwd.RemoveHeader("Path") {
		}
		fwd.PrependHeader(sip.NewHeader("Path", f.pathFor(req.Source())))
	}
	fwd.SetDestination(f.coreMRA)
	fwd.SetTransport("TLS")

	ctx, cancel := context.WithTimeout(context.Background(), f.txWait)
	defer cancel()
	tx2, err := f.client.TransactionRequest(ctx, fwd, sipgo.ClientRequestAddVia)
	if err != nil {
		f.log.Warn("core MRA port unreachable", "core", f.coreMRA, "err", err)
		sipx.Respond(tx, req, 503, "Service Unavailable", nil)
		return
	}
	defer tx2.Terminate()
	for {
		select {
		case res := <-tx2.Responses():
			back := res.Clone()
			back.RemoveHeader("Via") // ours, the top one (RFC 3261 §16.7 step 3)
			if h := back.GetHeader("WWW-Authenticate"); h != nil {
				// The core names its internal token endpoint; phones out
				// here get tokens from this edge.
				back.ReplaceHeader(sip.NewHeader("WWW-Authenticate", sipx.ReplaceChallengeServer(h.Value(), f.authz)))
			}
			if err := tx.Respond(back); err != nil {
				f.log.Debug("relaying response to phone", "err", err)
				return
			}
			if !res.IsProvisional() {
				return
			}
		case <-tx2.Done():
			f.log.Warn("no final response from core", "core", f.coreMRA, "err", tx2.Err())
			sipx.Respond(tx, req, 504, "Server Time-out", nil)
			return
		case <-tx.Done():
			return
		case <-ctx.Done():
			sipx.Respond(tx, req, 504, "Server Time-out", nil)
			return
		}
	}
}

// pathFor builds this edge's Path entry for a phone's connection: the user
// part is a flow token (RFC 5626 §5.2) that names the phone's transport
// address and is authenticated, so only this edge can mint one.
func (f *SIPFront) pathFor(source string) string {
	return fmt.Sprintf("<sip:%s@%s;transport=tls;lr;ob>", f.flowToken(source), net.JoinHostPort(f.host, strconv.Itoa(f.port)))
}

func (f *SIPFront) flowToken(source string) string {
	m := hmac.New(sha256.New, f.flowKey)
	m.Write([]byte(source))
	mac := m.Sum(nil)[:10]
	return base64.RawURLEncoding.EncodeToString(append(mac, source...))
}

// flowFromToken returns the phone address a flow token names, or false if
// the token was not minted by this edge.
func (f *SIPFront) flowFromToken(tok string) (string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) <= 10 {
		return "", false
	}
	source := string(raw[10:])
	m := hmac.New(sha256.New, f.flowKey)
	m.Write([]byte(source))
	return source, hmac.Equal(raw[:10], m.Sum(nil)[:10])
}

// Close stops the SIP side.
func (f *SIPFront) Close() { f.srv.Close(); f.ua.Close() }
