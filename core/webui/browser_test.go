package webui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/edgeway/edgeway/internal/testenv"
)

// browser starts Debian's chromium headless through chromedp. Without
// chromium the test is skipped, except under CI=true, where .ci/run
// installs it and the test must run.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no chromium on PATH (apt-get install chromium): %v", err)
		}
		t.Skipf("no chromium on PATH: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI
		chromedp.Flag("disable-dev-shm-usage", true),
		// The core's certificate is from the test's own dev CA, which
		// chromium's store does not hold; the Go tests check TLS.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1200, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first Run starts the browser for the life of ctx (no timeout
	// on it: steps get their own).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// stepTimeout bounds one group of browser steps.
const stepTimeout = 30 * time.Second

// do runs browser steps, failing the test with what they were for.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one browser action that returns a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshotDir is docs/ui/ with EDGEWAY_UI_SCREENSHOTS=1 (for the
// README), else the test's temp dir.
func screenshotDir(t *testing.T) string {
	if os.Getenv("EDGEWAY_UI_SCREENSHOTS") == "1" {
		dir := filepath.Join("..", "..", "docs", "ui")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	b := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100)) // 100: PNG
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// decodeQR reads the QR code in a data:image/png;base64 URL.
func decodeQR(t *testing.T, src string) string {
	t.Helper()
	b64, ok := strings.CutPrefix(src, "data:image/png;base64,")
	if !ok {
		t.Fatalf("the QR image is not a PNG data: URL: %.60s", src)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the QR image is no PNG: %v", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("no QR code read from the page's image: %v", err)
	}
	return res.GetText()
}

// An administrator, in a real browser: logs in through the form, adds an
// Expressway-C entry (and sees the API's S-12 refusal for one without
// names), issues an activation code for a provisioned device, and the QR
// code on the page reads back as the code shown as text; a simulated
// phone onboards with that code through the edge and registers, and its
// row appears on the live registrations page.
func TestBrowserAdministratorFlow(t *testing.T) {
	ctx := browser(t)
	u := startUI(t, testenv.Options{})
	dir := screenshotDir(t)
	const device, line = "SEP001122334401", "1001"

	// Log in.
	do(t, ctx, "login page", chromedp.Navigate(u.base+"/"), chromedp.WaitVisible(chromedp.ID("account")))
	shot(t, ctx, dir, "login")
	do(t, ctx, "logging in",
		chromedp.SendKeys(chromedp.ID("account"), account),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main menu"]`)),
	)
	if h := get(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1"))); h != "Device → Expressway-C" {
		t.Fatalf("after login the page is %q", h)
	}

	// A wrong input: the API's own refusal, naming S-12.
	do(t, ctx, "adding without names",
		chromedp.SendKeys(chromedp.ID("address"), "expc-ui.example.com"),
		chromedp.Click(chromedp.ID("add")),
		chromedp.WaitVisible(chromedp.ID("add-error")),
	)
	if refusal := get(t, ctx, "refusal", chromedp.Text(chromedp.ID("add-error"))); refusal != "S-12: an Expressway-C entry needs at least one X.509 subject name / SAN" {
		t.Errorf("refusal shown: %q", refusal)
	}
	// The form kept the address; add the names and submit again.
	do(t, ctx, "adding an Expressway-C entry",
		chromedp.SendKeys(chromedp.ID("names"), "expc-ui.example.com, expc-ui2.example.com"),
		chromedp.SendKeys(chromedp.ID("description"), "added in the browser"),
		chromedp.Click(chromedp.ID("add")),
		chromedp.WaitVisible(chromedp.Search(`//td[contains(., "expc-ui2.example.com")]`)),
	)
	found := false
	for _, e := range u.expressways() {
		found = found || e.Address == "expc-ui.example.com" && e.Description == "added in the browser" && len(e.Names) == 2
	}
	if !found {
		t.Fatalf("the entry added in the browser is not in the API's list: %+v", u.expressways())
	}
	shot(t, ctx, dir, "expressway")

	// Issue an activation code and read the QR code back.
	do(t, ctx, "issuing an activation code",
		chromedp.Click(chromedp.CSS(`a[href="/ui/activation"]`)),
		chromedp.WaitVisible(chromedp.ID("device")),
		chromedp.SetValue(chromedp.ID("device"), device),
		chromedp.Click(chromedp.ID("issue")),
		chromedp.WaitVisible(chromedp.ID("issued-qr")),
	)
	shown := strings.TrimSpace(get(t, ctx, "code text", chromedp.Text(chromedp.ID("issued-code"))))
	src := get(t, ctx, "QR image", chromedp.AttributeValue(chromedp.ID("issued-qr"), "src"))
	shot(t, ctx, dir, "activation")
	if !src.Exists || shown == "" {
		t.Fatalf("no code or QR image on the page (code %q)", shown)
	}
	scanned := decodeQR(t, src.Value)
	if scanned != shown {
		t.Fatalf("the QR code reads %q, the page shows %q", scanned, shown)
	}

	// A phone scans it, onboards through the edge and registers.
	ph := u.env.Phone(device, true)
	pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ph.Onboard(pctx, scanned); err != nil {
		t.Fatalf("onboarding with the scanned code: %v", err)
	}
	if res, err := ph.Register(pctx, 600); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("REGISTER through the edge: %v %v", res, err)
	}

	// Its row on the live registrations page.
	rowSel := chromedp.Search(`//table[@id="registrations"]//td[text()="` + device + `"]/..`)
	do(t, ctx, "live registrations",
		chromedp.Click(chromedp.CSS(`a[href="/ui/registrations"]`)),
		chromedp.WaitVisible(chromedp.ID("fdevice")),
		chromedp.SendKeys(chromedp.ID("fdevice"), device),
		chromedp.Submit(chromedp.ID("fdevice")),
		chromedp.WaitVisible(rowSel),
	)
	row := get(t, ctx, "the phone's row", chromedp.Text(rowSel))
	if !strings.Contains(row, line) || strings.Contains(row, "on premises") {
		t.Errorf("the phone's row %q lacks its line %s or its edge", row, line)
	}
	shot(t, ctx, dir, "registrations")
	// Filtered by its line instead, and by its whole AOR (the API's filter).
	for _, q := range []string{"?aor=" + line, "?aor=" + url.QueryEscape("sip:"+line+"@"+u.env.Info.Domain)} {
		do(t, ctx, "registrations filtered "+q, chromedp.Navigate(u.base+"/ui/registrations"+q), chromedp.WaitVisible(chromedp.ID("registrations")))
		if tbl := get(t, ctx, "registrations table", chromedp.Text(chromedp.ID("registrations"))); !strings.Contains(tbl, device) {
			t.Errorf("registrations%s lacks %s:\n%s", q, device, tbl)
		}
	}

	// The audit log shows what the browser did, as the API recorded it.
	do(t, ctx, "audit log", chromedp.Navigate(u.base+"/ui/audit?q=expressway.add"), chromedp.WaitVisible(chromedp.ID("audit")))
	audit := get(t, ctx, "audit table", chromedp.Text(chromedp.ID("audit")))
	if !strings.Contains(audit, "expressway.add") || !strings.Contains(audit, account+" (token") {
		t.Errorf("the audit page lacks the browser's expressway.add by %s:\n%s", account, audit)
	}
	shot(t, ctx, dir, "audit")

	// Phone width: the same page, usable at 390 px.
	do(t, ctx, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(u.base+"/ui/activation"), chromedp.WaitVisible(chromedp.ID("device")))
	if get(t, ctx, "overflow", chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`)) {
		t.Errorf("the activation page scrolls sideways at phone width")
	}
	shot(t, ctx, dir, "activation-phone")
}
