package webui_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"html"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/webui"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/mtls"
)

// upload posts a multipart/form-data form, as a browser posts a form
// with a file input: fields, then files (field name → file name, content).
func (u *ui) upload(path string, fields url.Values, files map[string][2]string) page {
	u.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, vs := range fields {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				u.t.Fatal(err)
			}
		}
	}
	for field, f := range files {
		fw, err := mw.CreateFormFile(field, f[0])
		if err != nil {
			u.t.Fatal(err)
		}
		if _, err := fw.Write([]byte(f[1])); err != nil {
			u.t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		u.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, u.base+path, &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return u.do(req)
}

func (u *ui) trust(store string) []admin.TrustCertView {
	u.t.Helper()
	code, b := u.env.Admin(u.t, http.MethodGet, "/api/v1/trust?store="+store, nil)
	if code != 200 {
		u.t.Fatalf("trust list: HTTP %d %s", code, b)
	}
	var out []admin.TrustCertView
	if err := json.Unmarshal(b, &out); err != nil {
		u.t.Fatal(err)
	}
	return out
}

func hasFingerprint(certs []admin.TrustCertView, fp string) bool {
	for _, c := range certs {
		if c.Fingerprint == fp {
			return true
		}
	}
	return false
}

func newCA(t *testing.T, cn string) *mtls.CA {
	t.Helper()
	ca, err := mtls.NewCA(cn, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// refusalOf is the admin API's {"error": ...} in an answer that must be a refusal.
func refusalOf(t *testing.T, code int, b []byte) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" || code < 400 {
		t.Fatalf("want a refusal from the API, got HTTP %d %s", code, b)
	}
	return e.Error
}

// S-8: a CA certificate uploaded as a file through the multipart form
// lands in phone-edge-trust as the API lists it, audited as the API
// audits an upload; one pasted into the textarea lands in tomcat-trust
// (S-11); delete removes it, audited; deleting it again shows the API's
// 404.
func TestCertUploadListDelete(t *testing.T) {
	u := startUI(t, testenv.Options{})
	u.login(account, password)
	p := u.get("/ui/certs")
	if p.status != 200 || !strings.Contains(p.body, `id="trust-phone-edge-trust"`) || !strings.Contains(p.body, `id="trust-tomcat-trust"`) {
		t.Fatalf("certificate page: HTTP %d\n%s", p.status, p.body)
	}
	tok := csrf(t, p)
	root := newCA(t, "Web UI test Tomcat root")
	fp := fingerprint(t, root)
	p = u.upload("/ui/certs", url.Values{"csrf": {tok}, "store": {"phone-edge-trust"}}, map[string][2]string{"certfile": {"root.pem", string(root.CertPEM)}})
	if p.status != 200 || p.url.Path != "/ui/certs" || !strings.Contains(p.body, `id="upload-done"`) {
		t.Fatalf("upload: HTTP %d at %s\n%s", p.status, p.url, p.body)
	}
	if !hasFingerprint(u.trust("phone-edge-trust"), fp) {
		t.Fatalf("the uploaded CA %s is not in phone-edge-trust: %+v", fp, u.trust("phone-edge-trust"))
	}
	if hasFingerprint(u.trust("tomcat-trust"), fp) {
		t.Errorf("the CA uploaded to phone-edge-trust is in tomcat-trust too")
	}
	if !strings.Contains(p.body, "CN=Web UI test Tomcat root") || !strings.Contains(p.body, `id="delete-phone-edge-trust-`+fp+`"`) {
		t.Errorf("the page does not list the uploaded CA with its delete button")
	}
	if !auditHas(t, u.env, "trust.upload", account+" (token", fp) {
		t.Errorf("the upload is not audited as trust.upload by %s", account)
	}

	// Pasted PEM, to tomcat-trust (S-11).
	expc := newCA(t, "Web UI test Expressway-C CA")
	if p := u.upload("/ui/certs", url.Values{"csrf": {tok}, "store": {"tomcat-trust"}, "pem": {string(expc.CertPEM)}}, nil); p.status != 200 {
		t.Fatalf("pasted upload: HTTP %d\n%s", p.status, p.body)
	}
	if !hasFingerprint(u.trust("tomcat-trust"), fingerprint(t, expc)) {
		t.Errorf("the pasted CA is not in tomcat-trust")
	}

	// Delete.
	del := "/ui/certs/phone-edge-trust/" + fp + "/delete"
	if p := u.post(del, url.Values{"csrf": {tok}}); p.status != 200 || p.url.Path != "/ui/certs" {
		t.Fatalf("delete: HTTP %d at %s", p.status, p.url)
	}
	if hasFingerprint(u.trust("phone-edge-trust"), fp) {
		t.Fatalf("the deleted CA is still in phone-edge-trust")
	}
	if !auditHas(t, u.env, "trust.delete", account+" (token", fp) {
		t.Errorf("the delete is not audited as trust.delete by %s", account)
	}
	code, b := u.env.Admin(t, http.MethodDelete, "/api/v1/trust/phone-edge-trust/"+fp, nil)
	want := refusalOf(t, code, b)
	if p := u.post(del, url.Values{"csrf": {tok}}); p.status != code || !strings.Contains(p.body, `<p id="upload-error" class="error" role="alert">`+html.EscapeString(want)+`</p>`) {
		t.Errorf("deleting it again: HTTP %d (API %d), want the API's %q on the page", p.status, code, want)
	}
}

func fingerprint(t *testing.T, ca *mtls.CA) string {
	t.Helper()
	return hex.EncodeToString(sha(string(ca.Cert.Raw)))
}

// A file that is not a certificate, a private key, and an unknown store
// get the API's own refusals next to the form, with its status, and the
// stores are unchanged.
func TestCertUploadRefusals(t *testing.T) {
	u := startUI(t, testenv.Options{})
	tok := csrf(t, u.login(account, password))
	before := len(u.trust("phone-edge-trust")) + len(u.trust("tomcat-trust"))
	ca := newCA(t, "Web UI refusal CA")
	for name, c := range map[string]struct {
		store, file string
	}{
		"not a certificate": {"phone-edge-trust", "hello, I am not a certificate\n"},
		"a private key":     {"tomcat-trust", string(ca.KeyPEM)},
		"broken DER":        {"tomcat-trust", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		"an unknown store":  {"nope-trust", string(ca.CertPEM)},
	} {
		req, _ := http.NewRequest(http.MethodPost, u.base+"/api/v1/trust/"+c.store, strings.NewReader(c.file))
		req.Header.Set("Authorization", "Bearer "+u.env.AdminToken)
		api := u.do(req)
		want := refusalOf(t, api.status, []byte(api.body))
		p := u.upload("/ui/certs", url.Values{"csrf": {tok}, "store": {c.store}}, map[string][2]string{"certfile": {"x.pem", c.file}})
		if p.status != api.status {
			t.Errorf("%s: HTTP %d, the API answers %d", name, p.status, api.status)
		}
		if !strings.Contains(p.body, `<p id="upload-error" class="error" role="alert">`+html.EscapeString(want)+`</p>`) || !strings.Contains(p.body, `aria-describedby="upload-error"`) {
			t.Errorf("%s: the page does not show the API's refusal %q next to the form:\n%s", name, want, p.body)
		}
	}
	// Refused by the API, naming the rule, for the CLI as for the page: a
	// leaf in phone-edge-trust (S-8 wants the CA), an expired certificate.
	leaf, _, err := ca.Issue(mtls.CertRequest{CommonName: "tomcat.example.com", Names: []string{"tomcat.example.com"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ store, pem, want string }{
		"a leaf in phone-edge-trust": {"phone-edge-trust", string(leaf), `S-8: phone-edge-trust holds the CA certificate that roots the core&#39;s Tomcat certificate; &#34;CN=tomcat.example.com&#34; is not a CA certificate`},
		"an expired CA":              {"tomcat-trust", expiredCA(t), `S-11: the certificate &#34;CN=Web UI expired CA&#34; expired on `},
	} {
		req, _ := http.NewRequest(http.MethodPost, u.base+"/api/v1/trust/"+c.store, strings.NewReader(c.pem))
		req.Header.Set("Authorization", "Bearer "+u.env.AdminToken)
		if api := u.do(req); api.status != http.StatusBadRequest || !strings.HasPrefix(refusalOf(t, api.status, []byte(api.body)), html.UnescapeString(c.want)) {
			t.Errorf("%s through the API: HTTP %d %s, want 400 naming the rule", name, api.status, api.body)
		}
		p := u.upload("/ui/certs", url.Values{"csrf": {tok}, "store": {c.store}, "pem": {c.pem}}, nil)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, `<p id="upload-error" class="error" role="alert">`+c.want) {
			t.Errorf("%s: HTTP %d, want 400 and %q:\n%s", name, p.status, c.want, p.body)
		}
	}
	if after := len(u.trust("phone-edge-trust")) + len(u.trust("tomcat-trust")); after != before {
		t.Errorf("refused uploads changed the trust stores: %d certificates, were %d", after, before)
	}
	// A leaf is fine in tomcat-trust: the Expressway-C's own certificate (S-11).
	if p := u.upload("/ui/certs", url.Values{"csrf": {tok}, "store": {"tomcat-trust"}, "pem": {string(leaf)}}, nil); p.status != 200 {
		t.Errorf("a leaf in tomcat-trust: HTTP %d\n%s", p.status, p.body)
	}
}

// expiredCA is a self-signed CA certificate that expired an hour ago.
func expiredCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Web UI expired CA"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// CSRF on the upload forms: a multipart post without the token, or with a
// wrong one, and a plain post without it, are refused 403 and change
// nothing; an upload over webui.MaxUpload (with the token) is refused 413
// and changes nothing; a multipart body is not read on a plain form.
func TestUploadFormsCSRFAndSize(t *testing.T) {
	u := startUI(t, testenv.Options{})
	home := u.login(account, password)
	tok := csrf(t, home)
	ca := newCA(t, "Web UI CSRF CA")
	fp := fingerprint(t, ca)
	file := map[string][2]string{"certfile": {"ca.pem", string(ca.CertPEM)}}
	codesBefore := u.codes()
	for name, f := range map[string]url.Values{
		"no token":    {"store": {"phone-edge-trust"}},
		"wrong token": {"store": {"phone-edge-trust"}, "csrf": {strings.Repeat("0", 64)}},
	} {
		if p := u.upload("/ui/certs", f, file); p.status != http.StatusForbidden {
			t.Errorf("multipart upload with %s: HTTP %d, want 403", name, p.status)
		}
		if p := u.post("/ui/certs", url.Values{"store": f["store"], "csrf": f["csrf"], "pem": {string(ca.CertPEM)}}); p.status != http.StatusForbidden {
			t.Errorf("plain upload with %s: HTTP %d, want 403", name, p.status)
		}
		bulk := url.Values{"csv": {"device\nSEP001122334401\n"}, "mra": {"1"}, "csrf": f["csrf"]}
		if p := u.upload("/ui/activation/bulk", bulk, nil); p.status != http.StatusForbidden {
			t.Errorf("bulk import with %s: HTTP %d, want 403", name, p.status)
		}
		if p := u.post("/ui/activation/bulk/download", url.Values{"issued": {"device,activation_code,id,expires_at\n"}, "csrf": f["csrf"]}); p.status != http.StatusForbidden {
			t.Errorf("download with %s: HTTP %d, want 403", name, p.status)
		}
		if p := u.post("/ui/certs/phone-edge-trust/"+fp+"/delete", url.Values{"csrf": f["csrf"]}); p.status != http.StatusForbidden {
			t.Errorf("delete with %s: HTTP %d, want 403", name, p.status)
		}
	}
	// Over the bound, with a valid token: 413, the CA (at the start of
	// the file) is not added.
	big := string(ca.CertPEM) + strings.Repeat("#", webui.MaxUpload)
	p := u.upload("/ui/certs", url.Values{"csrf": {tok}, "store": {"phone-edge-trust"}}, map[string][2]string{"certfile": {"big.pem", big}})
	if p.status != http.StatusRequestEntityTooLarge || !strings.Contains(p.body, "larger than 1 MiB") {
		t.Errorf("oversized upload: HTTP %d %q, want 413 naming the 1 MiB bound", p.status, p.body)
	}
	if p := u.upload("/ui/activation/bulk", url.Values{"csrf": {tok}, "mra": {"1"}}, map[string][2]string{"csvfile": {"big.csv", "device\nSEP001122334401\n" + strings.Repeat("x\n", webui.MaxUpload/2)}}); p.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized CSV: HTTP %d, want 413", p.status)
	}
	// A plain form keeps its 64 KiB bound.
	if p := u.post("/ui/certs", url.Values{"csrf": {tok}, "store": {"phone-edge-trust"}, "pem": {string(ca.CertPEM) + strings.Repeat("#", 64<<10)}}); p.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized plain form: HTTP %d, want 413", p.status)
	}
	// A plain page does not read a multipart body: its token is unseen.
	if p := u.upload("/ui/expressway", url.Values{"csrf": {tok}, "address": {"x.example.com"}, "names": {"x.example.com"}}, nil); p.status != http.StatusForbidden {
		t.Errorf("multipart post to a plain form: HTTP %d, want 403", p.status)
	}
	if hasFingerprint(u.trust("phone-edge-trust"), fp) {
		t.Fatalf("a refused upload added the CA to phone-edge-trust")
	}
	if after := u.codes(); len(after) != len(codesBefore) {
		t.Fatalf("refused bulk imports issued codes: %d codes, were %d", len(after), len(codesBefore))
	}
	// The same upload with the token and within the bound works.
	if p := u.upload("/ui/certs", url.Values{"csrf": {tok}, "store": {"phone-edge-trust"}}, file); p.status != 200 || !hasFingerprint(u.trust("phone-edge-trust"), fp) {
		t.Fatalf("upload with the token: HTTP %d, listed %v", p.status, hasFingerprint(u.trust("phone-edge-trust"), fp))
	}
}

func (u *ui) codes() []admin.CodeView {
	u.t.Helper()
	code, b := u.env.Admin(u.t, http.MethodGet, "/api/v1/activation", nil)
	if code != 200 {
		u.t.Fatalf("codes: HTTP %d %s", code, b)
	}
	var out []admin.CodeView
	if err := json.Unmarshal(b, &out); err != nil {
		u.t.Fatal(err)
	}
	return out
}

var issuedRE = regexp.MustCompile(`name="issued" value="([^"]*)"`)

// S-17 in bulk: a CSV with a good device, an unknown one and one that
// does not allow activation via MRA gives one code and two refusals (the
// API's text for the unknown device, S-17 for the other); the issued
// codes download as CSV, and the code really onboards the phone through
// the edge. The import is audited as the API's activation.issue-bulk.
func TestBulkActivationImport(t *testing.T) {
	u := startUI(t, testenv.Options{})
	tok := csrf(t, u.login(account, password))
	const good, unknown, noMRA = "SEP001122334401", "SEPNOSUCH0001", "CSFDEMO"
	code, b := u.env.Admin(t, http.MethodGet, "/api/v1/devices/"+unknown, nil)
	unknownRefusal := refusalOf(t, code, b)
	csvText := "device\n" + good + "\n" + unknown + "\n" + noMRA + "\n"
	p := u.upload("/ui/activation/bulk", url.Values{"csrf": {tok}, "mra": {"1"}}, map[string][2]string{"csvfile": {"devices.csv", csvText}})
	if p.status != 200 || p.url.Path != "/ui/activation/bulk" {
		t.Fatalf("bulk import: HTTP %d at %s\n%s", p.status, p.url, p.body)
	}
	for _, want := range []string{
		"<td>3</td><td>" + unknown + "</td><td class=\"error-cell\">" + html.EscapeString(unknownRefusal) + "</td>",
		"<td>4</td><td>" + noMRA + "</td><td class=\"error-cell\">S-17: device " + noMRA + " does not allow activation code via MRA",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the refusals table lacks %q:\n%s", want, p.body)
		}
	}
	if n := strings.Count(p.body, "<td class=\"error-cell\">"); n != 2 {
		t.Errorf("%d refusals shown, want 2", n)
	}
	m := issuedRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no download form with the issued codes:\n%s", p.body)
	}
	dl := u.post("/ui/activation/bulk/download", url.Values{"csrf": {tok}, "issued": {html.UnescapeString(m[1])}})
	rows := attachmentCSV(t, dl)
	if len(rows) != 2 || strings.Join(rows[0], ",") != "device,activation_code,id,expires_at" || rows[1][0] != good {
		t.Fatalf("downloaded CSV: %q, want the header and one row for %s", rows, good)
	}
	if !auditHas(t, u.env, "activation.issue-bulk", account+" (token", "devices=1") {
		t.Errorf("the import is not audited as activation.issue-bulk devices=1 by %s", account)
	}
	// The code onboards the phone through the edge, and it registers.
	ph := u.env.Phone(good, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ph.Onboard(ctx, rows[1][1]); err != nil {
		t.Fatalf("onboarding with the imported code: %v", err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("REGISTER through the edge: %v %v", res, err)
	}

	// All rows good: the answer is the CSV itself, as a download.
	dl = u.upload("/ui/activation/bulk", url.Values{"csrf": {tok}, "mra": {"1"}, "csv": {"Device,comment\nSEP001122334402,lobby\n\n"}}, nil)
	rows = attachmentCSV(t, dl)
	if len(rows) != 2 || rows[1][0] != "SEP001122334402" || len(rows[1][1]) < 16 {
		t.Errorf("all-good import: %q, want one code for SEP001122334402", rows)
	}
	// Without the S-17 check CSFDEMO gets a code (on-premises onboarding).
	if dl := u.upload("/ui/activation/bulk", url.Values{"csrf": {tok}, "csv": {"device\n" + noMRA + "\n"}}, nil); len(attachmentCSV(t, dl)) != 2 {
		t.Errorf("%s without the MRA check got no code", noMRA)
	}
}

// Refused imports: a CSV without a device header, with only unknown
// devices, or listing a device twice; nothing is issued where every row
// is refused.
func TestBulkActivationRefusals(t *testing.T) {
	u := startUI(t, testenv.Options{})
	tok := csrf(t, u.login(account, password))
	before := len(u.codes())
	p := u.upload("/ui/activation/bulk", url.Values{"csrf": {tok}, "csv": {"name\nSEP001122334401\n"}}, nil)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `<p id="bulk-error" class="error" role="alert">S-17 bulk import: the CSV&#39;s first row must be a header naming a device column`) {
		t.Errorf("CSV without a device header: HTTP %d\n%s", p.status, p.body)
	}
	code, b := u.env.Admin(t, http.MethodGet, "/api/v1/devices/SEPNOSUCH0002", nil)
	want := refusalOf(t, code, b)
	p = u.upload("/ui/activation/bulk", url.Values{"csrf": {tok}, "csv": {"device\nSEPNOSUCH0002\n"}}, nil)
	if p.status != code || !strings.Contains(p.body, html.EscapeString(want)) || !strings.Contains(p.body, "every row was refused") {
		t.Errorf("only an unknown device: HTTP %d (API %d), want the API's %q", p.status, code, want)
	}
	if n := len(u.codes()); n != before {
		t.Fatalf("refused imports issued codes: %d, were %d", n, before)
	}
	p = u.upload("/ui/activation/bulk", url.Values{"csrf": {tok}, "csv": {"device\nSEP001122334401\nSEP001122334401\n"}}, nil)
	if p.status != 200 || !strings.Contains(p.body, `device &#34;SEP001122334401&#34; is listed twice`) || strings.Count(p.body, "<tr><td>SEP001122334401</td>") != 1 {
		t.Errorf("a device listed twice: HTTP %d, want one code and the second row refused\n%s", p.status, p.body)
	}
}

