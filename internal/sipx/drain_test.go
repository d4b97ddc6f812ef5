package sipx

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestDrainingResponse(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1001", Host: "example.com"})
	res := DrainingResponse(req)
	if res.StatusCode != 503 {
		t.Fatalf("status %d, want 503", res.StatusCode)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "5" {
		t.Fatalf("Retry-After %v, want 5", h)
	}
	if !IsDraining(res) {
		t.Fatalf("IsDraining(%q) = false", res.String())
	}
}

func TestIsDraining(t *testing.T) {
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "core.example.com"})
	for _, c := range []struct {
		code   int
		reason []string
		want   bool
	}{
		{503, []string{`SIP;cause=503;text="draining"`}, true},
		{503, []string{`sip ; cause=503 ; text = "Draining"`}, true},
		{503, []string{`Q.850;cause=16;text="Terminated"`, `SIP;cause=503;text="draining"`}, true},
		{503, nil, false}, // a plain 503: overload, no core…
		{503, []string{`SIP;cause=503;text="overloaded"`}, false},   // another reason
		{503, []string{`Q.850;cause=41;text="draining"`}, false},    // not a SIP cause
		{500, []string{`SIP;cause=503;text="draining"`}, false},     // not a 503
		{503, []string{`SIP;cause=503;text="draining-not"`}, false}, // not the word
	} {
		res := sip.NewResponseFromRequest(req, c.code, "x", nil)
		for _, r := range c.reason {
			res.AppendHeader(sip.NewHeader("Reason", r))
		}
		if got := IsDraining(res); got != c.want {
			t.Errorf("IsDraining(%d %q) = %v, want %v", c.code, c.reason, got, c.want)
		}
	}
	if IsDraining(nil) {
		t.Error("IsDraining(nil) = true")
	}
}
