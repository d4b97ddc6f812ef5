package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/testenv"
)

// The chapter's task flow, step by step, through `edgeway admin` against a
// running core and edge that start with nothing configured: SIP OAuth mode
// off, no profile, no device, no Expressway-C entry, and an edge whose
// certificate comes from the Expressway's own CA, which the core does not
// trust yet. The flow ends with an MRA phone onboarded and registered.
//
// Each step that the outcome depends on is also left out once, in its own
// run, and that run must fail: the flow is only as real as the failures
// of its shortcuts.

const (
	flowDevice  = "SEP00AABBCCDD01"
	flowLine    = "2001"
	flowProfile = "OAuth 8845 Profile"
	flowDomain  = "edgeway.test"
)

// flowStep is one step of the chapter, run through the CLI.
type flowStep struct {
	rule     string
	what     string
	needed   bool   // skipping it must make the flow fail …
	fails    string // … with an error that says this
	commands func(f *flow) [][]string
}

type flow struct {
	t          *testing.T
	env        *testenv.Env
	ch         *testenv.Chapter
	expCA      string // the Expressway's CA certificate file
	coreCAFile string // the CA that roots the Tomcat certificate
	nodeName   string
}

func flowSteps() []flowStep {
	return []flowStep{
		{"S-8", "upload the Tomcat root CA to Phone-Edge-Trust", true, "Phone-Edge-Trust download: HTTP 404", func(f *flow) [][]string {
			return [][]string{{"trust", "upload", "--store", "phone-edge-trust", f.coreCAFile}, {"trust", "list", "--store", "phone-edge-trust"}}
		}},
		{"S-9", "OAuth Access Token for Devices = explicit", false, "", func(f *flow) [][]string {
			return [][]string{{"params", "set", "oauth_access_token_for_devices", "explicit"}}
		}},
		{"S-10", "OAuth with Refresh Login Flow = enabled", true, "refresh (S-10)", func(f *flow) [][]string {
			return [][]string{{"params", "set", "oauth_refresh_login_flow", "enabled"}}
		}},
		{"S-11", "tomcat-trust verifies the Expressway-C certificate (another CA: upload it)", true, "the core cannot be reached", func(f *flow) [][]string {
			return [][]string{{"node", "list"}, {"trust", "upload", "--store", "tomcat-trust", f.expCA}}
		}},
		{"S-12", "Find the Expressway-C's names and add the entry", true, "the core cannot be reached", func(f *flow) [][]string {
			f.waitForFind("expc.flow.example")
			return [][]string{{"expressway", "find"}, {"expressway", "add", "--address", "127.0.0.1", "--name", "expc.flow.example", "--description", "DMZ edge"}}
		}},
		{"S-7", "the cluster allows export-controlled functionality", true, "S-7: the cluster is not registered", func(f *flow) [][]string {
			return [][]string{{"params", "set", "export_controlled_allowed", "true"}}
		}},
		{"S-13", "utils sipOAuth-mode enable on the publisher", true, "S-13/S-14: SIP OAuth mode is not enabled", func(f *flow) [][]string {
			return [][]string{{"utils", "sipOAuth-mode", "enable"}, {"utils", "sipOAuth-mode", "status"}}
		}},
		{"S-14", "restart the CallManager service on the node", true, "S-13/S-14: SIP OAuth mode is not enabled", func(f *flow) [][]string {
			return [][]string{{"service", "restart", "callmanager"}}
		}},
		{"S-15", "an Encrypted/TLS security profile with OAuth", true, "security profile \"OAuth 8845 Profile\"", func(f *flow) [][]string {
			return [][]string{{"profile", "set", flowProfile, "--mode", "encrypted", "--transport", "TLS", "--oauth", "--device-type", "8845"}}
		}},
		{"S-17", "the phone: activation via MRA in its service domain, the OAuth profile", true, "device \"SEP00AABBCCDD01\"", func(f *flow) [][]string {
			return [][]string{{"device", "set", flowDevice, "--model", "8845", "--line", flowLine, "--profile", flowProfile,
				"--allow-mra", "--mra-domain", flowDomain}}
		}},
		{"S-19", "Save, then Apply Config", false, "", func(f *flow) [][]string {
			return [][]string{{"device", "show", flowDevice}, {"device", "apply-config", flowDevice}}
		}},
	}
}

// startFlowEnv starts a bare core and edge as the chapter finds them
// (testenv.StartChapter).
func startFlowEnv(t *testing.T) *flow {
	env, ch := testenv.StartChapter(t, "expc.flow.example")
	return &flow{t: t, env: env, ch: ch, expCA: ch.ExpresswayCA, coreCAFile: ch.TomcatCA, nodeName: env.Layout.Core.Node}
}

