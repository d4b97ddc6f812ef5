package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/mtls"
)

// cli runs `edgeway admin` against a test environment.
type cli struct {
	t    *testing.T
	env  *testenv.Env
	conn []string // --core, --ca and (unless changed) the bootstrap token
}

func newCLI(t *testing.T, env *testenv.Env) *cli {
	return &cli{t: t, env: env, conn: []string{"--core", env.Info.CoreHTTPS, "--token-file", env.Info.AdminTokenFile, "--ca", env.Info.CACert}}
}

// with returns a cli that authenticates with another token file.
func (c *cli) with(tokenFile string) *cli {
	return &cli{t: c.t, env: c.env, conn: []string{"--core", c.env.Info.CoreHTTPS, "--token-file", tokenFile, "--ca", c.env.Info.CACert}}
}

func (c *cli) try(args ...string) (string, error) {
	var out bytes.Buffer
	err := runAdmin(context.Background(), append(slices.Clone(c.conn), args...), &out)
	return out.String(), err
}

// run expects success.
func (c *cli) run(args ...string) string {
	c.t.Helper()
	out, err := c.try(args...)
	if err != nil {
		c.t.Fatalf("edgeway admin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// refused expects the API to refuse with status, and returns its message.
func (c *cli) refused(status int, args ...string) string {
	c.t.Helper()
	_, err := c.try(args...)
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != status {
		c.t.Fatalf("edgeway admin %s: %v, want an HTTP %d refusal from the API", strings.Join(args, " "), err, status)
	}
	if errors.Is(err, errUsage) {
		c.t.Fatalf("an API refusal must not be a usage error: %v", err)
	}
	return ae.Message
}

// usage expects a usage error (exit status 2) showing the command's usage line.
func (c *cli) usage(args ...string) {
	c.t.Helper()
	_, err := c.try(args...)
	if !errors.Is(err, errUsage) {
		c.t.Fatalf("edgeway admin %s: %v, want a usage error", strings.Join(args, " "), err)
	}
	if cmd, _, ferr := findAdminCmd(args); ferr == nil && !strings.Contains(err.Error(), cmd.usageLine()) {
		c.t.Fatalf("usage error %q does not show the usage line %q", err, cmd.usageLine())
	}
}

// tableRow returns the fields of the first line of out whose first field
// is key.
func tableRow(out, key string) []string {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == key {
			return f
		}
	}
	return nil
}

func wantContains(t *testing.T, what, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Fatalf("%s: want %q in\n%s", what, s, out)
		}
	}
}

