package webui_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/testenv"
)

// The chapter's task flow, S-8 → S-19, entirely through the pages of a
// real browser, on a core and edge that start with nothing configured
// (testenv.StartChapter, as the CLI's task-flow test starts): SIP OAuth
// mode off, no profile, device or Expressway-C entry, no Phone-Edge-Trust,
// and an edge certificate from the Expressway's own CA. It ends as the
// chapter does: an activation code issued on the page, read back from its
// QR image, onboards a phone through the edge, which registers, refreshes
// (S-10), downloads Phone-Edge-Trust holding the Tomcat root (S-8) and
// shows on the live registrations page.
//
// The flow only succeeds if every page really did its step: the CLI's
// task-flow test (cmd/edgeway TestChapterTaskFlow) shows that leaving out
// any of S-8, S-10, S-11, S-12, S-7, S-13, S-14, S-15 or S-17 stops it.
func TestBrowserChapterTaskFlow(t *testing.T) {
	ctx := browser(t)
	const (
		edgeName = "expc.web.example"
		device   = "SEP00AABBCCDD02"
		line     = "2002"
		profile  = "OAuth 8845 Profile"
		domain   = "edgeway.test"
	)
	env, ch := testenv.StartChapter(t, edgeName)
	u := uiOn(t, env)
	dir := screenshotDir(t)
	open := func(path, ready string) {
		t.Helper()
		do(t, ctx, "opening "+path, chromedp.Navigate(u.base+path), chromedp.WaitVisible(chromedp.ID(ready)))
	}
	text := func(id string) string {
		t.Helper()
		return strings.TrimSpace(get(t, ctx, "text of #"+id, chromedp.Text(chromedp.ID(id))))
	}
	// setParam sets an Enterprise Parameter through its select and waits
	// for the page (after its redirect) to show the new value.
	setParam := func(name, value string) {
		t.Helper()
		open("/ui/params", "value-"+name)
		do(t, ctx, "parameter "+name+" = "+value,
			chromedp.SetValue(chromedp.ID("value-"+name), value),
			chromedp.Click(chromedp.ID("save-"+name)),
			chromedp.WaitVisible(chromedp.Search(`//td[@id="current-`+name+`"][normalize-space(.)="`+value+`"]`)),
		)
	}
	// upload puts a PEM file into a trust store through the file input.
	upload := func(store, file string) {
		t.Helper()
		open("/ui/certs", "cert-store")
		do(t, ctx, "uploading "+file+" to "+store,
			chromedp.SetValue(chromedp.ID("cert-store"), store),
			chromedp.SetUploadFiles(chromedp.ID("cert-file"), []string{file}),
			chromedp.Click(chromedp.ID("upload")),
			chromedp.WaitVisible(chromedp.ID("upload-done")),
		)
	}
	checked := func(id string) bool {
		t.Helper()
		return get(t, ctx, "#"+id+" checked", chromedp.Evaluate[bool](`document.getElementById("`+id+`").checked`))
	}

	// Log in.
	open("/ui/login", "account")
	do(t, ctx, "logging in",
		chromedp.SendKeys(chromedp.ID("account"), account),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main menu"]`)),
	)

	// S-8: the CA that roots the Tomcat certificate into Phone-Edge-Trust.
	upload("phone-edge-trust", ch.TomcatCA)
	if tbl := text("trust-phone-edge-trust"); !strings.Contains(tbl, "uploaded") {
		t.Errorf("S-8: phone-edge-trust lists no uploaded certificate:\n%s", tbl)
	}
	shot(t, ctx, dir, "taskflow-01-certs")

	// S-9, S-10: Enterprise Parameters.
	setParam("oauth_access_token_for_devices", "explicit")
	setParam("oauth_refresh_login_flow", "enabled")
	shot(t, ctx, dir, "taskflow-02-params")

	// S-11: the node's ports as they are; tomcat-trust must verify the
	// Expressway-C's certificate, which another CA issued.
	open("/ui/nodes", "nodes")
	if tbl := text("nodes"); !strings.Contains(tbl, env.Layout.Core.Node) {
		t.Errorf("S-11: the node %s is not listed:\n%s", env.Layout.Core.Node, tbl)
	}
	upload("tomcat-trust", ch.ExpresswayCA)

	// S-12: Find shows the name the edge's certificate presents, once the
	// core verifies it (the edge retries every 100 ms); add the entry.
	deadline := time.Now().Add(10 * time.Second)
	for {
		open("/ui/expressway", "address")
		if strings.Contains(text("main"), edgeName) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("S-12: Find never listed %s after tomcat-trust verified it", edgeName)
		}
		time.Sleep(100 * time.Millisecond)
	}
	do(t, ctx, "adding the Expressway-C entry",
		chromedp.SendKeys(chromedp.ID("address"), "127.0.0.1"),
		chromedp.SendKeys(chromedp.ID("names"), edgeName),
		chromedp.SendKeys(chromedp.ID("description"), "DMZ edge"),
		chromedp.Click(chromedp.ID("add")),
		chromedp.WaitVisible(chromedp.Search(`//td[starts-with(normalize-space(.), "yes (entry")]`)),
	)
	shot(t, ctx, dir, "taskflow-03-expressway")

	// S-7, S-13: export control, then utils sipOAuth-mode enable; S-14:
	// the node waits for a CallManager restart, which the page offers.
	setParam("export_controlled_allowed", "true")
	open("/ui/sipoauth", "sipoauth-enable")
	do(t, ctx, "utils sipOAuth-mode enable", chromedp.Click(chromedp.ID("sipoauth-enable")), chromedp.WaitVisible(chromedp.ID("waiting")))
	if w := text("waiting"); !strings.Contains(w, "S-14") {
		t.Errorf("S-14: the waiting notice does not name the rule: %q", w)
	}
	shot(t, ctx, dir, "taskflow-04-sipoauth")
	do(t, ctx, "restarting CallManager", chromedp.Click(chromedp.ID("restart-callmanager")), chromedp.WaitVisible(chromedp.ID("in-effect")))

	// S-15, S-16: the profile; with Digest the API refuses (S-16).
	open("/ui/profiles", "profile-name")
	do(t, ctx, "an OAuth profile",
		chromedp.SendKeys(chromedp.ID("profile-name"), profile),
		chromedp.SendKeys(chromedp.ID("profile-device-type"), "8845"),
		chromedp.SetValue(chromedp.ID("profile-mode"), "encrypted"),
		chromedp.SetValue(chromedp.ID("profile-transport"), "TLS"),
	)
	if !checked("profile-oauth") {
		do(t, ctx, "Enable OAuth Authentication", chromedp.Click(chromedp.ID("profile-oauth")))
	}
	if !checked("profile-digest") {
		do(t, ctx, "Enable Digest Authentication", chromedp.Click(chromedp.ID("profile-digest")))
	}
	do(t, ctx, "saving with Digest", chromedp.Click(chromedp.ID("profile-save")), chromedp.WaitVisible(chromedp.ID("profile-error")))
	if e := text("profile-error"); !strings.HasPrefix(e, "S-16: ") {
		t.Errorf("saving an OAuth profile with Digest: %q, want the API's S-16 refusal", e)
	}
	if checked("profile-digest") {
		do(t, ctx, "Digest off", chromedp.Click(chromedp.ID("profile-digest")))
	}
	do(t, ctx, "saving the profile", chromedp.Click(chromedp.ID("profile-save")), chromedp.WaitVisible(chromedp.ID("profile-delete-OAuth-8845-Profile")))
	shot(t, ctx, dir, "taskflow-05-profiles")

	// S-17, S-19: the phone, then Save and Apply Config.
	open("/ui/phones/new", "name")
	do(t, ctx, "the phone's configuration",
		chromedp.SendKeys(chromedp.ID("name"), device),
		chromedp.SendKeys(chromedp.ID("model"), "8845"),
		chromedp.SendKeys(chromedp.ID("line"), line),
		chromedp.SetValue(chromedp.ID("profile"), profile),
	)
	if !checked("allow-mra") {
		do(t, ctx, "Allow Activation Code via MRA", chromedp.Click(chromedp.ID("allow-mra")))
	}
	// Without the service domain the API refuses (S-17).
	do(t, ctx, "saving without a service domain", chromedp.Click(chromedp.ID("save")), chromedp.WaitVisible(chromedp.ID("phone-error")))
	if e := text("phone-error"); !strings.HasPrefix(e, "S-17: ") {
		t.Errorf("activation via MRA without a service domain: %q, want the API's S-17 refusal", e)
	}
	do(t, ctx, "saving the phone",
		chromedp.SendKeys(chromedp.ID("mra-domain"), domain),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("apply-config")),
	)
	do(t, ctx, "Apply Config", chromedp.Click(chromedp.ID("apply-config")),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="phone-status"][starts-with(normalize-space(.), "Apply Config:")]`)))
	shot(t, ctx, dir, "taskflow-06-phone")

	// The activation code, from the phone's page; its QR image read back.
	do(t, ctx, "issuing the activation code",
		chromedp.Click(chromedp.ID("generate-code")),
		chromedp.WaitVisible(chromedp.ID("issue")),
		chromedp.SetValue(chromedp.ID("device"), device),
		chromedp.Click(chromedp.ID("issue")),
		chromedp.WaitVisible(chromedp.ID("issued-qr")),
	)
	shown := text("issued-code")
	src := get(t, ctx, "QR image", chromedp.AttributeValue(chromedp.ID("issued-qr"), "src"))
	if !src.Exists {
		t.Fatal("no QR image on the page")
	}
	code := decodeQR(t, src.Value)
	if code != shown {
		t.Fatalf("the QR code reads %q, the page shows %q", code, shown)
	}

	// The phone scans it: onboards through the edge, registers, refreshes
	// (S-10) and trusts the core through Phone-Edge-Trust (S-8).
	ph, err := bench.NewPhone(bench.PhoneConfig{Device: device, Line: line, Domain: domain, RootCAs: env.CA,
		EdgeHTTPS: env.Info.EdgeHTTPS, EdgeSIP: env.Info.EdgeSIP})
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ph.Onboard(pctx, code); err != nil {
		t.Fatalf("onboarding through the edge with the scanned code: %v", err)
	}
	res, err := ph.Register(pctx, 600)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("REGISTER through the edge: %v %v", res, err)
	}
	if _, err := ph.Refresh(pctx); err != nil {
		t.Fatalf("refresh (S-10): %v", err)
	}
	bundle, status, err := ph.FetchFile(pctx, "/phone-edge-trust.pem")
	if err != nil || status != http.StatusOK || !ch.HoldsTomcatCA(bundle) {
		t.Fatalf("S-8: Phone-Edge-Trust through the edge: HTTP %d %v, holds the Tomcat root: %v", status, err, ch.HoldsTomcatCA(bundle))
	}

	// The phone on the live registrations page, through the Expressway-C.
	open("/ui/registrations?device="+device, "registrations")
	row := get(t, ctx, "the phone's row", chromedp.Text(chromedp.Search(`//table[@id="registrations"]//td[text()="`+device+`"]/..`)))
	if !strings.Contains(row, line) || !strings.Contains(row, edgeName) {
		t.Errorf("the phone's row %q lacks its line %s or its edge %s", row, line, edgeName)
	}
	shot(t, ctx, dir, "taskflow-07-registrations")

	// Every step is in the audit log under the account that made it.
	open("/ui/audit", "audit")
	audit := text("audit")
	for _, action := range []string{"trust.upload", "params.set", "expressway.add", "utils.sipoauth-mode", "service.restart", "profile.set", "device.set", "device.apply-config", "activation.issue"} {
		if !strings.Contains(audit, action) {
			t.Errorf("the audit page lacks %s", action)
		}
	}
	if !strings.Contains(audit, account+" (token") {
		t.Errorf("the audit page does not name %s as the author", account)
	}
}
