package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/internal/token"
)

// Issue 9: `activation list` shows a code locked after too many wrong
// guesses, and `activation issue DEVICE` replaces it with a working one.
func TestAdminCLIActivationLocked(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := context.Background()
	const dev = "SEP001122334402"
	conn := []string{"--core", env.Info.CoreHTTPS, "--token-file", env.Info.AdminTokenFile, "--ca", env.Info.CACert}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runAdmin(ctx, append(append([]string{}, conn...), args...), &out); err != nil {
			t.Fatalf("admin %v: %v", args, err)
		}
		return out.String()
	}
	grant := func(source, code string) error {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 10 * time.Second}
		tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: env.CA, MinVersion: tls.VersionTLS12}}
		defer tr.CloseIdleConnections()
		_, err := bench.PostToken(ctx, &http.Client{Transport: tr}, env.Info.EdgeHTTPS, url.Values{
			"grant_type": {token.GrantTypeActivationCode}, "device": {dev},
			"activation_code": {code}, "service_domain": {quickstart.Domain}})
		return err
	}
	for i := range 10 { // the default per-device budget
		if err := grant(fmt.Sprintf("127.1.7.%d", i+1), fmt.Sprintf("%016d", i)); err == nil {
			t.Fatal("a wrong code was accepted")
		}
	}
	if list := run("activation", "list", dev); !strings.Contains(list, "locked") {
		t.Fatalf("activation list after ten wrong guesses:\n%s", list)
	}
	out := run("activation", "issue", dev)
	_, rest, _ := strings.Cut(out, "activation code ")
	code, _, _ := strings.Cut(rest, " ")
	if list := run("activation", "list", dev); strings.Contains(list, "locked") || !strings.Contains(list, "valid") || !strings.Contains(list, "revoked") {
		t.Fatalf("activation list after re-issue:\n%s", list)
	}
	if err := grant("127.1.7.1", code); err != nil {
		t.Fatalf("re-issued code %q: %v", code, err)
	}
}
