package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/activation"
	"github.com/edgeway/edgeway/internal/testenv"
)

// The admin CLI against a running core: activation issue / issue-bulk /
// list / revoke, Expressway-C add / find / delete, registrations, keys.
func TestAdminCLI(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	conn := []string{"--core", env.Info.CoreHTTPS, "--token-file", env.Info.AdminTokenFile, "--ca", env.Info.CACert}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runAdmin(ctx, append(append([]string{}, conn...), args...), &out); err != nil {
			t.Fatalf("admin %v: %v", args, err)
		}
		return out.String()
	}

	out := run("activation", "issue", "SEP001122334401")
	if !strings.Contains(out, "activation code ") {
		t.Fatalf("issue output: %s", out)
	}

	csvOut := run("activation", "issue-bulk", "SEP001122334401", "SEP001122334402")
	rows, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "device" || rows[0][1] != "activation_code" {
		t.Fatalf("issue-bulk CSV: %v %q", err, csvOut)
	}
	var codes []string
	for _, r := range rows[1:] {
		if _, err := activation.Parse(r[1]); err != nil {
			t.Fatalf("bulk code %q: %v", r[1], err)
		}
		codes = append(codes, r[1])
	}

	list := run("activation", "list", "SEP001122334401")
	for _, c := range codes {
		if strings.Contains(list, c) || strings.Contains(list, strings.ReplaceAll(c, "-", "")) {
			t.Fatalf("activation list shows a plaintext code: %s", list)
		}
	}
	if !strings.Contains(list, "valid") || !strings.Contains(list, "revoked") {
		t.Fatalf("list should show the new valid code and the older revoked ones:\n%s", list)
	}
	id := rows[1][2]
	if out := run("activation", "revoke", id); !strings.Contains(out, id) {
		t.Fatalf("revoke output: %s", out)
	}
	ph := env.Phone("SEP001122334401", true)
	if _, err := ph.Onboard(ctx, rows[1][1]); err == nil {
		t.Fatal("a revoked code still onboards")
	}

	if out := run("expressway", "add", "--address", "192.0.2.10", "--name", "expc2.edgeway.test", "--description", "second edge"); !strings.Contains(out, "added Expressway-C entry") {
		t.Fatalf("add: %s", out)
	}
	if out := run("expressway", "list"); !strings.Contains(out, "expc2.edgeway.test") {
		t.Fatalf("list: %s", out)
	}
	if out := run("expressway", "find"); !strings.Contains(out, "expc.edgeway.test") || !strings.Contains(out, "yes (entry 1)") {
		t.Fatalf("find: %s", out)
	}
	if out := run("expressway", "delete", "2"); !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %s", out)
	}
	if out := run("registrations"); !strings.Contains(out, "AOR") {
		t.Fatalf("registrations: %s", out)
	}
	if out := run("keys", "rotate"); !strings.Contains(out, "new signing key") {
		t.Fatalf("rotate: %s", out)
	}

	var buf bytes.Buffer
	err = runAdmin(ctx, append(append([]string{}, conn...), "expressway", "delete", "999"), &buf)
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("deleting an unknown entry: %v, want HTTP 404", err)
	}
	err = runAdmin(ctx, append(append([]string{}, conn...), "no-such-command"), &buf)
	if !errors.Is(err, errUsage) {
		t.Fatalf("unknown command: %v, want a usage error", err)
	}
}
