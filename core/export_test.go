package core

import (
	"context"
	"crypto/rand"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/core/registrar"
	"github.com/edgeway/edgeway/internal/token"
)

// SIPHarness runs the core's SIP handlers without listeners, for fuzz
// targets in core_test: both registrars exist (5090 and 5091), SIP OAuth
// mode is on, and each request goes through the guard to the handler
// sipgo's server would pick.
type SIPHarness struct {
	s          *Server
	phone, mra *registrar.Port
}

func NewSIPHarness(s *Server) (*SIPHarness, error) {
	loc, err := registrar.NewLocation(context.Background(), s.st, s.now, s.log)
	if err != nil {
		return nil, err
	}
	s.loc = loc
	phone, mra, err := s.newSIP(5090, 5091)
	if err != nil {
		loc.Close()
		return nil, err
	}
	s.sipOAuthMode.Store(true)
	return &SIPHarness{s: s, phone: phone, mra: mra}, nil
}

// Handle dispatches req as arriving on the MRA port (mra) or 5090.
func (h *SIPHarness) Handle(req *sip.Request, tx sip.ServerTransaction, mra bool) {
	if mra {
		h.mra.Dispatch(req, tx)
		return
	}
	h.phone.Dispatch(req, tx)
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
