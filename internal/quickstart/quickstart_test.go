package quickstart

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/edgeway/edgeway/activation"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/passwd"
	"github.com/edgeway/edgeway/internal/store"
)

// env is a prepared directory with an open store and an activation
// service built the way core.New builds it.
type env struct {
	lay   Layout
	st    store.Store
	codes *activation.Service
}

func setup(t *testing.T, dir string) env {
	t.Helper()
	ctx := context.Background()
	lay, err := Prepare(dir, DefaultAddrs())
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	st, err := store.Open(ctx, lay.Core.Store)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	// core.New: one 32-byte HMAC secret shared through the store.
	secret, err := st.Secret(ctx, "activation-hmac", func() ([]byte, error) { return bytes.Repeat([]byte{7}, 32), nil })
	if err != nil {
		t.Fatal(err)
	}
	codes, err := activation.New(st, secret, activation.Config{Validity: lay.Core.WithDefaults().ActivationCodeTTL})
	if err != nil {
		t.Fatal(err)
	}
	return env{lay: lay, st: st, codes: codes}
}

func provision(t *testing.T, e env) ([]Device, []User) {
	t.Helper()
	devs, users, err := Provision(context.Background(), e.st, e.codes)
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return devs, users
}

func TestPrepareAndProvision(t *testing.T) {
	ctx := context.Background()
	e := setup(t, t.TempDir())
	devs, users := provision(t, e)

	if len(devs) != 3 {
		t.Fatalf("got %d devices, want 3: %+v", len(devs), devs)
	}
	byName := map[string]Device{}
	for _, d := range devs {
		byName[d.Name] = d
		if d.Domain != Domain {
			t.Errorf("%s domain = %q, want %q", d.Name, d.Domain, Domain)
		}
		// Codes are 16 digits, shown grouped.
		c, err := activation.Parse(d.ActivationCode)
		if err != nil {
			t.Errorf("%s activation code %q does not parse: %v", d.Name, d.ActivationCode, err)
		} else if len(c.Digits()) != 16 {
			t.Errorf("%s activation code %q is not 16 digits", d.Name, d.ActivationCode)
		}
		if !core.OAuthCapable(d.Model) {
			t.Errorf("%s model %q cannot use SIP OAuth (S-5)", d.Name, d.Model)
		}
	}
	for _, want := range []struct {
		name, model, line, owner string
		mra                      bool
	}{
		{"SEP001122334401", "8845", "1001", "", true},
		{"SEP001122334402", "8865", "1002", "", true},
		{"CSFDEMO", "CSF", "1003", DemoUser, false},
	} {
		d, ok := byName[want.name]
		if !ok {
			t.Errorf("device %s not provisioned", want.name)
			continue
		}
		if d.Model != want.model || d.Line != want.line || d.MRA != want.mra {
			t.Errorf("%s = %+v, want model %s line %s mra %v", want.name, d, want.model, want.line, want.mra)
		}
		sd, err := e.st.GetDevice(ctx, want.name)
		if err != nil {
			t.Errorf("store: %v", err)
			continue
		}
		// S-17: the MRA phones allow activation via MRA; the on-premises
		// soft client does not, and is owned by the demo user (S-18).
		if sd.AllowMRA != want.mra || sd.Owner != want.owner || sd.Model != want.model || sd.Line != want.line || sd.SecurityProfile != ProfileName {
			t.Errorf("stored %s = %+v", want.name, sd)
		}
		if want.mra && sd.MRAServiceDomain != Domain {
			t.Errorf("stored %s MRA service domain = %q, want %q (S-17)", want.name, sd.MRAServiceDomain, Domain)
		}
	}

	// S-15: the profile is Encrypted, TLS, OAuth, so every device passes.
	p, err := e.st.GetSecurityProfile(ctx, ProfileName)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != "encrypted" || p.Transport != "TLS" || !p.OAuth {
		t.Errorf("profile = %+v, want encrypted/TLS/OAuth", p)
	}

	// S-13: SIP OAuth mode on; S-10: refresh login flow on.
	for name, want := range map[string]string{
		core.ParamClusterSIPOAuthMode:   "enabled",
		core.ParamRefreshLoginFlow:      "enabled",
		core.ParamAccessTokenForDevices: "implicit",
		core.ParamExportControlled:      "true",
	} {
		if v, ok, err := e.st.GetParam(ctx, name); err != nil || !ok || v != want {
			t.Errorf("param %s = %q (set %v, err %v), want %q", name, v, ok, err, want)
		}
	}

	// S-12: one Expressway-C entry naming the edge's mTLS certificate.
	es, err := e.st.ListExpressways(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || !slices.Contains(es[0].Names, ExpresswayName) {
		t.Fatalf("expressway entries = %+v, want one naming %s", es, ExpresswayName)
	}
	if !certNames(t, e.lay.PKI.EdgeMTLSCert, ExpresswayName) {
		t.Errorf("edge mTLS certificate does not carry %s, so the entry would not admit it (S-12)", ExpresswayName)
	}

	// The demo user's password checks against the stored hash.
	if len(users) != 1 || users[0].Username != DemoUser || users[0].Password == "" {
		t.Fatalf("users = %+v, want one %q with a password", users, DemoUser)
	}
	u, err := e.st.GetUser(ctx, DemoUser)
	if err != nil {
		t.Fatal(err)
	}
	if err := passwd.Check(u.PasswordHash, users[0].Password); err != nil {
		t.Errorf("demo password does not check: %v", err)
	}

	// Every issued code redeems for its own device.
	for _, d := range devs {
		if _, err := e.codes.Redeem(ctx, "127.0.0.1", d.Name, d.ActivationCode); err != nil {
			t.Errorf("redeem %s code: %v", d.Name, err)
		}
	}
}

// certNames reports whether the PEM certificate at path carries name as
// its CN or a DNS/IP SAN.
func certNames(t *testing.T, path, name string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName == name || slices.Contains(c.DNSNames, name) {
		return true
	}
	for _, ip := range c.IPAddresses {
		if ip.String() == name {
			return true
		}
	}
	return false
}

func TestProvisionTwiceIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e := setup(t, dir)
	first, _ := provision(t, e)
	ca1, err := os.ReadFile(e.lay.PKI.CACert)
	if err != nil {
		t.Fatal(err)
	}

	// A second quickstart in the same directory: Prepare reuses the PKI.
	lay2, err := Prepare(dir, DefaultAddrs())
	if err != nil {
		t.Fatalf("second Prepare: %v", err)
	}
	if ca2, _ := os.ReadFile(lay2.PKI.CACert); !bytes.Equal(ca1, ca2) {
		t.Error("second Prepare replaced the CA")
	}
	second, _ := provision(t, e)

	ds, err := e.st.ListDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Errorf("%d devices after two runs, want 3", len(ds))
	}
	es, err := e.st.ListExpressways(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Errorf("%d Expressway-C entries after two runs, want 1: %+v", len(es), es)
	}
	ps, err := e.st.ListSecurityProfiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Errorf("%d security profiles after two runs, want 1", len(ps))
	}

	if len(first) != len(second) {
		t.Fatalf("first run %d devices, second %d", len(first), len(second))
	}
	for i := range first {
		old, cur := first[i], second[i]
		if old.Name != cur.Name {
			t.Fatalf("device order changed: %s then %s", old.Name, cur.Name)
		}
		if old.ActivationCode == cur.ActivationCode {
			t.Errorf("%s: second run issued the same code", cur.Name)
		}
		// One live code per device: the old one is revoked.
		cs, err := e.codes.List(ctx, cur.Name)
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, c := range cs {
			if c.RevokedAt.IsZero() && c.UsedAt.IsZero() {
				live++
			}
		}
		if len(cs) != 2 || live != 1 {
			t.Errorf("%s: %d codes, %d live; want 2 and 1", cur.Name, len(cs), live)
		}
		if _, err := e.codes.Redeem(ctx, "127.0.0.1", cur.Name, old.ActivationCode); !errors.Is(err, activation.ErrRevoked) {
			t.Errorf("%s: old code redeemed with %v, want ErrRevoked", cur.Name, err)
		}
		if _, err := e.codes.Redeem(ctx, "127.0.0.1", cur.Name, cur.ActivationCode); err != nil {
			t.Errorf("%s: new code: %v", cur.Name, err)
		}
	}
}

