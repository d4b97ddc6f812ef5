package e2e

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/logx"
	"github.com/edgeway/edgeway/internal/reqid"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/internal/token"
)

// logBuffer is both tiers' log, kept for a test to read; waiters are woken
// on every write.
type logBuffer struct{ logx.Buffer }

func newLogBuffer() *logBuffer { return &logBuffer{} }

func (b *logBuffer) lines() ([]string, <-chan struct{}) {
	s, changed := b.Snapshot()
	return strings.Split(s, "\n"), changed
}

// waitLine returns the first line holding every part, waiting for it up
// to 10 s (a tier may log after its answer has gone out).
func (b *logBuffer) waitLine(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		lines, changed := b.lines()
	next:
		for _, l := range lines {
			for _, p := range parts {
				if !strings.Contains(l, p) {
					continue next
				}
			}
			return l
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no log line with %q; the log:\n%s", parts, strings.Join(lines, "\n"))
		}
	}
}

var ridAttr = regexp.MustCompile(`(?:^| )rid=(\S+)`)

// ridOf is the rid attribute of a text-handler line.
func ridOf(t *testing.T, line string) string {
	t.Helper()
	m := ridAttr.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no rid in %q", line)
	}
	return m[1]
}

func startLogged(t *testing.T) (*testenv.Env, *logBuffer) {
	t.Helper()
	logs := newLogBuffer()
	env := testenv.Start(t, testenv.Options{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	return env, logs
}

// Issue 12 §2: one phone's REGISTER refused at the core is logged by the
// edge and by the core under the same rid, the edge's own: the request-ID
// headers the phone wrote (in two spellings of the name) are removed at
// the edge, so the core — which believes the header on its MRA port —
// never sees them, and neither tier logs them. On the Phone OAuth port
// (no edge in between) the core ignores the header and makes its own ID.
func TestRequestIDFollowsARegisterRefusedAtTheCore(t *testing.T) {
	env, logs := startLogged(t)
	ctx := context.Background()
	tok, err := env.Phone(phoneA, true).Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	// Line 1002 is phoneB's: the core refuses it to phoneA's token (401
	// invalid_token), after the edge's pre-check let the token through.
	res := rawClient(t, env, env.Info.EdgeSIP).register(t, "1002", "rid-wrong-line", 1,
		"Authorization: Bearer "+tok.AccessToken, "Contact: <sip:1002@phone.invalid;transport=tls>", "Expires: 600",
		reqid.Header+": forged-by-phone", strings.ToLower(reqid.Header)+": forged-lower-case")
	if res.StatusCode != 401 || !strings.Contains(wwwAuth(res), "does not own line 1002") {
		t.Fatalf("REGISTER for another device's line through the edge: %d %s, want the core's 401\n%s", res.StatusCode, res.Reason, res)
	}
	coreLine := logs.waitLine(t, "tier=core", `msg="REGISTER refused"`, "sip=mra", "aor=sip:1002@")
	rid := ridOf(t, coreLine)
	if !reqid.Valid(rid) || strings.Contains(rid, "forged") {
		t.Fatalf("the core logged the refusal under rid %q, not the edge's", rid)
	}
	edgeLine := logs.waitLine(t, "tier=edge", `msg="request refused by core"`, "rid="+rid)
	if !strings.Contains(edgeLine, "status=401") || !strings.Contains(edgeLine, "method=REGISTER") {
		t.Fatalf("edge line for rid %s: %q", rid, edgeLine)
	}

	// Straight to the core's Phone OAuth port: the header is not believed.
	res = rawClient(t, env, env.Info.CorePhoneOAuth).register(t, "1002", "rid-direct", 1,
		"Authorization: Bearer "+tok.AccessToken, "Contact: <sip:1002@phone.invalid;transport=tls>", "Expires: 600",
		reqid.Header+": forged-on-5090")
	if res.StatusCode < 400 {
		t.Fatalf("REGISTER for another device's line on 5090: %d", res.StatusCode)
	}
	direct := ridOf(t, logs.waitLine(t, "tier=core", `msg="REGISTER refused"`, "sip=phone-oauth", "aor=sip:1002@"))
	if !reqid.Valid(direct) || direct == rid {
		t.Fatalf("the core logged the 5090 refusal under rid %q", direct)
	}
	lines, _ := logs.lines()
	for _, l := range lines {
		if strings.Contains(l, "forged") {
			t.Fatalf("a phone's request ID reached the log: %q", l)
		}
	}
}

// The same for HTTPS: a token request (and a config download) the core
// refuses carries the edge's ID to the core (the phone's
// X-Edgeway-Request-ID and X-Request-ID are dropped), both tiers log it,
// and the phone gets it back once in X-Request-ID for support to ask for. Straight to the core, without an
// edge's client certificate, the header is replaced.
func TestRequestIDFollowsATokenRefusal(t *testing.T) {
	env, logs := startLogged(t)
	client := env.HTTPClient()
	post := func(base string, form url.Values) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+"/oauth2/token", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set(reqid.Header, "forged-http")
		req.Header.Set(reqid.ResponseHeader, "forged-http-too")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	form := url.Values{"grant_type": {token.GrantTypeActivationCode}, "device": {phoneB},
		"activation_code": {"0000000000000000"}, "service_domain": {env.Devices[phoneB].Domain}}
	res := post(env.Info.EdgeHTTPS, form)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong activation code through the edge: %d, want 400", res.StatusCode)
	}
	ids := res.Header.Values(reqid.ResponseHeader)
	if len(ids) != 1 || !reqid.Valid(ids[0]) || strings.Contains(ids[0], "forged") {
		t.Fatalf("X-Request-ID to the phone: %q, want the edge's one ID", ids)
	}
	rid := ids[0]
	coreLine := logs.waitLine(t, "tier=core", `msg="token refused"`, "rid="+rid)
	if !strings.Contains(coreLine, "error=invalid_grant") || !strings.Contains(coreLine, "mra=true") {
		t.Fatalf("core line for rid %s: %q", rid, coreLine)
	}
	logs.waitLine(t, "tier=edge", `msg="HTTPS request refused by core"`, "status=400", "rid="+rid)

	// A config download without a token, refused by the core's config
	// server (S-2): one rid on both tiers too.
	creq, err := http.NewRequest(http.MethodGet, env.Info.EdgeHTTPS+"/"+phoneB+".cnf.xml", nil)
	if err != nil {
		t.Fatal(err)
	}
	creq.Header.Set(reqid.Header, "forged-config")
	cres, err := client.Do(creq)
	if err != nil {
		t.Fatal(err)
	}
	cres.Body.Close()
	crid := cres.Header.Get(reqid.ResponseHeader)
	if cres.StatusCode != http.StatusUnauthorized || !reqid.Valid(crid) || crid == rid {
		t.Fatalf("config download without a token through the edge: %d, X-Request-ID %q", cres.StatusCode, crid)
	}
	logs.waitLine(t, "tier=core", `msg="config download refused"`, "status=401", "rid="+crid)
	logs.waitLine(t, "tier=edge", `msg="HTTPS request refused by core"`, "status=401", "rid="+crid)

	res = post(env.Info.CoreHTTPS, form)
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong activation code on the core: %d, want 400", res.StatusCode)
	}
	direct := res.Header.Get(reqid.ResponseHeader)
	if !reqid.Valid(direct) || direct == rid || strings.Contains(direct, "forged") {
		t.Fatalf("X-Request-ID from the core to a client without a certificate: %q", direct)
	}
	logs.waitLine(t, "tier=core", `msg="token refused"`, "mra=false", "rid="+direct)
	lines, _ := logs.lines()
	for _, l := range lines {
		if strings.Contains(l, "forged") {
			t.Fatalf("a client's request ID reached the log: %q", l)
		}
	}
}
