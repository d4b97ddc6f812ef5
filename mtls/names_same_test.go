package mtls

import "testing"

func TestSameName(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"expc.example.com", "EXPC.example.com.", true},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
		{"expc.example.com", "xexpc.example.com", false},
		{"*.example.com", "expc.example.com", false},
		{"", "", false},
		{"K.example.com", "\u212a.example.com", false}, // Kelvin sign is not K
	} {
		if got := SameName(tc.a, tc.b); got != tc.want {
			t.Errorf("SameName(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
