package policy

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeway/edgeway/internal/store"
)

func TestOAuthCapable(t *testing.T) {
	// S-5: the device types whose security profile may enable OAuth.
	s5 := []string{
		"7811", "7821", "7832", "7841", "7861",
		"8811", "8832", "8832NR", "8841", "8845", "8851", "8851NR", "8861", "8865", "8865NR",
		"TCT", "BOT", "CSF", "TAB", "UDT",
	}
	for _, m := range s5 {
		for _, spelling := range []string{m, strings.ToLower(m), " " + m, m + " "} {
			if !OAuthCapable(spelling) {
				t.Errorf("OAuthCapable(%q) = false, want true (S-5)", spelling)
			}
		}
	}
	for _, m := range []string{"Csf", "8865nR", "\t8845\n"} {
		if !OAuthCapable(m) {
			t.Errorf("OAuthCapable(%q) = false, want true (S-5, case- and space-insensitive)", m)
		}
	}

	refused := []string{
		"", " ", "7940", "7960", "7942", "7945", "7965", "8800", "8845NR", "8861NR", "8811NR",
		"88 45", "8845-3PCC", "CSF1", "JABBER", "DX80", "9971", "SEP001122334401",
	}
	for _, m := range refused {
		if OAuthCapable(m) {
			t.Errorf("OAuthCapable(%q) = true, want false (not in S-5)", m)
		}
	}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestCheckDeviceOAuth(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	profiles := []store.SecurityProfile{
		{Name: "oauth", Mode: "encrypted", Transport: "TLS", OAuth: true},
		{Name: "oauth-mixed-case", Mode: "Encrypted", Transport: "tls", OAuth: true},
		{Name: "oauth+digest", Mode: "encrypted", Transport: "TLS", OAuth: true, Digest: true},
		{Name: "non-secure", Mode: "non-secure", Transport: "TLS", OAuth: true},
		{Name: "authenticated", Mode: "authenticated", Transport: "TLS", OAuth: true},
		{Name: "tcp", Mode: "encrypted", Transport: "TCP", OAuth: true},
		{Name: "udp", Mode: "encrypted", Transport: "UDP", OAuth: true},
		{Name: "tcp+udp", Mode: "encrypted", Transport: "TCP+UDP", OAuth: true},
		{Name: "oauth-unticked", Mode: "encrypted", Transport: "TLS", OAuth: false},
		{Name: "empty", Mode: "", Transport: "", OAuth: true},
	}
	for _, p := range profiles {
		if err := st.PutSecurityProfile(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		model   string
		profile string
		want    error // nil: admitted
	}{
		{"encrypted TLS OAuth", "8845", "oauth", nil},
		{"case-insensitive mode and transport", "CSF", "oauth-mixed-case", nil},
		{"lower-case model", "csf", "oauth", nil},
		{"oauth with digest also ticked", "8865", "oauth+digest", nil},
		{"non-secure (S-15)", "8845", "non-secure", ErrProfileNotOAuth},
		{"authenticated (S-15)", "8845", "authenticated", ErrProfileNotOAuth},
		{"TCP (S-15)", "8845", "tcp", ErrProfileNotOAuth},
		{"UDP (S-15)", "8845", "udp", ErrProfileNotOAuth},
		{"TCP+UDP (S-15)", "8845", "tcp+udp", ErrProfileNotOAuth},
		{"OAuth unticked (S-15)", "8845", "oauth-unticked", ErrProfileNotOAuth},
		{"empty mode and transport (S-15)", "8845", "empty", ErrProfileNotOAuth},
		{"missing profile (S-15)", "8845", "no such profile", ErrProfileNotOAuth},
		{"no profile named (S-15)", "8845", "", ErrProfileNotOAuth},
		{"model 7940 (S-5)", "7940", "oauth", ErrModelNotOAuth},
		{"model 7940 with a bad profile: model first (S-5)", "7940", "tcp", ErrModelNotOAuth},
		{"empty model (S-5)", "", "oauth", ErrModelNotOAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := store.Device{Name: "SEP001122334455", Model: tt.model, Line: "1001", SecurityProfile: tt.profile}
			err := CheckDeviceOAuth(ctx, st, d)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckDeviceOAuth = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckDeviceOAuth = %v, want errors.Is %v", err, tt.want)
			}
			other := ErrModelNotOAuth
			if tt.want == ErrModelNotOAuth {
				other = ErrProfileNotOAuth
			}
			if errors.Is(err, other) {
				t.Errorf("CheckDeviceOAuth = %v also matches %v", err, other)
			}
			if !strings.Contains(err.Error(), d.Name) {
				t.Errorf("CheckDeviceOAuth = %q, want it to name the device", err)
			}
		})
	}
}
