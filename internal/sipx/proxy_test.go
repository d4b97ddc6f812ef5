package sipx

import (
	"errors"
	"strings"
	"testing"
)

// RFC 3261 §16.6 step 3: the copy a proxy forwards has Max-Forwards one
// lower; the request it answers on (the server transaction's) keeps its
// own. sipgo's Clone shares the Max-Forwards value between the two.
func TestPrepareForwardLeavesRequestAlone(t *testing.T) {
	req := register(t)
	before := req.String()
	fwd, err := PrepareForward(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := fwd.MaxForwards().Val(); got != 69 {
		t.Errorf("forwarded Max-Forwards = %d, want 69", got)
	}
	if got := fwd.GetHeader("Max-Forwards").Value(); got != "69" {
		t.Errorf("forwarded Max-Forwards header = %q, want 69", got)
	}
	if got := req.MaxForwards().Val(); got != 70 {
		t.Errorf("original Max-Forwards = %d after PrepareForward, want 70", got)
	}
	if after := req.String(); after != before {
		t.Errorf("PrepareForward changed the request:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Forwarding the same request again gives the same copy.
	again, err := PrepareForward(req)
	if err != nil || again.String() != fwd.String() {
		t.Errorf("second PrepareForward = %v, %v; want the first copy", again, err)
	}
}

// RFC 3261 §16.3 step 3: Max-Forwards 1 (or 0) is not forwarded.
func TestPrepareForwardTooManyHops(t *testing.T) {
	for _, mf := range []string{"0", "1"} {
		lines := append([]string{}, registerHead...)
		for i, l := range lines {
			if strings.HasPrefix(l, "Max-Forwards:") {
				lines[i] = "Max-Forwards: " + mf
			}
		}
		req := parseRequest(t, append(lines, "Content-Length: 0")...)
		if _, err := PrepareForward(req); !errors.Is(err, ErrTooManyHops) {
			t.Errorf("Max-Forwards %s: err = %v, want ErrTooManyHops", mf, err)
		}
		if got := req.MaxForwards().Val(); got != uint32(mf[0]-'0') {
			t.Errorf("Max-Forwards %s changed to %d", mf, got)
		}
	}
}
