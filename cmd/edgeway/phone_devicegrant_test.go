package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/core/oauth"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// edgeway phone --device-grant prints the user_code and the approval page
// (verification_uri_complete, with a QR code), polls until an
// administrator approves the code, then registers. The core's interval is
// shortened to 1 s for the test; the phone waits it, no fixed sleep here.
func TestPhoneDeviceGrant(t *testing.T) {
	env := testenv.Start(t, testenv.Options{CoreOptions: []core.Option{core.WithDeviceGrant(oauth.DeviceGrantConfig{Interval: time.Second})}})
	qs := filepath.Join(t.TempDir(), "quickstart.json")
	info := env.Info
	info.PID = os.Getpid()
	if err := quickstart.WriteInfo(qs, info); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runPhone(ctx, []string{"--quickstart", qs, "--device", "SEP001122334401", "--device-grant", "--keepalive", "-1s", "--log-level", "error"}, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	userCodeLine := regexp.MustCompile(`user_code ([B-Z]{4}-[B-Z]{4})$`)
	sc := bufio.NewScanner(pr)
	var code, page string
	var seen []string
	for sc.Scan() {
		line := sc.Text()
		seen = append(seen, line)
		if m := userCodeLine.FindStringSubmatch(line); m != nil {
			code = m[1]
		}
		if strings.HasPrefix(line, "approve it at ") {
			page = strings.Fields(line)[3]
			if code == "" || !strings.HasSuffix(page, "/ui/device?user_code="+code) {
				t.Fatalf("approval page %q for user_code %q", page, code)
			}
			// The administrator: edgeway admin device-code list, approve.
			var list, approved bytes.Buffer
			if err := runAdmin(ctx, []string{"--quickstart", qs, "device-code", "list"}, &list); err != nil || !strings.Contains(list.String(), code) ||
				!strings.Contains(list.String(), "SEP001122334401") {
				t.Fatalf("edgeway admin device-code list: %v\n%s", err, list.String())
			}
			if err := runAdmin(ctx, []string{"--quickstart", qs, "device-code", "approve", code}, &approved); err != nil ||
				!strings.Contains(approved.String(), "approved "+code+" for device SEP001122334401") {
				t.Fatalf("edgeway admin device-code approve: %v\n%s", err, approved.String())
			}
		}
		if strings.Contains(line, "registered") {
			break
		}
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-done; err != nil {
		t.Fatalf("edgeway phone --device-grant: %v\n%s", err, strings.Join(seen, "\n"))
	}
	out := strings.Join(seen, "\n")
	if page == "" || !strings.Contains(out, "onboarded SEP001122334401") || !strings.Contains(out, "█") {
		t.Fatalf("edgeway phone --device-grant printed:\n%s", out)
	}
}
