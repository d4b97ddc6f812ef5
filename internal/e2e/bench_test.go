package e2e

import (
	"context"
	"testing"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/testenv"
)

// BenchmarkRegister measures a REGISTER round trip with a bearer token:
// through the edge (pre-check, Path, mTLS hop to 5091) and, as the
// baseline in the same run, straight to the core's Phone OAuth port.
func BenchmarkRegister(b *testing.B) {
	env := testenv.Start(b, testenv.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		mra  bool
	}{{"core-5090", false}, {"edge-to-5091", true}} {
		b.Run(tc.name, func(b *testing.B) {
			ph := env.Phone(phoneA, tc.mra)
			onboardOnce(b, env, ph)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := ph.Register(ctx, 600)
				if err != nil || res.StatusCode != 200 {
					b.Fatalf("register: %v %v", res, err)
				}
			}
		})
	}
}

var benchTokens *bench.Tokens

// onboardOnce redeems the demo code once per env and reuses the tokens.
func onboardOnce(b *testing.B, env *testenv.Env, ph *bench.Phone) {
	b.Helper()
	if benchTokens == nil {
		t, err := ph.Onboard(context.Background(), env.Devices[phoneA].ActivationCode)
		if err != nil {
			b.Fatal(err)
		}
		benchTokens = &t
	}
	ph.SetTokens(*benchTokens)
}