func TestPrepareWritesConfigs(t *testing.T) {
	dir := t.TempDir()
	a := DefaultAddrs()
	lay, err := Prepare(dir, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{lay.PKI.CACert, lay.PKI.CoreCert, lay.PKI.CoreKey, lay.PKI.EdgeMTLSCert, lay.PKI.EdgeMTLSKey,
		lay.PKI.EdgePublicCert, lay.PKI.EdgePublicKey, lay.PKI.TomcatTrust, lay.PKI.PhoneEdgeTrust} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("PKI file: %v", err)
		}
	}

	// core.yaml and edge.yaml decode strictly (as `edgeway core --config`
	// reads them) back to the layout's configs.
	var c core.Config
	decodeStrict(t, filepath.Join(lay.Dir, "core.yaml"), &c)
	if c != lay.Core {
		t.Errorf("core.yaml =\n%+v\nlayout =\n%+v", c, lay.Core)
	}
	var e edge.Config
	decodeStrict(t, filepath.Join(lay.Dir, "edge.yaml"), &e)
	if !reflect.DeepEqual(e, lay.Edge) {
		t.Errorf("edge.yaml =\n%+v\nlayout =\n%+v", e, lay.Edge)
	}

	cd, ed := lay.Core.WithDefaults(), lay.Edge.WithDefaults()
	if err := cd.Validate(); err != nil {
		t.Errorf("core config: %v", err)
	}
	if err := ed.Validate(); err != nil {
		t.Errorf("edge config: %v", err)
	}
	if cd.PhoneOAuthPort != 5090 || cd.MRAPort != 5091 {
		t.Errorf("core ports %d, %d; want 5090, 5091 (S-11)", cd.PhoneOAuthPort, cd.MRAPort)
	}
	// The edge must accept the core's tokens and reach its MRA port.
	if ed.TokenIssuer != cd.Issuer || ed.TokenAudience != cd.Audience {
		t.Errorf("edge expects iss %q aud %q; core issues iss %q aud %q", ed.TokenIssuer, ed.TokenAudience, cd.Issuer, cd.Audience)
	}
	if want := fmt.Sprintf("%s:%d", a.CoreIP, a.CoreMRA); ed.CoreMRA != want {
		t.Errorf("edge core_mra = %q, want %q", ed.CoreMRA, want)
	}
	// The name the edge verifies is in the core's certificate.
	if !certNames(t, lay.PKI.CoreCert, ed.CoreServerName) {
		t.Errorf("core certificate does not carry %q, the edge's core_server_name", ed.CoreServerName)
	}
	// Phones reach the edge at its advertised host: the public certificate names it.
	if !certNames(t, lay.PKI.EdgePublicCert, ed.AdvertisedHost) {
		t.Errorf("edge public certificate does not carry %q, the advertised host", ed.AdvertisedHost)
	}
}

