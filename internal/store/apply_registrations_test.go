package store

import (
	"context"
	"testing"
	"time"
)

// TestApplyRegistrations: one call applies deletes, then puts; an empty
// Contact deletes the whole AOR; a batch with one invalid binding writes
// nothing of the batch.
func TestApplyRegistrations(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	reg := func(aor, contact string) Registration {
		return Registration{AOR: aor, Contact: contact, Device: "SEP1", CallID: "c", CSeq: 1, ExpiresAt: t0.Add(time.Hour), UpdatedAt: t0}
	}
	a1, a2, b1 := reg("sip:1001@example.com", "<sip:a1>"), reg("sip:1001@example.com", "<sip:a2>"), reg("sip:1002@example.com", "<sip:b1>")
	must(t, s.ApplyRegistrations(ctx, []Registration{a1, a2, b1}, nil))
	must(t, s.ApplyRegistrations(ctx, []Registration{a1}, []RegistrationKey{{AOR: a1.AOR, Contact: a2.Contact}}))
	got, err := s.Registrations(ctx, "", t0)
	must(t, err)
	if len(got) != 2 || got[0].Contact != a1.Contact || got[1].Contact != b1.Contact {
		t.Fatalf("after delete a2 = %+v", got)
	}
	must(t, s.ApplyRegistrations(ctx, nil, []RegistrationKey{{AOR: b1.AOR}}))
	if got, _ = s.Registrations(ctx, "", t0); len(got) != 1 || got[0].Contact != a1.Contact {
		t.Fatalf("after delete all of %s = %+v", b1.AOR, got)
	}
	bad := reg("sip:1003@example.com", "<sip:c1>")
	bad.ExpiresAt = time.Time{}
	if err := s.ApplyRegistrations(ctx, []Registration{reg("sip:1004@example.com", "<sip:d1>"), bad},
		[]RegistrationKey{{AOR: a1.AOR}}); err == nil {
		t.Fatal("a batch with a binding without expiry was accepted")
	}
	if got, _ = s.Registrations(ctx, "", t0); len(got) != 1 || got[0].Contact != a1.Contact {
		t.Fatalf("a refused batch changed the store: %+v", got)
	}
}
