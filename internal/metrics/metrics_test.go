package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// Codes counts pre-resolved and other codes under their own label, and
// ignores provisional responses; nil metrics count nothing and do not
// panic (tiers built without them, as in unit tests).
func TestCodesAndNilMetrics(t *testing.T) {
	m := NewCore()
	m.RegisterMRA.Inc(200)
	m.RegisterMRA.Inc(200)
	m.RegisterMRA.Inc(606) // not pre-resolved
	m.RegisterMRA.Inc(100) // provisional: not a final answer
	for code, want := range map[string]float64{"200": 2, "606": 1, "100": 0} {
		if got := value(t, m.RegisterMRA.vec.WithLabelValues(code)); got != want {
			t.Errorf("code %s = %v, want %v", code, got, want)
		}
	}
	if got := value(t, m.RegisterPhone.vec.WithLabelValues("200")); got != 0 {
		t.Errorf("phone_oauth 200 = %v: the ports share children", got)
	}
	m.TokenRefused("urn:whatever", "made_up_error")
	if got := value(t, m.refused[grantIndex(GrantOther)][errorIndex("other")]); got != 1 {
		t.Errorf("unknown grant and error: counted %v under other/other, want 1", got)
	}
	var nc *Core
	var ne *Edge
	nc.RegisterCodes(true).Inc(200)
	nc.TokenIssued(GrantActivation)
	nc.TokenRefused(GrantActivation, "slow_down")
	nc.PeerAdmitted()
	nc.PeerRefused(PeerConnLimit)
	nc.LocationCommit(0, nil)
	ne.RegisterCodes().Inc(200)
	ne.Refused(EdgeNoCore)
	ne.Activation(false)
}

// The refusals whose log lines are at DEBUG (issue 12 §2) are counted by
// reason: refused calls by port and SIP code, refused config downloads by
// file and HTTP code; a nil Core counts nothing.
func TestInviteAndConfigRefusals(t *testing.T) {
	m := NewCore()
	m.InviteRefusals(true).Inc(480)
	m.InviteRefusals(false).Inc(403)
	m.InviteRefusals(false).Inc(403)
	m.ConfigRefused(ConfigDevice, 403)
	m.ConfigRefused(ConfigPhoneEdgeTrust, 401)
	m.ConfigRefused(ConfigDevice, 1000) // out of range: "0"
	for _, c := range []struct {
		got  prometheus.Counter
		want float64
	}{
		{m.InviteMRA.vec.WithLabelValues("480"), 1},
		{m.InvitePhone.vec.WithLabelValues("403"), 2},
		{m.InviteMRA.vec.WithLabelValues("403"), 0},
		{m.configRefused.WithLabelValues(ConfigDevice, "403"), 1},
		{m.configRefused.WithLabelValues(ConfigPhoneEdgeTrust, "401"), 1},
		{m.configRefused.WithLabelValues(ConfigDevice, "0"), 1},
	} {
		if got := value(t, c.got); got != c.want {
			t.Errorf("%v = %v, want %v", c.got.Desc(), got, c.want)
		}
	}
	var nc *Core
	nc.InviteRefusals(true).Inc(480)
	nc.ConfigRefused(ConfigDevice, 403)
}
