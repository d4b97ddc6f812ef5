package passwd

import (
	"errors"
	"testing"
)

func TestHashCheck(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(h, "correct horse"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := Check(h, "correct hors"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	h2, _ := Hash("correct horse")
	if h == h2 {
		t.Fatal("two hashes of one password must differ (salt)")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=999999999,t=1,p=1$AA$AA"} {
		if err := Check(bad, "x"); err == nil || errors.Is(err, ErrMismatch) {
			t.Fatalf("malformed %q: %v", bad, err)
		}
	}
}
