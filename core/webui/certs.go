package webui

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core/admin"
	"github.com/edgeway/edgeway/core/policy"
)

// Certificate Management (S-8, S-11) and activation codes in bulk as CSV (S-17).

// certPages are this file's pages (see allPages).
var certPages = []page{
	{Name: "certs", Title: "Certificate Management", Menu: "Certificates", Path: "/ui/certs",
		Rule: "S-8: phone-edge-trust holds the CA that roots the core's Tomcat certificate, which MRA phones download to obtain tokens; " +
			"S-11: tomcat-trust must verify the Expressway-C's certificate on the MRA port's mutual TLS"},
	{Name: "bulk", Title: "Activation codes in bulk (CSV)", Label: "Activation codes (CSV)", Menu: "Device", Path: "/ui/activation/bulk",
		Rule: "S-17: a device onboards through an edge with an activation code only if it allows Activation Code via MRA; each code onboards one device once, before it expires, and replaces the device's older code"},
}

// certRoutes mounts this file's handlers.
func (u *UI) certRoutes(m *http.ServeMux) {
	m.Handle("GET /ui/certs", u.session(u.certsPage))
	m.Handle("POST /ui/certs", u.upload(u.certsUpload))
	m.Handle("POST /ui/certs/{store}/{fingerprint}/delete", u.session(u.certsDelete))
	m.Handle("GET /ui/activation/bulk", u.session(u.bulkPage))
	m.Handle("POST /ui/activation/bulk", u.upload(u.bulkImport))
	m.Handle("POST /ui/activation/bulk/download", u.session(u.bulkDownload))
	m.Handle("GET /ui/activation/bulk/export", u.session(u.bulkExport))
}

// formFile is the content of an upload form's file field ("" when none
// was chosen); the whole body is already in memory (upload).
func formFile(r *http.Request, field string) (string, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File[field]) == 0 {
		return "", nil
	}
	fh := r.MultipartForm.File[field][0]
	f, err := fh.Open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxUpload))
	return string(b), err
}

// --- Certificate Management (S-8, S-11) ---

// trustStore is one store as the page shows it.
type trustStore struct {
	Name, Why string
	Certs     []certRow
}

type certRow struct {
	admin.TrustCertView
	Expired bool
}

type certsData struct {
	Stores     []trustStore
	Store, PEM string // the refused form's input
	Added      string // after an upload: how many were added
	AddedStore string
	Error      string
	LoadError  string
}

// storeWhy says what each store is for, after the chapter.
var storeWhy = []trustStore{
	{Name: policy.TrustPhoneEdge, Why: "S-8: the CA that roots the core's Tomcat certificate; MRA phones download it to trust the core and obtain tokens"},
	{Name: policy.TrustTomcat, Why: "S-11: CAs that verify the Expressway-C's certificate on the MRA port (mutual TLS); upload it when it is not signed by the Tomcat certificate's CA"},
}

func (u *UI) certsPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := certsData{Store: policy.TrustPhoneEdge}
	if n, err := strconv.Atoi(q.Get("added")); err == nil && n >= 0 {
		for _, st := range storeWhy {
			if st.Name == q.Get("store") {
				d.Added, d.AddedStore, d.Store = strconv.Itoa(n), st.Name, st.Name
			}
		}
	}
	u.renderCerts(w, r, s, http.StatusOK, d)
}

func (u *UI) renderCerts(w http.ResponseWriter, r *http.Request, s *session, status int, d certsData) {
	var all []admin.TrustCertView
	if err := u.call(r, s, http.MethodGet, "/api/v1/trust", nil).decode(&all); err != nil {
		d.LoadError = err.Error()
	}
	now := time.Now()
	for _, st := range storeWhy {
		for _, c := range all {
			if c.Store == st.Name {
				st.Certs = append(st.Certs, certRow{TrustCertView: c, Expired: !now.Before(c.NotAfter)})
			}
		}
		d.Stores = append(d.Stores, st)
	}
	u.render(w, status, "certs", s, d)
}

// certsUpload sends the chosen file and the pasted PEM, together, to
// POST /api/v1/trust/{store}: the API parses them and says what is wrong.
func (u *UI) certsUpload(w http.ResponseWriter, r *http.Request, s *session) {
	store := strings.TrimSpace(r.PostForm.Get("store"))
	pasted := r.PostForm.Get("pem")
	d := certsData{Store: store, PEM: pasted}
	file, err := formFile(r, "certfile")
	if err != nil {
		d.Error = "the certificate file could not be read: " + err.Error()
		u.renderCerts(w, r, s, http.StatusBadRequest, d)
		return
	}
	bundle := strings.TrimSpace(file + "\n" + pasted)
	res := u.callBody(r, s, http.MethodPost, "/api/v1/trust/"+url.PathEscape(store), "application/x-pem-file", []byte(bundle))
	if !res.ok() {
		d.Error = res.err
		u.renderCerts(w, r, s, res.status, d)
		return
	}
	var added []admin.TrustCertView
	_ = json.Unmarshal(res.body, &added)
	http.Redirect(w, r, "/ui/certs?"+url.Values{"added": {strconv.Itoa(len(added))}, "store": {store}}.Encode(), http.StatusSeeOther)
}

