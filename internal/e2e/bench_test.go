package e2e

import (
	"context"
	"testing"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/testenv"
)

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

// BenchmarkEdgeRelayRegister measures what the edge costs per REGISTER it
// relays (issue 10 §2): the same phone registers through the edge (TLS on
// the edge's SIP port, bearer pre-check, Path, the shared mTLS link to the
// core's MRA port 5091 and the 200 relayed back) and, in the same env,
// straight to the core's Phone OAuth port 5090. Every tier and the phone
// run in this process, so each figure counts all of them; the difference
// between via-edge and direct-core is the edge's share (the core does the
// same registrar work on both ports, with the token checked on both).
// cpu-ns/op is the process's CPU time (all tiers and the phone) per
// REGISTER.
func BenchmarkEdgeRelayRegister(b *testing.B) {
	env := testenv.Start(b, testenv.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		mra  bool
	}{{"direct-core", false}, {"via-edge", true}} {
		b.Run(tc.name, func(b *testing.B) {
			ph := env.Phone(phoneA, tc.mra)
			onboardOnce(b, env, ph)
			// The first REGISTER opens the phone's TLS connection (and,
			// through the edge, the link to the core): not per message.
			if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
				b.Fatalf("register: %v %v", res, err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			for b.Loop() {
				res, err := ph.Register(ctx, 600)
				if err != nil || res.StatusCode != 200 {
					b.Fatalf("register: %v %v", res, err)
				}
			}
			// CPU time is less at the mercy of a shared machine's
			// scheduling than ns/op, a round trip's wall time.
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