func decodeStrict(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestWriteInfo(t *testing.T) {
	e := setup(t, t.TempDir())
	devs, users := provision(t, e)
	a := DefaultAddrs()
	info := Info{
		EdgeHTTPS: "https://" + e.lay.Edge.HTTPSAddr, EdgeSIP: e.lay.Edge.SIPAddr,
		CoreHTTPS: "https://" + e.lay.Core.HTTPSAddr, CorePhoneOAuth: fmt.Sprintf("%s:%d", a.CoreIP, a.CorePhone),
		CoreMRA: fmt.Sprintf("%s:%d", a.CoreIP, a.CoreMRA), CACert: e.lay.PKI.CACert, AdminTokenFile: e.lay.Core.AdminTokenFile,
		Domain: Domain, Devices: devs, Users: users,
	}
	path := filepath.Join(e.lay.Dir, "quickstart.json")
	if err := WriteInfo(path, info); err != nil {
		t.Fatal(err)
	}

	// 0600: it holds activation codes and a password.
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("quickstart.json mode = %v, want 0600", st.Mode().Perm())
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "quickstart.json", m, "edge_https", "edge_sip", "core_https", "core_config", "core_phone_oauth", "core_mra",
		"ca_cert", "admin_token_file", "domain", "devices", "users")
	ds, ok := m["devices"].([]any)
	if !ok || len(ds) != 3 {
		t.Fatalf("devices = %#v, want a list of 3", m["devices"])
	}
	for i, d := range ds {
		dm, ok := d.(map[string]any)
		if !ok {
			t.Fatalf("devices[%d] = %#v, want an object", i, d)
		}
		checkKeys(t, fmt.Sprintf("devices[%d]", i), dm, "name", "model", "line", "domain", "activation_code", "mra")
		if _, ok := dm["mra"].(bool); !ok {
			t.Errorf("devices[%d].mra = %#v, want a boolean", i, dm["mra"])
		}
	}
	us, ok := m["users"].([]any)
	if !ok || len(us) != 1 {
		t.Fatalf("users = %#v, want a list of 1", m["users"])
	}
	um, ok := us[0].(map[string]any)
	if !ok {
		t.Fatalf("users[0] = %#v", us[0])
	}
	checkKeys(t, "users[0]", um, "username", "password")
	for k, want := range map[string]string{
		"edge_https": "https://127.0.0.1:8443", "edge_sip": "127.0.0.1:5061",
		"core_https": "https://127.0.0.2:8443", "core_phone_oauth": "127.0.0.2:5090",
		"core_mra": "127.0.0.2:5091", "domain": Domain,
	} {
		if m[k] != want {
			t.Errorf("%s = %#v, want %q", k, m[k], want)
		}
	}

	got, err := ReadInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	if !infoEqual(got, info) {
		t.Errorf("ReadInfo =\n%+v\nwant\n%+v", got, info)
	}

	// Rewriting keeps 0600.
	if err := WriteInfo(path, info); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("rewritten quickstart.json mode = %v (%v), want 0600", st.Mode().Perm(), err)
	}
}

func checkKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys = %q, want exactly %q", what, got, want)
	}
}

func infoEqual(a, b Info) bool {
	return a.EdgeHTTPS == b.EdgeHTTPS && a.EdgeSIP == b.EdgeSIP && a.CoreHTTPS == b.CoreHTTPS &&
		a.CorePhoneOAuth == b.CorePhoneOAuth && a.CoreMRA == b.CoreMRA && a.CACert == b.CACert &&
		a.AdminTokenFile == b.AdminTokenFile && a.Domain == b.Domain &&
		slices.Equal(a.Devices, b.Devices) && slices.Equal(a.Users, b.Users)
}

func TestReadInfoErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadInfo(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadInfo(bad); err == nil {
		t.Error("ReadInfo accepted malformed JSON")
	}
}