// The codes list exports as CSV (an attachment, no-store, no plaintext
// code), with a cell that a spreadsheet would run as a formula guarded by
// a leading '.
func TestActivationExportCSV(t *testing.T) {
	u := startUI(t, testenv.Options{})
	tok := csrf(t, u.login(account, password))
	// A device name may start with '-' (a formula to a spreadsheet).
	const dash = "-2-1"
	if code, b := u.env.Admin(t, http.MethodPut, "/api/v1/devices/"+dash, map[string]any{"model": "8845", "line": "1999", "security_profile": quickstart.ProfileName}); code != 200 {
		t.Fatalf("device %s: HTTP %d %s", dash, code, b)
	}
	dl := u.upload("/ui/activation/bulk", url.Values{"csrf": {tok}, "csv": {"device\n" + dash + "\n"}}, nil)
	issued := attachmentCSV(t, dl)
	if len(issued) != 2 || issued[1][0] != "'"+dash {
		t.Errorf("issued CSV: %q, want the device cell %q guarded as %q", issued, dash, "'"+dash)
	}
	p := u.get("/ui/activation/bulk/export")
	rows := attachmentCSV(t, p)
	if strings.Join(rows[0], ",") != "id,device,state,created_at,expires_at,used_at,revoked_at,locked_at" {
		t.Fatalf("export header %q", rows[0])
	}
	codes := u.codes()
	if len(rows)-1 != len(codes) {
		t.Fatalf("export: %d rows, the API lists %d codes", len(rows)-1, len(codes))
	}
	byID := map[string][]string{}
	for _, r := range rows[1:] {
		byID[r[0]] = r
	}
	for _, c := range codes {
		r := byID[c.ID]
		wantDev := c.Device
		if c.Device == dash {
			wantDev = "'" + dash
		}
		if r == nil || r[1] != wantDev || r[2] != c.State || r[4] != c.ExpiresAt.UTC().Format(time.RFC3339) {
			t.Errorf("code %s: exported %q, API %+v", c.ID, r, c)
		}
	}
	if strings.Contains(p.body, issued[1][1]) {
		t.Errorf("the export holds a plaintext code")
	}
	if webui.SafeCell("=1+1") != "'=1+1" || webui.SafeCell("@SUM(A1)") != "'@SUM(A1)" || webui.SafeCell("+1") != "'+1" || webui.SafeCell("SEP1") != "SEP1" || webui.SafeCell("") != "" {
		t.Errorf("SafeCell does not guard = + @ or changes a plain cell")
	}
}

