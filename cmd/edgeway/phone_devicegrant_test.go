package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
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
			if c, b := env.Admin(t, http.MethodPost, "/api/v1/device-codes/"+code+"/approve", nil); c != 200 {
				t.Fatalf("approve: %d %s", c, b)
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
