package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/mtls"
)

// S-12 holds after the handshake: once the operator deletes the edge's
// Expressway-C entry, its open connections can neither register phones
// nor make a password login look like it came from on premises (S-18).
func TestDeletedExpresswayEntryStopsEdgeAtOnce(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	ph := env.Phone(phoneA, true)
	if _, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode); err != nil {
		t.Fatal(err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	// Pooled edge→core connections are open now; delete the entry.
	if code, body := env.Admin(t, http.MethodDelete, "/api/v1/expressway/1", nil); code != 204 {
		t.Fatalf("delete entry: %d %s", code, body)
	}
	res, err := ph.Register(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	// The delete closed the edge's MRA connection at once (the sweep runs
	// in the request) and the core refuses its new handshakes, so the edge
	// cannot forward at all: 503. A 403 would mean the old connection was
	// still open and only the per-REGISTER check stopped it.
	if res.StatusCode != 503 {
		t.Fatalf("REGISTER through a deleted Expressway-C: %d %s, want 503 (connection closed)", res.StatusCode, res.Reason)
	}
	viaEdge := env.Phone(csf, true)
	_, err = viaEdge.Login(ctx, env.Users[0].Username, env.Users[0].Password)
	expectOAuthError(t, "password grant through a deleted edge", err, http.StatusForbidden, "unauthorized_client", "S-12")
}

// RFC 3261 §10.3 step 7: a late REGISTER with a lower CSeq on the same
// Call-ID changes nothing. Bindings per line are bounded, and a Path a
// phone writes on the Phone OAuth port is not stored (RFC 3327: only
// proxies add Path).
func TestRegistrarOrderingLimitsAndPath(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	onPrem := env.Phone(phoneA, false)
	tok, err := onPrem.Onboard(ctx, env.Devices[phoneA].ActivationCode)
	if err != nil {
		t.Fatal(err)
	}
	client := rawClient(t, env, env.Info.CorePhoneOAuth)
	send := func(cseq int, expires int, extra ...string) *sip.Response {
		t.Helper()
		hdrs := append([]string{"Authorization: Bearer " + tok.AccessToken, fmt.Sprintf("Expires: %d", expires)}, extra...)
		return client.register(t, "1001", "ordering-call-id", cseq, hdrs...)
	}
	contact := "Contact: <sip:1001@phone.invalid;transport=tls>"
	if res := send(10, 600, contact, "Path: <sip:evil.example;lr>", "Supported: path"); res.StatusCode != 200 {
		t.Fatalf("first REGISTER: %d", res.StatusCode)
	}
	if res := send(5, 0, contact); res.StatusCode != 500 {
		t.Fatalf("late REGISTER with lower CSeq: %d, want 500", res.StatusCode)
	}
	regs := env.Registrations(t)
	if len(regs) != 1 {
		t.Fatalf("the late un-REGISTER removed the binding: %+v", regs)
	}
	if len(regs[0].Path) != 0 {
		t.Fatalf("a phone-supplied Path was stored on 5090: %v", regs[0].Path)
	}
	var many []string
	for i := 0; i < 11; i++ {
		many = append(many, fmt.Sprintf("Contact: <sip:1001@c%d.invalid;transport=tls>", i))
	}
	if res := send(11, 600, many...); res.StatusCode != 403 {
		t.Fatalf("11 more contacts: %d, want 403", res.StatusCode)
	}
	if n := len(env.Registrations(t)); n != 1 {
		t.Fatalf("bindings after a refused REGISTER = %d, want 1", n)
	}
	// RFC 3261 §10.3 step 8: the 200 lists every binding the AOR holds
	// after the request, with its remaining expiry.
	second := "Contact: <sip:1001@second.invalid;transport=tls>;expires=300"
	// Expiries count down from the first REGISTER: a slow machine may
	// show one second less.
	contactsOf := func(res *sip.Response) string {
		var out []string
		for _, h := range res.GetHeaders("Contact") {
			out = append(out, strings.NewReplacer("expires=599", "expires=600", "expires=299", "expires=300").Replace(h.Value()))
		}
		return strings.Join(out, " | ")
	}
	res := send(12, 600, second)
	if want := "<sip:1001@phone.invalid;transport=tls>;expires=600 | <sip:1001@second.invalid;transport=tls>;expires=300"; res.StatusCode != 200 || contactsOf(res) != want {
		t.Fatalf("adding a second contact: %d, Contact %q, want %q", res.StatusCode, contactsOf(res), want)
	}
	res = send(13, 0, contact)
	if want := "<sip:1001@second.invalid;transport=tls>;expires=300"; res.StatusCode != 200 || contactsOf(res) != want {
		t.Fatalf("removing the first: %d, Contact %q, want %q", res.StatusCode, contactsOf(res), want)
	}
	res = send(14, 0, "Contact: *")
	if res.StatusCode != 200 || contactsOf(res) != "" {
		t.Fatalf("Contact: * with Expires 0: %d, Contact %q, want none", res.StatusCode, contactsOf(res))
	}
	if n := len(env.Registrations(t)); n != 0 {
		t.Fatalf("bindings after un-REGISTER = %d", n)
	}
}

// S-11 holds after the handshake too: an edge admitted because its
// certificate chains to a CA uploaded to tomcat-trust is shut out as soon
// as that CA is deleted, open connections included.
func TestDeletedTrustCAStopsEdgeAtOnce(t *testing.T) {
	expCA, err := mtls.NewCA("Expressway CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		certPEM, keyPEM, err := expCA.Issue(mtls.CertRequest{CommonName: "expc.edgeway.test", Names: []string{"expc.edgeway.test"}, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		l.Edge.TLS.MTLSCert, l.Edge.TLS.MTLSKey = filepath.Join(l.Dir, "expc.pem"), filepath.Join(l.Dir, "expc-key.pem")
		for path, b := range map[string][]byte{l.Edge.TLS.MTLSCert: certPEM, l.Edge.TLS.MTLSKey: keyPEM} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		l.Edge.CoreRetry = 100 * time.Millisecond
	}})
	ctx := context.Background()
	code, body := env.Admin(t, http.MethodPost, "/api/v1/trust/tomcat-trust", expCA.CertPEM)
	var uploaded []struct {
		Fingerprint string `json:"fingerprint_sha256"`
	}
	if code != http.StatusCreated && code != http.StatusOK || json.Unmarshal(body, &uploaded) != nil || len(uploaded) != 1 {
		t.Fatalf("upload the Expressway CA: %d %s", code, body)
	}
	ph := env.Phone(phoneA, true)
	var onboardErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, onboardErr = ph.Onboard(ctx, env.Devices[phoneA].ActivationCode); onboardErr == nil {
			break
		}
	}
	if onboardErr != nil {
		t.Fatalf("onboarding once the edge's CA is in tomcat-trust: %v", onboardErr)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register: %v %v", res, err)
	}
	if code, body := env.Admin(t, http.MethodDelete, "/api/v1/trust/tomcat-trust/"+uploaded[0].Fingerprint, nil); code != http.StatusNoContent {
		t.Fatalf("delete the CA: %d %s", code, body)
	}
	res, err := ph.Register(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	// 503: the open connection was closed and new handshakes fail; a 200
	// would mean the edge still rode a connection admitted under the CA.
	if res.StatusCode != 503 {
		t.Fatalf("REGISTER after its CA left tomcat-trust: %d %s, want 503", res.StatusCode, res.Reason)
	}
}