func (u *UI) certsDelete(w http.ResponseWriter, r *http.Request, s *session) {
	res := u.call(r, s, http.MethodDelete, "/api/v1/trust/"+url.PathEscape(r.PathValue("store"))+"/"+url.PathEscape(r.PathValue("fingerprint")), nil)
	if !res.ok() {
		u.renderCerts(w, r, s, res.status, certsData{Store: policy.TrustPhoneEdge, Error: res.err})
		return
	}
	http.Redirect(w, r, "/ui/certs", http.StatusSeeOther)
}

// --- Activation codes in bulk as CSV (S-17) ---

// maxBulkRows bounds one import: each row is one read of the API.
const maxBulkRows = 5000

// issuedHeader is the header of the API's bulk answer (activation.WriteCSV).
var issuedHeader = []string{"device", "activation_code", "id", "expires_at"}

// exportHeader is the header of the codes list export (no plaintext: the
// store holds only the codes' hashes).
var exportHeader = []string{"id", "device", "state", "created_at", "expires_at", "used_at", "revoked_at", "locked_at"}

type bulkRefusal struct {
	Row            int
	Device, Reason string
}

type bulkData struct {
	CSV       string
	MRAOnly   bool
	Refusals  []bulkRefusal
	Issued    [][]string // rows of the API's CSV, without the header
	IssuedCSV string     // what the download form posts back
	Error     string
	LoadError string
	Codes     int // codes in the list the export writes
}

func (u *UI) bulkPage(w http.ResponseWriter, r *http.Request, s *session) {
	u.renderBulk(w, r, s, http.StatusOK, bulkData{MRAOnly: true})
}

func (u *UI) renderBulk(w http.ResponseWriter, r *http.Request, s *session, status int, d bulkData) {
	var codes []admin.CodeView
	if err := u.call(r, s, http.MethodGet, "/api/v1/activation", nil).decode(&codes); err != nil {
		d.LoadError = err.Error()
	}
	d.Codes = len(codes)
	u.render(w, status, "bulk", s, d)
}

// bulkRow is one device of an imported CSV, with its line number.
type bulkRow struct {
	line   int
	device string
}

// readDevices reads an imported CSV: a header naming a "device" column
// (others are ignored, so the export or an issued CSV can be fed back),
// then one device per row; blank rows are skipped.
func readDevices(text string) ([]bulkRow, error) {
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "\uFEFF")))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the CSV is empty: it needs a header naming a device column, then one device per row")
	}
	if err != nil {
		return nil, fmt.Errorf("the CSV could not be read: %w", err)
	}
	col := -1
	for i, h := range header {
		if strings.EqualFold(strings.TrimSpace(h), "device") {
			col = i
			break
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("the CSV's first row must be a header naming a device column, not %q", strings.Join(header, ","))
	}
	var rows []bulkRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("the CSV could not be read: %w", err)
		}
		line, _ := cr.FieldPos(0)
		dev := ""
		if col < len(rec) {
			dev = strings.TrimSpace(rec[col])
		}
		if dev == "" {
			continue
		}
		if len(rows) == maxBulkRows {
			return nil, fmt.Errorf("more than %d devices in one import: split the CSV", maxBulkRows)
		}
		rows = append(rows, bulkRow{line: line, device: dev})
	}
	if len(rows) == 0 {
		return nil, errors.New("the CSV lists no device under its header")
	}
	return rows, nil
}