func (f *flow) admin(args ...string) (string, error) {
	var out bytes.Buffer
	conn := []string{"--core", f.env.Info.CoreHTTPS, "--token-file", f.env.Info.AdminTokenFile, "--ca", f.env.Info.CACert}
	err := runAdmin(context.Background(), append(conn, args...), &out)
	return out.String(), err
}

// waitForFind waits (bounded) until the edge's retries have shown the core
// its certificate — which the core lists only once tomcat-trust verifies it.
func (f *flow) waitForFind(name string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, err := f.admin("expressway", "find")
		if err == nil && strings.Contains(out, name) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run walks the flow, leaving out step skip (-1: none), and reports the
// first thing that failed, or nil when the phone is onboarded, registered
// through the edge and refreshed, and has the Tomcat root from
// Phone-Edge-Trust.
func (f *flow) run(skip int) error {
	for i, st := range flowSteps() {
		if i == skip {
			continue
		}
		for _, cmd := range st.commands(f) {
			if out, err := f.admin(cmd...); err != nil {
				return fmt.Errorf("%s %s: edgeway admin %s: %v\n%s", st.rule, st.what, strings.Join(cmd, " "), err, out)
			}
		}
	}
	out, err := f.admin("activation", "issue", flowDevice)
	if err != nil {
		return fmt.Errorf("activation issue: %v", err)
	}
	code := regexp.MustCompile(`\d{4}-\d{4}-\d{4}-\d{4}`).FindString(out)
	if code == "" {
		return fmt.Errorf("no activation code in %q", out)
	}
	ph, err := bench.NewPhone(bench.PhoneConfig{Device: flowDevice, Line: flowLine, Domain: flowDomain, RootCAs: f.env.CA,
		EdgeHTTPS: f.env.Info.EdgeHTTPS, EdgeSIP: f.env.Info.EdgeSIP})
	if err != nil {
		return err
	}
	defer ph.Close()
	ctx := context.Background()
	if _, err := ph.Onboard(ctx, code); err != nil {
		return fmt.Errorf("onboarding through the edge: %w", err)
	}
	res, err := ph.Register(ctx, 600)
	if err != nil {
		return fmt.Errorf("REGISTER: %w", err)
	}
	if res.StatusCode != 200 {
		warning := ""
		if h := res.GetHeader("Warning"); h != nil {
			warning = h.Value()
		}
		return fmt.Errorf("REGISTER through the edge: %d %s %s", res.StatusCode, res.Reason, warning)
	}
	if _, err := ph.Refresh(ctx); err != nil {
		return fmt.Errorf("refresh (S-10): %w", err)
	}
	// S-8: the phone can fetch Phone-Edge-Trust and it holds the root of
	// the core's Tomcat certificate.
	bundle, status, err := ph.FetchFile(ctx, "/phone-edge-trust.pem")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("Phone-Edge-Trust download: HTTP %d %v", status, err)
	}
	if !f.ch.HoldsTomcatCA(bundle) {
		return fmt.Errorf("S-8: Phone-Edge-Trust does not hold the Tomcat root CA")
	}
	return nil
}

func TestChapterTaskFlow(t *testing.T) {
	t.Run("all steps", func(t *testing.T) {
		f := startFlowEnv(t)
		if err := f.run(-1); err != nil {
			t.Fatalf("the full task flow failed: %v", err)
		}
		regs := f.env.Registrations(t)
		if len(regs) != 1 || !regs[0].MRA || regs[0].Edge != "expc.flow.example" || regs[0].Device != flowDevice {
			t.Fatalf("bindings = %+v, want one MRA binding of %s through expc.flow.example", regs, flowDevice)
		}
		out, err := f.admin("audit")
		if err != nil || !strings.Contains(out, "utils.sipoauth-mode") || !strings.Contains(out, "service.restart") {
			t.Fatalf("audit does not show the flow's changes: %v\n%s", err, out)
		}
	})
	for i, st := range flowSteps() {
		if !st.needed {
			continue
		}
		t.Run("without "+st.rule, func(t *testing.T) {
			f := startFlowEnv(t)
			err := f.run(i)
			if err == nil {
				t.Fatalf("the flow succeeded without %s (%s)", st.rule, st.what)
			}
			if !strings.Contains(err.Error(), st.fails) {
				t.Fatalf("without %s the flow failed for another reason: %v (want %q)", st.rule, err, st.fails)
			}
			t.Logf("without %s: %v", st.rule, firstLine(err.Error()))
		})
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
