package sipx

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// DrainRetryAfter is the Retry-After (seconds) of the 503 a draining node
// answers: soon, and by then at another node of the caller's list.
const DrainRetryAfter = 5

// drainingReason is the RFC 3326 Reason a draining node puts on its 503,
// so the hop before it can tell "this node is going away" from a 503 for
// any other cause.
const drainingReason = `SIP;cause=503;text="draining"`

// DrainingResponse is a draining node's answer to a request it will not
// take on (a new call, an edge's health check): 503 Service Unavailable
// with Retry-After (RFC 3261 §21.5.4, §20.33) and the Reason "draining"
// (RFC 3326).
func DrainingResponse(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(DrainRetryAfter)))
	res.AppendHeader(sip.NewHeader("Reason", drainingReason))
	return res
}

// IsDraining reports whether res is a 503 whose Reason says the node that
// sent it drains. Only the answer of the node itself can be believed (a
// 503 relayed from further on may carry anything), so callers act on it
// only for a request the node answers itself, such as OPTIONS to its
// address (edge/corecheck.go).
func IsDraining(res *sip.Response) bool {
	if res == nil || res.StatusCode != 503 {
		return false
	}
	for _, h := range res.GetHeaders("Reason") {
		v := h.Value()
		if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(v)), "SIP") {
			continue
		}
		for _, p := range strings.Split(v, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "text") && strings.EqualFold(strings.Trim(strings.TrimSpace(val), `"`), "draining") {
				return true
			}
		}
	}
	return false
}
