package activation

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/edgeway/edgeway/internal/store"
)

// BenchmarkRedeem measures one exactly-once redemption against a real
// SQLite file (WAL): throttle check, HMAC, conditional UPDATE.
func BenchmarkRedeem(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc, err := New(st, make([]byte, 32), Config{})
	if err != nil {
		b.Fatal(err)
	}
	codes := make([]Issued, b.N)
	for i := range codes {
		d := fmt.Sprintf("SEP%012d", i)
		if err := st.PutDevice(ctx, store.Device{Name: d, Model: "8845", Line: fmt.Sprint(10000 + i)}); err != nil {
			b.Fatal(err)
		}
		if codes[i], err = svc.Issue(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Redeem(ctx, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), codes[i].Device, codes[i].Code.String()); err != nil {
			b.Fatal(err)
		}
	}
}