// attachmentCSV checks a CSV download's headers and parses it.
func attachmentCSV(t *testing.T, p page) [][]string {
	t.Helper()
	if p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(p.header.Get("Content-Disposition"), "attachment; filename=") || p.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("want a CSV attachment, no-store: HTTP %d %v\n%s", p.status, p.header, p.body)
	}
	rows, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil {
		t.Fatalf("the download is no CSV: %v\n%s", err, p.body)
	}
	return rows
}

// The two pages carry the UI's security headers and no inline script or
// style, and sit in the menu under their groups.
func TestCertPagesHeadersAndMenu(t *testing.T) {
	u := startUI(t, testenv.Options{})
	u.login(account, password)
	for _, path := range []string{"/ui/certs", "/ui/activation/bulk"} {
		p := u.get(path)
		if p.status != 200 || p.header.Get("Content-Security-Policy") != webui.CSP || p.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: HTTP %d, CSP %q, Cache-Control %q", path, p.status, p.header.Get("Content-Security-Policy"), p.header.Get("Cache-Control"))
		}
		if strings.Contains(p.body, "<script") || strings.Contains(p.body, "<style") || strings.Contains(p.body, " style=") || regexp.MustCompile(` on[a-z]+=`).MatchString(p.body) {
			t.Errorf("%s has inline script or style", path)
		}
		if !strings.Contains(p.body, `<a href="`+path+`" aria-current="page">`) {
			t.Errorf("%s is not in the menu as the current page", path)
		}
	}
	if p := u.get("/ui/certs"); !strings.Contains(p.body, `Implements: S-8: phone-edge-trust holds the CA`) {
		t.Errorf("the certificate page does not show its rule")
	}
}
