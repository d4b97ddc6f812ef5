package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/bench"
)

// The stored tokens round-trip with their issue time, the file is 0600 and
// each Save replaces it whole (no temporary files left); a second holder
// of the same device is refused while the first holds it, and admitted
// once it lets go.
func TestPhoneStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "phones")
	s, err := openPhoneStore(dir, "SEP001122334401")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Load(); err != nil || ok {
		t.Fatalf("empty store: ok %v, %v", ok, err)
	}
	obtained := time.Now().Add(-time.Minute).Round(time.Second)
	for i, rt := range []string{"rt-1", "rt-2"} { // a rotation replaces the first
		if err := s.Save(bench.Tokens{AccessToken: "at", RefreshToken: rt, ExpiresIn: 3600, Obtained: obtained}); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	got, ok, err := s.Load()
	if err != nil || !ok || got.RefreshToken != "rt-2" || !got.Obtained.Equal(obtained) || got.ExpiresIn != 3600 {
		t.Fatalf("loaded %+v ok %v err %v", got, ok, err)
	}
	fi, err := os.Stat(s.path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}

	if _, err := openPhoneStore(dir, "SEP001122334401"); !errors.Is(err, errDeviceBusy) {
		t.Fatalf("second holder of the device: %v, want %v", err, errDeviceBusy)
	}
	other, err := openPhoneStore(dir, "SEP001122334402") // another device is free
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	s.Close()
	again, err := openPhoneStore(dir, "SEP001122334401")
	if err != nil {
		t.Fatalf("after the first let go: %v", err)
	}
	if err := again.Forget(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := again.Load(); ok {
		t.Fatal("tokens still there after Forget")
	}
	again.Close()

	for _, bad := range []string{"../x", "a/b", "", ".hidden"} {
		if _, err := openPhoneStore(dir, bad); !errors.Is(err, errUsage) {
			t.Errorf("device %q: %v, want a usage error", bad, err)
		}
	}
}
