package core

import (
	"context"
	"crypto/rand"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/internal/token"
)

// SIPHarness runs the core's SIP handlers without listeners, for fuzz
// targets in core_test: both registrars exist (5090 and 5091), SIP OAuth
// mode is on, and each request goes through the guard to the handler
// sipgo's server would pick.
type SIPHarness struct {
	s          *Server
	phone, mra *registrar
}

func NewSIPHarness(s *Server) (*SIPHarness, error) {
	phone, err := s.newRegistrar(false)
	if err != nil {
		return nil, err
	}
	mra, err := s.newRegistrar(true)
	if err != nil {
		phone.Close()
		return nil, err
	}
	loc, err := newLocation(context.Background(), s.st, s.now, s.log)
	if err != nil {
		phone.Close()
		mra.Close()
		return nil, err
	}
	s.loc = loc
	phone.port, mra.port = 5090, 5091
	s.phoneReg, s.mraReg = phone, mra
	s.calls.m = make(map[string]*dialog)
	s.sipOAuthMode.Store(true)
	return &SIPHarness{s: s, phone: phone, mra: mra}, nil
}

// Handle dispatches req as arriving on the MRA port (mra) or 5090.
func (h *SIPHarness) Handle(req *sip.Request, tx sip.ServerTransaction, mra bool) {
	r := h.phone
	if mra {
		r = h.mra
	}
	switch req.Method {
	case sip.REGISTER:
		r.guard.Wrap(r.onRegister)(req, tx)
	case sip.ACK:
		r.guard.Wrap(r.onAck)(req, tx)
	case sip.OPTIONS:
		r.guard.Wrap(r.onOptions)(req, tx)
	default:
		r.guard.Wrap(r.onCall)(req, tx)
	}
}

func (h *SIPHarness) Close() { h.phone.Close(); h.mra.Close(); h.s.loc.Close() }

// AccessToken signs an access token for device as the activation-code
// grant would.
func (h *SIPHarness) AccessToken(device string) (string, error) {
	now := h.s.now()
	return h.s.auth.Keys().Sign(&token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: h.s.cfg.Issuer, Audience: jwt.ClaimStrings{h.s.cfg.Audience}, Subject: device,
			ID: rand.Text(), IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(h.s.auth.Lifetimes().Access())),
		},
		Grant: token.GrantActivationCode, Origin: token.GrantActivationCode,
	})
}