// The chapter's menus through the CLI against a running core and edge:
// parameters, nodes, the SIP OAuth mode and the CallManager service,
// profiles, devices, Expressway-C entries, trust stores, tokens, accounts
// and the audit log, with each refusal shown in the API's words.
func TestAdminCLIMenus(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	c := newCLI(t, env)
	node := env.Layout.Core.Node

	t.Run("params", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		out := c.run("params", "get")
		wantContains(t, "params get", out, "NAME", "VALUE", "DEFAULT", "READ-ONLY")
		if r := tableRow(out, core.ParamClusterSIPOAuthMode); len(r) != 4 || r[3] != "yes" {
			t.Fatalf("params get: cluster mode row %q, want it read-only:\n%s", r, out)
		}
		out = c.run("params", "set", core.ParamAccessTokenForDevices, "explicit")
		wantContains(t, "params set", out, core.ParamAccessTokenForDevices+" = explicit")
		if r := tableRow(c.run("params", "get", core.ParamAccessTokenForDevices), core.ParamAccessTokenForDevices); !slices.Equal(r, []string{core.ParamAccessTokenForDevices, "explicit", "implicit", "no"}) {
			t.Fatalf("params get after set: %q", r)
		}
		if msg := c.refused(http.StatusForbidden, "params", "set", core.ParamClusterSIPOAuthMode, "disabled"); !strings.HasPrefix(msg, "S-13: Cluster SIPOAuth Mode is read-only") {
			t.Fatalf("setting the cluster mode: %q, want the S-13 refusal", msg)
		}
		if msg := c.refused(http.StatusBadRequest, "params", "set", core.ParamAccessTokenForDevices, "sometimes"); !strings.Contains(msg, "implicit, explicit") {
			t.Fatalf("a bad value: %q, want the values allowed", msg)
		}
		c.refused(http.StatusNotFound, "params", "set", "no_such_param", "x")
		c.run("params", "set", core.ParamAccessTokenForDevices, "implicit")
		c.usage("params", "set", core.ParamAccessTokenForDevices)
	})

	t.Run("profiles and devices", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		msg := c.refused(http.StatusBadRequest, "profile", "set", "Bad", "--mode", "non-secure", "--transport", "TCP", "--oauth")
		if msg != core.ErrOAuthNeedsEncryptedTLS.Error() {
			t.Fatalf("OAuth on a non-secure profile: %q, want %q", msg, core.ErrOAuthNeedsEncryptedTLS)
		}
		msg = c.refused(http.StatusBadRequest, "profile", "set", "Bad", "--mode", "encrypted", "--transport", "TLS", "--oauth", "--digest")
		if msg != core.ErrOAuthWithDigest.Error() {
			t.Fatalf("OAuth with digest: %q, want %q", msg, core.ErrOAuthWithDigest)
		}
		c.usage("profile", "set", "Bad", "--mode", "encrypted")
		wantContains(t, "profile set", c.run("profile", "set", "Plain TCP", "--mode", "non-secure", "--transport", "TCP"), `saved security profile "Plain TCP"`)
		wantContains(t, "profile list", c.run("profile", "list"), "Plain TCP", quickstart.ProfileName)

		// S-5: a model outside the list cannot take an OAuth profile.
		msg = c.refused(http.StatusBadRequest, "device", "set", "SEP0000000079AA", "--model", "7940", "--line", "1979", "--profile", quickstart.ProfileName)
		if !strings.HasPrefix(msg, core.ErrModelNotOAuth.Error()) {
			t.Fatalf("a 7940 on the OAuth profile: %q, want %q", msg, core.ErrModelNotOAuth)
		}
		c.usage("device", "set", "SEP0000000079AA", "--model", "7940")
		wantContains(t, "device set (new)", c.run("device", "set", "SEP0000000079AA", "--model", "7940", "--line", "1979", "--profile", "Plain TCP"), "created device SEP0000000079AA")
		// Unspecified flags keep the current values.
		c.run("device", "set", "SEP0000000079AA", "--owner", "bob")
		show := c.run("device", "show", "SEP0000000079AA")
		for _, want := range [][]string{{"model", "7940"}, {"line", "1979"}, {"owner", "bob"}} {
			if r := tableRow(show, want[0]); !slices.Equal(r, want) {
				t.Fatalf("device show: %q, want %q:\n%s", r, want, show)
			}
		}
		wantContains(t, "device show", show, "Plain TCP")
		c.usage("device", "set", "SEP0000000079AA")
		if msg := c.refused(http.StatusConflict, "profile", "delete", "Plain TCP"); !strings.Contains(msg, "applied to devices") {
			t.Fatalf("deleting a profile in use: %q", msg)
		}
		for _, alias := range [][]string{{"device", "list"}, {"devices"}} {
			if r := tableRow(c.run(alias...), "SEP0000000079AA"); len(r) < 5 || r[1] != "7940" || r[4] != "Plain" {
				t.Fatalf("%s: row %q", strings.Join(alias, " "), r)
			}
		}
		wantContains(t, "device delete", c.run("device", "delete", "SEP0000000079AA"), "deleted device")
		c.refused(http.StatusNotFound, "device", "show", "SEP0000000079AA")
		c.run("profile", "delete", "Plain TCP")

		// A reset drops a registered phone's binding (S-15): it must register again.
		const dev = "SEP001122334401"
		ph := env.Phone(dev, true)
		ctx := context.Background()
		if _, err := ph.Onboard(ctx, env.Devices[dev].ActivationCode); err != nil {
			t.Fatalf("onboard: %v", err)
		}
		if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
			t.Fatalf("register: %v %v", res, err)
		}
		wantContains(t, "registrations", c.run("registrations"), "sip:1001@edgeway.test", dev)
		wantContains(t, "apply-config", c.run("device", "apply-config", "SEP001122334402"), "0 binding(s) removed")
		wantContains(t, "reset", c.run("device", "reset", dev), "reset "+dev+": 1 binding(s) removed")
		for _, r := range env.Registrations(t) {
			if r.Device == dev {
				t.Fatalf("binding of %s survives its reset: %+v", dev, r)
			}
		}
		if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
			t.Fatalf("register after reset: %v %v", res, err)
		}
	})

	t.Run("sipOAuth mode and the CallManager service", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		// quickstart starts with the mode on: turn it off first.
		out := c.run("utils", "sipOAuth-mode", "disable")
		wantContains(t, "disable", out, "Cluster SIPOAuth Mode: disabled", "S-14", node)
		wantContains(t, "restart", c.run("service", "restart", "callmanager"), "restarted callmanager on node "+node, "mode disabled")

		out = c.run("utils", "sipOAuth-mode", "status")
		wantContains(t, "status", out, "Cluster SIPOAuth Mode: disabled", "no restart needed")
		out = c.run("utils", "sipOAuth-mode", "enable")
		wantContains(t, "enable", out, "Cluster SIPOAuth Mode: enabled")
		out = c.run("utils", "sipoauth-mode", "status")
		if r := tableRow(out, node); len(r) < 4 || r[2] != "disabled" || r[3] != "yes" {
			t.Fatalf("status after enable: node row %q, want running disabled, restart needed:\n%s", r, out)
		}
		wantContains(t, "status after enable", out, "S-14: restart the CallManager service on "+node)
		wantContains(t, "restart", c.run("service", "restart", "callmanager"), "mode enabled")
		out = c.run("utils", "sipOAuth-mode", "status")
		if r := tableRow(out, node); len(r) < 4 || r[2] != "enabled" || r[3] != "no" {
			t.Fatalf("status after restart: node row %q:\n%s", r, out)
		}
		wantContains(t, "status after restart", out, "no restart needed")
		if strings.Contains(out, "S-14") {
			t.Fatalf("status after restart still asks for one:\n%s", out)
		}
		c.refused(http.StatusBadRequest, "service", "restart", "tftp")
		c.usage("service", "restart")
		c.usage("utils", "sipOAuth-mode", "status", "now")
	})

	t.Run("nodes", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		out := c.run("node", "list")
		wantContains(t, "node list", out, "PHONE-OAUTH-PORT", "MRA-PORT", "LISTENING", "RUNNING-MODE", "RESTART-NEEDED")
		r := tableRow(out, node)
		if len(r) != 7 || r[1] != core.RolePublisher || r[4] != r[2]+"/"+r[3] {
			t.Fatalf("node list: %q; want the node listening on its configured ports", r)
		}
		listening := r[4]
		for _, bad := range [][]string{{"--mra-port", "1023"}, {"--phone-oauth-port", "49152"}} {
			if msg := c.refused(http.StatusBadRequest, append([]string{"node", "set", node}, bad...)...); !strings.Contains(msg, core.ErrPortRange.Error()) {
				t.Fatalf("node set %v: %q, want %q", bad, msg, core.ErrPortRange)
			}
		}
		c.refused(http.StatusBadRequest, "node", "set", node, "--phone-oauth-port", "15091", "--mra-port", "15091")
		c.refused(http.StatusNotFound, "node", "set", "core-9", "--mra-port", "15091")
		c.usage("node", "set", node)
		c.usage("node", "set", node, "--mra-port", "five")
		wantContains(t, "node set", c.run("node", "set", node, "--phone-oauth-port", "15090", "--mra-port", "15091"), "15090", "15091")
		out = c.run("node", "list")
		if r := tableRow(out, node); len(r) != 7 || r[2] != "15090" || r[3] != "15091" || r[4] != listening+"*" {
			t.Fatalf("node list after set: %q; want the new ports configured, the old ones still listening (*)", r)
		}
		wantContains(t, "node list after set", out, "apply when edgeway core restarts")
	})

	t.Run("expressway", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		out := c.run("expressway", "add", "--address", "192.0.2.30", "--name", "expc3.example", "--domain", "a.example", "--description", "third edge")
		id := regexp.MustCompile(`entry (\d+)`).FindStringSubmatch(out)
		if id == nil {
			t.Fatalf("expressway add: %s", out)
		}
		c.run("expressway", "edit", id[1], "--domain", "b.example", "--domain", "c.example")
		out = c.run("expressway", "list")
		wantContains(t, "list after editing the domains", out, "expc3.example", "b.example, c.example", "third edge", "192.0.2.30")
		if strings.Contains(out, "a.example") {
			t.Fatalf("--domain must replace the list:\n%s", out)
		}
		c.run("expressway", "edit", id[1], "--name", "expc4.example", "--address", "expc4.example")
		if r := tableRow(c.run("expressway", "list"), id[1]); len(r) < 4 || r[1] != "expc4.example" || r[2] != "expc4.example" || r[3] != "b.example," {
			t.Fatalf("list after editing the names: %q", r)
		}
		if msg := c.refused(http.StatusBadRequest, "expressway", "edit", id[1], "--name", ""); !strings.HasPrefix(msg, "S-12:") {
			t.Fatalf("an entry without names: %q", msg)
		}
		if _, err := c.try("expressway", "edit", "999", "--address", "x"); err == nil || !strings.Contains(err.Error(), "no Expressway-C entry 999") {
			t.Fatalf("editing an unknown entry: %v", err)
		}
		c.usage("expressway", "edit", id[1])
		c.usage("expressway", "edit", "one", "--address", "x")
		c.usage("expressway", "add", "--address", "192.0.2.31")
		c.run("expressway", "delete", id[1])
	})

	t.Run("trust", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		ca, err := mtls.NewCA("CLI Test CA", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(file, ca.CertPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(ca.Cert.Raw)
		fp := hex.EncodeToString(sum[:])

		c.usage("trust", "upload", file)
		// Flags may follow the file.
		wantContains(t, "trust upload", c.run("trust", "upload", file, "--store", core.TrustTomcat), "added to tomcat-trust: CN=CLI Test CA", fp)
		wantContains(t, "upload again", c.run("trust", "upload", "--store", core.TrustTomcat, file), "already in tomcat-trust")
		out := c.run("trust", "list", "--store", core.TrustTomcat)
		wantContains(t, "trust list", out, "STORE", "SUBJECT", "ISSUER", "EXPIRES", "FINGERPRINT", "SOURCE")
		found := false
		for line := range strings.Lines(out) {
			if strings.Contains(line, fp) {
				found = strings.HasPrefix(line, core.TrustTomcat) && strings.Contains(line, "CN=CLI Test CA") && strings.HasSuffix(strings.TrimSpace(line), "uploaded")
			}
		}
		if !found {
			t.Fatalf("trust list lacks the uploaded CA %s:\n%s", fp, out)
		}
		if strings.Contains(c.run("trust", "list", "--store", core.TrustPhoneEdge), fp) {
			t.Fatal("the CA shows in phone-edge-trust too")
		}
		c.refused(http.StatusBadRequest, "trust", "list", "--store", "no-such-trust")
		c.refused(http.StatusNotFound, "trust", "delete", "--store", core.TrustPhoneEdge, fp)
		wantContains(t, "trust delete", c.run("trust", "delete", "--store", core.TrustTomcat, fp), "deleted "+fp)
		if strings.Contains(c.run("trust", "list"), fp) {
			t.Fatal("trust list still shows the deleted CA")
		}
		c.usage("trust", "delete", fp)
	})

	t.Run("tokens, accounts, login", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		dir := t.TempDir()
		out := c.run("token", "create", "--name", "ci script")
		m := regexp.MustCompile(`API token (\S+) "ci script" for admin`).FindStringSubmatch(out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		tok := lines[len(lines)-1]
		if m == nil || !strings.HasPrefix(tok, "ewa_") {
			t.Fatalf("token create: %s", out)
		}
		tokFile := filepath.Join(dir, "ci.token")
		if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ci := c.with(tokFile)
		wantContains(t, "params get with the new token", ci.run("params", "get"), core.ParamAccessTokenForDevices)
		if out := c.run("token", "list"); strings.Contains(out, tok) || tableRow(out, m[1]) == nil {
			t.Fatalf("token list must show the token's id, never the secret:\n%s", out)
		}
		wantContains(t, "token revoke", c.run("token", "revoke", m[1]), "revoked API token "+m[1])
		if msg := ci.refused(http.StatusUnauthorized, "params", "get"); !strings.Contains(msg, "revoked") {
			t.Fatalf("a revoked token: %q", msg)
		}
		if r := tableRow(c.run("token", "list"), m[1]); len(r) < 2 || !slices.Contains(r, "revoked") {
			t.Fatalf("token list after revoke: %q", r)
		}
		saved := filepath.Join(dir, "saved.token")
		c.run("token", "create", "--name", "saved", "--save", saved)
		if st, err := os.Stat(saved); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("token create --save: %v %v, want mode 0600", st, err)
		}
		c.with(saved).run("node", "list")
		c.usage("token", "create")
		// Issue 9 item 13: --ttl, and the expiry shown on creation and in the list.
		out = c.run("token", "create", "--name", "one day", "--ttl", "24h")
		day := regexp.MustCompile(`API token (\S+) "one day" for admin, expires `).FindStringSubmatch(out)
		if day == nil {
			t.Fatalf("token create --ttl 24h: %s", out)
		}
		if r := tableRow(c.run("token", "list"), day[1]); r == nil || slices.Contains(r, "never") || !slices.Contains(r, "active") {
			t.Fatalf("token list row of a 24h token: %q", r)
		}
		c.refused(http.StatusBadRequest, "token", "create", "--name", "too long", "--ttl", "9000h")

		// An admin account, then a login with its password: no token needed.
		const pass = "correct horse battery staple"
		c.refused(http.StatusBadRequest, "account", "set", "ops", "--password", "short")
		wantContains(t, "account set", c.run("account", "set", "ops", "--password", pass), "admin account ops saved")
		noToken := &cli{t: t, env: env, conn: []string{"--core", env.Info.CoreHTTPS, "--ca", env.Info.CACert}}
		opsFile := filepath.Join(dir, "ops.token")
		wantContains(t, "login --save", noToken.run("login", "--username", "ops", "--password", pass, "--name", "ops laptop", "--save", opsFile), "logged in as ops", "saved to "+opsFile)
		if st, err := os.Stat(opsFile); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("login --save: %v %v, want mode 0600", st, err)
		}
		wantContains(t, "token list as ops", c.with(opsFile).run("token", "list"), "ops laptop")
		t.Setenv(passwordEnv, pass)
		out = noToken.run("login", "--username", "ops")
		lines = strings.Split(strings.TrimSpace(out), "\n")
		envTok := filepath.Join(dir, "env.token")
		if err := os.WriteFile(envTok, []byte(lines[len(lines)-1]), 0o600); err != nil {
			t.Fatal(err)
		}
		c.with(envTok).run("audit", "--limit", "1")
		t.Setenv(passwordEnv, "")
		if msg := noToken.refused(http.StatusUnauthorized, "login", "--username", "ops", "--password", "wrong password!"); !strings.Contains(msg, "invalid admin username or password") {
			t.Fatalf("a wrong password: %q", msg)
		}
		noToken.usage("login", "--username", "ops")
		noToken.usage("token", "list") // every other command needs a token
	})

	// a user's refresh tokens, listed and revoked (an employee
	// leaves), and one family revoked by its id; the phone's refresh is
	// refused at once.
	t.Run("users' refresh tokens", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		const dev = "SEP001122334402"
		ctx := context.Background()
		c.run("device", "set", dev, "--owner", "jdoe")
		onboard := func(code string) *bench.Phone {
			t.Helper()
			ph := env.Phone(dev, true)
			if _, err := ph.Onboard(ctx, code); err != nil {
				t.Fatalf("onboard: %v", err)
			}
			return ph
		}
		refused := func(ph *bench.Phone, what string) {
			t.Helper()
			var te *bench.TokenError
			if _, err := ph.Refresh(ctx); !errors.As(err, &te) || te.Code != "invalid_grant" {
				t.Fatalf("%s: refresh %v, want invalid_grant", what, err)
			}
		}
		// familyID is the id in the one row of `user families` for dev.
		familyID := func(out string) []string {
			t.Helper()
			for line := range strings.Lines(out) {
				if f := strings.Fields(line); len(f) > 4 && f[1] == dev && f[4] == "active" {
					return f
				}
			}
			t.Fatalf("no active family of %s in\n%s", dev, out)
			return nil
		}
		ph := onboard(env.Devices[dev].ActivationCode)
		out := c.run("user", "families", "jdoe")
		wantContains(t, "user families", out, "ID", "DEVICE", "ORIGIN", "VIA-MRA", "STATE", "EXPIRES")
		f := familyID(out)
		if f[2] != "activation_code" || f[3] != "yes" {
			t.Fatalf("user families row %q, want an activation_code family via MRA", f)
		}
		wantContains(t, "user families of nobody", c.run("user", "families", "nobody"), "no refresh-token family")
		c.usage("user", "families")
		c.usage("user", "revoke-tokens")
		c.usage("family", "revoke")
		if msg := c.refused(http.StatusNotFound, "family", "revoke", "no-such-family"); !strings.Contains(msg, "no-such-family") {
			t.Fatalf("revoking an unknown family: %q", msg)
		}
		wantContains(t, "user revoke-tokens", c.run("user", "revoke-tokens", "jdoe"), "R-2: revoked 1 refresh-token family of jdoe", f[0])
		refused(ph, "after user revoke-tokens")
		if r := tableRow(c.run("user", "families", "jdoe"), f[0]); len(r) < 5 || r[4] != "revoked" {
			t.Fatalf("the family after user revoke-tokens: %q, want revoked", r)
		}
		wantContains(t, "user revoke-tokens again", c.run("user", "revoke-tokens", "jdoe"), "nothing was revoked")

		// A new code, a new family; revoked by its id.
		code := regexp.MustCompile(`activation code (\S+) \(one-time`).FindStringSubmatch(c.run("activation", "issue", dev))
		if code == nil {
			t.Fatal("activation issue: no code")
		}
		ph = onboard(code[1])
		g := familyID(c.run("user", "families", "jdoe"))
		wantContains(t, "family revoke", c.run("family", "revoke", g[0]), "revoked refresh-token family "+g[0])
		refused(ph, "after family revoke")
	})

	t.Run("audit", func(t *testing.T) {
		c := &cli{t: t, env: env, conn: c.conn}
		out := c.run("audit", "--limit", "500")
		wantContains(t, "audit", out, "AT", "ACTOR", "ACTION", "DETAIL",
			"params.set", "profile.set", "profile.delete", "device.set", "device.delete", "device.reset", "device.apply-config",
			"utils.sipoauth-mode", "service.restart", "node.set", "expressway.add", "expressway.edit", "expressway.delete",
			"trust.upload", "trust.delete", "auth.token-create", "auth.token-revoke", "account.set", "ops (password login)",
			"user.families-revoke", "family.revoke")
		if n := len(strings.Split(strings.TrimSpace(c.run("audit", "--limit", "2")), "\n")); n != 3 {
			t.Fatalf("audit --limit 2: %d lines, want a header and 2 entries", n)
		}
		c.usage("audit", "--limit", "-1")
	})
}

