package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/pgtest"
	"github.com/edgeway/edgeway/internal/testenv"
)

// The whole system on the cluster store (issue 11): quickstart's tiers
// with their core on a real PostgreSQL server: phones onboard with codes,
// register through the edge, and call each other; the bindings are rows
// on the server, and a second redemption of a code is refused.
func TestOnboardRegisterCallOnPostgres(t *testing.T) {
	srv := pgtest.Start(t)
	env := testenv.Start(t, testenv.Options{StoreURL: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := registered(t, env, phoneA, true)
	b := registered(t, env, phoneB, true)
	autoAnswer(b)
	call, in := dialAnswered(t, ctx, a, b, "1002")
	waitCalls(t, env, 1)
	if err := call.Hangup(ctx); err != nil {
		t.Fatalf("hanging up: %v", err)
	}
	select {
	case <-in.Done():
	case <-ctx.Done():
		t.Fatal("the callee's side never ended")
	}
	waitCalls(t, env, 0)
	regs, err := env.Store.Registrations(ctx, "", time.Now())
	if err != nil || len(regs) != 2 {
		t.Fatalf("bindings in PostgreSQL = %+v, %v; want the two phones'", regs, err)
	}
	if _, err := env.Phone(phoneA, true).Onboard(ctx, env.Devices[phoneA].ActivationCode); err == nil {
		t.Fatal("an activation code was redeemed twice")
	}
}
