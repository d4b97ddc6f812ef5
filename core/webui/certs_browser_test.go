package webui_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/edgeway/edgeway/internal/testenv"
)

// In a real browser: a CA certificate chosen in the file input uploads
// (multipart, with the form's CSRF field) to phone-edge-trust and is
// listed; a bulk import pasted with one unknown device shows its refusal
// and the issued code; both pages fit a phone's width.
func TestBrowserCertsAndBulk(t *testing.T) {
	ctx := browser(t)
	u := startUI(t, testenv.Options{})
	dir := screenshotDir(t)
	ca := newCA(t, "Browser test Tomcat root")
	fp := fingerprint(t, ca)
	file := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(file, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "logging in", chromedp.Navigate(u.base+"/ui/login"),
		chromedp.SendKeys(chromedp.ID("account"), account),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main menu"]`)))
	do(t, ctx, "uploading a CA file",
		chromedp.Click(chromedp.CSS(`a[href="/ui/certs"]`)),
		chromedp.WaitVisible(chromedp.ID("cert-file")),
		chromedp.SetValue(chromedp.ID("cert-store"), "phone-edge-trust"),
		chromedp.SetUploadFiles(chromedp.ID("cert-file"), []string{file}),
		chromedp.Click(chromedp.ID("upload")),
		chromedp.WaitVisible(chromedp.ID("upload-done")),
		chromedp.WaitVisible(chromedp.ID("delete-phone-edge-trust-"+fp)))
	if !hasFingerprint(u.trust("phone-edge-trust"), fp) {
		t.Fatalf("the CA uploaded in the browser is not in phone-edge-trust")
	}
	shot(t, ctx, dir, "certs")

	do(t, ctx, "bulk import",
		chromedp.Navigate(u.base+"/ui/activation/bulk"),
		chromedp.WaitVisible(chromedp.ID("bulk-csv")),
		chromedp.SendKeys(chromedp.ID("bulk-csv"), "device\nSEP001122334401\nSEPNOSUCH0003\n"),
		chromedp.Click(chromedp.ID("bulk-issue")),
		chromedp.WaitVisible(chromedp.ID("bulk-refusals")))
	if ref := get(t, ctx, "refusals", chromedp.Text(chromedp.ID("bulk-refusals"))); !strings.Contains(ref, "SEPNOSUCH0003") || !strings.Contains(ref, "not found") {
		t.Errorf("refusals shown: %q", ref)
	}
	if iss := get(t, ctx, "issued", chromedp.Text(chromedp.ID("bulk-issued"))); !strings.Contains(iss, "SEP001122334401") {
		t.Errorf("issued codes shown: %q", iss)
	}
	shot(t, ctx, dir, "bulk")
	for _, path := range []string{"/ui/certs", "/ui/activation/bulk"} {
		do(t, ctx, "phone width "+path, chromedp.EmulateViewport(390, 844), chromedp.Navigate(u.base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
		if get(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`)) {
			t.Errorf("%s scrolls sideways at phone width", path)
		}
	}
}