// The subcommand table: every path and alias is unique, the usage text
// lists every command, and -h works without a core to talk to.
func TestAdminCommandTable(t *testing.T) {
	t.Chdir(t.TempDir())
	seen := map[string]bool{}
	usage := adminUsage()
	for _, area := range adminAreas() {
		for _, c := range area.cmds {
			for _, name := range append([][]string{c.path}, c.aliases...) {
				k := strings.Join(name, " ")
				if seen[k] {
					t.Errorf("%q names two commands", k)
				}
				seen[k] = true
				got, rest, err := findAdminCmd(append(slices.Clone(name), "x"))
				if err != nil || !slices.Equal(got.path, c.path) || !slices.Equal(rest, []string{"x"}) {
					t.Errorf("findAdminCmd(%q) = %v %q %v", k, got, rest, err)
				}
			}
			if !strings.Contains(usage, c.usageLine()) {
				t.Errorf("usage text lacks %q", c.usageLine())
			}
			if c.summary == "" || c.run == nil {
				t.Errorf("%q needs a summary and a run", c.usageLine())
			}
			var out bytes.Buffer
			if err := runAdmin(context.Background(), append(slices.Clone(c.path), "-h"), &out); !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%s -h: %v, want flag.ErrHelp", c.usageLine(), err)
			}
		}
	}
	for _, words := range [][]string{{"device"}, {"device", "frobnicate"}, {"utils", "sipOAuth-mode"}} {
		_, _, err := findAdminCmd(words)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), words[0]+" takes ") {
			t.Errorf("findAdminCmd(%q) = %v, want a usage error listing the subcommands", words, err)
		}
	}
}