// bulkImport issues codes for the devices of an uploaded (or pasted) CSV.
// Each row is checked first through the API (GET /api/v1/devices/{name}:
// its refusal, e.g. an unknown device, is the row's), a device listed
// twice is refused at its second row, and with "MRA only" a device that
// does not allow Activation Code via MRA is refused (S-17: its code could
// not onboard it through an edge). The rest go to POST
// /api/v1/activation/bulk in one request, audited there. With no row
// refused the answer is the API's CSV as a download; otherwise the page
// shows the refusals and the issued codes, with the same download.
func (u *UI) bulkImport(w http.ResponseWriter, r *http.Request, s *session) {
	pasted := r.PostForm.Get("csv")
	d := bulkData{CSV: pasted, MRAOnly: r.PostForm.Get("mra") != ""}
	file, err := formFile(r, "csvfile")
	if err != nil {
		d.Error = "the CSV file could not be read: " + err.Error()
		u.renderBulk(w, r, s, http.StatusBadRequest, d)
		return
	}
	text := pasted
	if strings.TrimSpace(file) != "" {
		text = file
	}
	rows, err := readDevices(text)
	if err != nil {
		d.Error = "S-17 bulk import: " + err.Error()
		u.renderBulk(w, r, s, http.StatusBadRequest, d)
		return
	}
	seen := map[string]bool{}
	var devices []string
	status := http.StatusOK
	for _, row := range rows {
		if seen[row.device] {
			d.Refusals = append(d.Refusals, bulkRefusal{Row: row.line, Device: row.device, Reason: fmt.Sprintf("device %q is listed twice", row.device)})
			continue
		}
		seen[row.device] = true
		var dev admin.DeviceView
		res := u.call(r, s, http.MethodGet, "/api/v1/devices/"+url.PathEscape(row.device), nil)
		if err := res.decode(&dev); err != nil {
			reason := res.err
			if reason == "" {
				reason = err.Error()
			}
			d.Refusals = append(d.Refusals, bulkRefusal{Row: row.line, Device: row.device, Reason: reason})
			status = res.status
			continue
		}
		if d.MRAOnly && !dev.AllowMRA {
			d.Refusals = append(d.Refusals, bulkRefusal{Row: row.line, Device: row.device,
				Reason: fmt.Sprintf("S-17: device %s does not allow activation code via MRA: its code could not onboard it through an edge", row.device)})
			status = http.StatusBadRequest
			continue
		}
		devices = append(devices, row.device)
	}
	if len(devices) == 0 {
		d.Error = "No code was issued: every row was refused."
		u.renderBulk(w, r, s, status, d)
		return
	}
	// Codes are issued: the page is the answer to a request that did
	// something, unless the API itself failed part-way.
	status = http.StatusOK
	res := u.call(r, s, http.MethodPost, "/api/v1/activation/bulk", map[string][]string{"devices": devices})
	if !res.ok() {
		d.Error = res.err
		var partial struct {
			IssuedCSV string `json:"issued_csv"`
		}
		// On a failure part-way the API hands out the codes it issued.
		if json.Unmarshal(res.body, &partial) == nil && partial.IssuedCSV != "" {
			res.body = []byte(partial.IssuedCSV)
		} else {
			u.renderBulk(w, r, s, res.status, d)
			return
		}
		status = res.status
	}
	issued, err := readIssued(string(res.body))
	if err != nil {
		d.Error = "the API's CSV could not be read: " + err.Error()
		u.renderBulk(w, r, s, http.StatusInternalServerError, d)
		return
	}
	if len(d.Refusals) == 0 && d.Error == "" {
		writeCSVDownload(w, "activation-codes", issuedHeader, issued)
		return
	}
	d.Issued = issued
	var b strings.Builder
	_ = writeCSV(&b, issuedHeader, issued)
	d.IssuedCSV = b.String()
	u.renderBulk(w, r, s, status, d)
}

// readIssued reads CSV with the API's issued-codes header.
func readIssued(text string) ([][]string, error) {
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(issuedHeader, ",") {
		return nil, fmt.Errorf("want the header %s", strings.Join(issuedHeader, ","))
	}
	return recs[1:], nil
}

// bulkDownload hands the issued codes shown on the result page over as a
// CSV file (the page posts them back: the plaintext codes are nowhere
// else, the store keeps only their hashes).
func (u *UI) bulkDownload(w http.ResponseWriter, r *http.Request, s *session) {
	rows, err := readIssued(r.PostForm.Get("issued"))
	if err != nil {
		u.renderBulk(w, r, s, http.StatusBadRequest, bulkData{MRAOnly: true, Error: "the issued codes could not be read back: " + err.Error()})
		return
	}
	writeCSVDownload(w, "activation-codes", issuedHeader, rows)
}

// bulkExport is the codes list (GET /api/v1/activation) as CSV: ids,
// devices and states, never a plaintext code (the store has none).
func (u *UI) bulkExport(w http.ResponseWriter, r *http.Request, s *session) {
	var codes []admin.CodeView
	if err := u.call(r, s, http.MethodGet, "/api/v1/activation", nil).decode(&codes); err != nil {
		u.renderBulk(w, r, s, http.StatusBadGateway, bulkData{MRAOnly: true, Error: err.Error()})
		return
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	rows := make([][]string, 0, len(codes))
	for _, c := range codes {
		rows = append(rows, []string{c.ID, c.Device, c.State, ts(&c.CreatedAt), ts(&c.ExpiresAt), ts(c.UsedAt), ts(c.RevokedAt), ts(c.LockedAt)})
	}
	writeCSVDownload(w, "activation-codes-list", exportHeader, rows)
}

// writeCSVDownload answers with CSV as a file to save (the UI's
// Cache-Control no-store stays: issued codes are secrets).
func writeCSVDownload(w http.ResponseWriter, name string, header []string, rows [][]string) {
	var b bytes.Buffer
	if err := writeCSV(&b, header, rows); err != nil {
		http.Error(w, "the CSV could not be written", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.csv"`, name, time.Now().UTC().Format("20060102T150405Z")))
	_, _ = w.Write(b.Bytes())
}

// writeCSV writes header and rows, every cell through SafeCell.
func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, row := range rows {
		safe := make([]string, len(row))
		for i, c := range row {
			safe[i] = SafeCell(c)
		}
		if err := cw.Write(safe); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// SafeCell guards an exported CSV cell against formula injection (OWASP
// "CSV injection"): a cell a spreadsheet would read as a formula, one
// starting with = + - @ (or a tab or carriage return), gets a leading '
// so that it is shown as text. Device names may start with '-'.
func SafeCell(c string) string {
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
		return "'" + c
	}
	return c
}
