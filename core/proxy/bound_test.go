package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/golang-jwt/jwt/v5"

	"github.com/edgeway/edgeway/internal/certbind"
	"github.com/edgeway/edgeway/internal/token"
)

// RFC 8705 §3 (issue 15): a new call with a certificate-bound token is
// admitted only on the MRA port with the edge's report of that
// certificate; elsewhere, or with another, it is 403 before anything is
// looked up for the callee.
func TestAdmitCallBoundToken(t *testing.T) {
	const thumb = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	ctx := context.Background()
	x, _ := testProxy(t, true)
	x.d.Tokens.(fakeTokens)["bound"] = &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "SEP001122334401",
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}, Cnf: token.BoundTo(thumb)}
	withThumb := func(v string) *sip.Request {
		req := invite("1001", "1002", "Bearer bound")
		if v != "" {
			req.AppendHeader(sip.NewHeader(certbind.Header, v))
		}
		return req
	}
	_, err := x.admitCall(ctx, withThumb(thumb), true)
	wantRefusal(t, err, 480, nil) // admitted: the callee is just not registered
	_, err = x.admitCall(ctx, withThumb(""), true)
	wantRefusal(t, err, 403, nil)
	_, err = x.admitCall(ctx, withThumb("AAAA0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"), true)
	wantRefusal(t, err, 403, nil)
	_, err = x.admitCall(ctx, withThumb(thumb), false) // a phone's own header on the Phone OAuth port
	wantRefusal(t, err, 403, nil)
}
