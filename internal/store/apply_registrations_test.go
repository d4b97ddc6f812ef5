package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// registrationStore is what the location service needs of either engine.
type registrationStore interface {
	ApplyRegistrations(ctx context.Context, puts []Registration, deletes []RegistrationKey) error
	Registrations(ctx context.Context, aor string, now time.Time) ([]Registration, error)
}

var (
	_ registrationStore = (*SQLite)(nil)
	_ registrationStore = (*Postgres)(nil)
)

// engines runs test against a fresh SQLite file and a fresh PostgreSQL
// database (forEachEngine): one suite, both engines.
func engines(t *testing.T, test func(t *testing.T, s registrationStore)) {
	forEachEngine(t, func(t *testing.T, db testDB) { test(t, db.open()) })
}

func openPostgresTest(t *testing.T) *Postgres { return postgresNodes(t, 1)[0] }

// postgresNodes opens n stores on one fresh PostgreSQL database (on the
// test binary's shared server), as n core nodes of a cluster would.
func postgresNodes(t *testing.T, n int) []*Postgres {
	t.Helper()
	url := pgSchema.Database(t)
	var nodes []*Postgres
	for range n {
		p, err := OpenPostgres(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		nodes = append(nodes, p)
	}
	return nodes
}

// TestApplyRegistrations: one call applies deletes, then puts; an empty
// Contact deletes the whole AOR; a batch with one invalid binding writes
// nothing of the batch; what is read back is what was written.
func TestApplyRegistrations(t *testing.T) { engines(t, testApplyRegistrations) }

func testApplyRegistrations(t *testing.T, s registrationStore) {
	ctx := context.Background()
	reg := func(aor, contact string) Registration {
		return Registration{AOR: aor, Contact: contact, Device: "SEP1", CallID: "c", CSeq: 1, ExpiresAt: t0.Add(time.Hour), UpdatedAt: t0}
	}
	a1, a2, b1 := reg("sip:1001@example.com", "<sip:a1>"), reg("sip:1001@example.com", "<sip:a2>"), reg("sip:1002@example.com", "<sip:b1>")
	a1.Path, a1.MRA, a1.Edge, a1.Node, a1.Source = []string{"<sip:edge.example.com;lr>", "<sip:b;lr>"}, true, "expe-1", "core-2", "mra"
	must(t, s.ApplyRegistrations(ctx, []Registration{a1, a2, b1}, nil))
	if got, err := s.Registrations(ctx, a1.AOR, t0); err != nil || len(got) != 2 || !reflect.DeepEqual(got[0], a1) {
		t.Fatalf("read back %+v, %v; want first %+v", got, err, a1)
	}
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

// BenchmarkApplyRegistrations: the cost of one binding write inside a
// group-commit transaction, by batch size, on a real SQLite file (WAL).
// Most are refreshes of bindings already stored, as under REGISTER load.
func BenchmarkApplyRegistrations(b *testing.B) {
	for _, batch := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("batch-%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, _ := openTest(b)
			puts := make([]Registration, batch)
			n := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				for j := range puts {
					n++
					puts[j] = Registration{AOR: fmt.Sprintf("sip:%d@example.com", n%10_000), Contact: fmt.Sprintf("<sip:%d@192.0.2.1:5061;transport=tls>", n%10_000),
						Device: "SEP001122334455", Path: []string{"<sip:edge.example.com:5061;transport=tls;lr>"}, CallID: "c", CSeq: uint32(n),
						ExpiresAt: t0.Add(time.Hour), Edge: "edge1", Node: "core1", Source: "mra", UpdatedAt: t0}
				}
				if err := s.ApplyRegistrations(ctx, puts, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/write")
		})
	}
}

// A redemption stores the first refresh token of its family in the same
// transaction: a redemption that fails stores none, and a token that
// cannot be stored leaves the code unspent.
func TestRedeemActivationCodeWithFirstToken(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		s := db.open()
		testRedeemWithFirstToken(t, s, func(family string) int {
			t.Helper()
			return rawCount(t, s, `SELECT COUNT(*) FROM refresh_tokens WHERE family = ?`, family)
		})
	})
}

// codeStore is the activation-code part both engines have.
type codeStore interface {
	PutActivationCode(ctx context.Context, c ActivationCode) error
	RedeemActivationCode(ctx context.Context, hash []byte, device string, now time.Time, budget GuessBudget, first ...RefreshToken) (ActivationCode, error)
	ListActivationCodes(ctx context.Context, device string) ([]ActivationCode, error)
}

var (
	_ codeStore = (*SQLite)(nil)
	_ codeStore = (*Postgres)(nil)
)

func putCodeIn(t *testing.T, s codeStore, id, device string, hash []byte) {
	t.Helper()
	must(t, s.PutActivationCode(context.Background(), ActivationCode{
		ID: id, Device: device, Hash: hash, CreatedAt: t0, ExpiresAt: t0.Add(168 * time.Hour)}))
}

func testRedeemWithFirstToken(t *testing.T, s codeStore, tokens func(family string) int) {
	ctx := context.Background()
	first := func(hash, family string) RefreshToken {
		return RefreshToken{Hash: []byte(hash), Family: family, Device: "SEP1", Origin: "activation_code", MRA: true, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	}
	putCodeIn(t, s, "id1", "SEP1", []byte("code-1"))
	if _, err := s.RedeemActivationCode(ctx, []byte("code-1"), "SEP2", t0, GuessBudget{}, first("rt-0", "fam0")); !errors.Is(err, ErrWrongDevice) {
		t.Fatalf("wrong device = %v", err)
	}
	if n := tokens("fam0"); n != 0 {
		t.Fatalf("a refused redemption stored %d refresh tokens", n)
	}
	c, err := s.RedeemActivationCode(ctx, []byte("code-1"), "SEP1", t0, GuessBudget{}, first("rt-1", "fam1"))
	must(t, err)
	if c.ID != "id1" || tokens("fam1") != 1 {
		t.Fatalf("redeemed %+v with %d tokens in its family, want id1 and 1", c, tokens("fam1"))
	}
	// A token that cannot be stored (its hash exists) undoes the redemption.
	putCodeIn(t, s, "id2", "SEP1", []byte("code-2"))
	if _, err := s.RedeemActivationCode(ctx, []byte("code-2"), "SEP1", t0, GuessBudget{}, first("rt-1", "fam2")); !errors.Is(err, ErrConflict) {
		t.Fatalf("redeem with a conflicting token = %v, want ErrConflict", err)
	}
	cs, err := s.ListActivationCodes(ctx, "SEP1")
	must(t, err)
	for _, c := range cs {
		if c.ID == "id2" && !c.UsedAt.IsZero() {
			t.Fatal("the code was spent although its refresh token was not stored")
		}
	}
	if _, err := s.RedeemActivationCode(ctx, []byte("code-2"), "SEP1", t0, GuessBudget{}, first("rt-2", "fam2")); err != nil {
		t.Fatalf("the code could not be redeemed again after the failed attempt: %v", err)
	}
}

// Three nodes on one store redeem the same codes at once: each
// code has exactly one winner, the others are told it was used; and twelve
// wrong guesses on one device from the three nodes at once are counted one
// by one: the tenth (the budget) locks the code, the two after it meet the
// lock without being looked up.
func TestRedeemActivationCodeAcrossNodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		nodes := db.nodes(3)
		const codes = 20
		for i := range codes {
			putCodeIn(t, nodes[0], fmt.Sprint("id", i), "SEP1", []byte(fmt.Sprint("code-", i)))
		}
		type result struct{ err error }
		results := make(chan result, codes*len(nodes))
		for i := range codes {
			for _, n := range nodes {
				go func() {
					_, err := n.RedeemActivationCode(ctx, []byte(fmt.Sprint("code-", i)), "SEP1", t0.Add(time.Minute), GuessBudget{})
					results <- result{err}
				}()
			}
		}
		won, used := 0, 0
		for range codes * len(nodes) {
			switch r := <-results; {
			case r.err == nil:
				won++
			case errors.Is(r.err, ErrAlreadyUsed):
				used++
			default:
				t.Fatalf("a redemption failed otherwise: %v", r.err)
			}
		}
		if won != codes || used != codes*(len(nodes)-1) {
			t.Fatalf("%d redemptions won and %d refused as used, want %d and %d", won, used, codes, codes*(len(nodes)-1))
		}

		putCodeIn(t, nodes[0], "guessed", "SEP2", []byte("the-right-one"))
		budget := GuessBudget{Max: 10, Window: time.Hour}
		const guesses = 12
		errs := make(chan error, guesses)
		for i := range guesses {
			go func() {
				_, err := nodes[i%len(nodes)].RedeemActivationCode(ctx, []byte(fmt.Sprint("wrong-", i)), "SEP2", t0.Add(time.Minute), budget)
				errs <- err
			}()
		}
		counted, locked, lockedBy := 0, 0, 0
		for range guesses {
			err := <-errs
			var ge *GuessError
			switch {
			case errors.As(err, &ge):
				counted++
				if ge.Locked {
					lockedBy++
				}
			case errors.Is(err, ErrLocked):
				locked++
			default:
				t.Fatalf("a wrong guess got %v", err)
			}
		}
		if counted != budget.Max || lockedBy != 1 || locked != guesses-budget.Max {
			t.Fatalf("%d wrong guesses counted (%d locked the code), %d refused as locked; want %d (1), %d",
				counted, lockedBy, locked, budget.Max, guesses-budget.Max)
		}
		if _, err := nodes[2].RedeemActivationCode(ctx, []byte("the-right-one"), "SEP2", t0.Add(time.Minute), budget); !errors.Is(err, ErrLocked) {
			t.Fatalf("the right code after the lock: %v, want ErrLocked", err)
		}
	})
}

// A refresh token rotated on node A and replayed on node B: B is told it
// was used (one winner even when both rotate at once), revokes the family,
// and node A's next rotation of the successor is refused as revoked.
func TestRefreshRotationAcrossNodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		nodes := db.nodes(2)
		a, b := nodes[0], nodes[1]
		tok := func(hash string) RefreshToken {
			return RefreshToken{Hash: []byte(hash), Family: "fam", Device: "SEP1", Origin: "activation_code", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		}
		must(t, a.PutRefreshToken(ctx, tok("rt-1")))
		successor := func(RefreshToken) (RefreshToken, Grace, error) { return tok("rt-2"), Grace{}, nil }
		errs := make(chan error, 2)
		for _, n := range []Store{a, b} {
			go func() {
				_, err := n.RotateRefreshToken(ctx, []byte("rt-1"), t0.Add(time.Minute), successor)
				errs <- err
			}()
		}
		won, replayed := 0, 0
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				won++
			case errors.Is(err, ErrAlreadyUsed):
				replayed++
			default:
				t.Fatalf("rotation failed otherwise: %v", err)
			}
		}
		if won != 1 || replayed != 1 {
			t.Fatalf("%d rotations won, %d refused as used: want 1 and 1", won, replayed)
		}
		old, err := b.RotateRefreshToken(ctx, []byte("rt-1"), t0.Add(2*time.Minute), nil)
		if !errors.Is(err, ErrAlreadyUsed) || old.Family != "fam" {
			t.Fatalf("replay on node B = %+v, %v; want ErrAlreadyUsed with the family", old, err)
		}
		must(t, b.RevokeFamily(ctx, old.Family, t0.Add(2*time.Minute)))
		if _, err := a.RotateRefreshToken(ctx, []byte("rt-2"), t0.Add(3*time.Minute), nil); !errors.Is(err, ErrRevoked) {
			t.Fatalf("node A rotating the successor after node B revoked the family: %v, want ErrRevoked", err)
		}
	})
}

// Revocations made through node A are what node B reads (issue 11: a
// revocation on A refused on B), and a refresh grace recorded on A is
// handed out once, on B.
func TestRevocationAcrossNodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		nodes := db.nodes(2)
		a, b := nodes[0], nodes[1]
		tok := func(hash, family string) RefreshToken {
			return RefreshToken{Hash: []byte(hash), Family: family, Device: "SEP1", Origin: "activation_code", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		}
		must(t, a.PutRefreshToken(ctx, tok("rt-1", "fam1")))
		if r, err := b.TokenRevocation(ctx, "jti-1", "fam1"); err != nil || r.Revoked || r.FamilyRevoked || r.FamilyMissing {
			t.Fatalf("before any revocation node B reads %+v, %v", r, err)
		}
		must(t, a.RevokeAccessToken(ctx, "jti-1", t0.Add(time.Hour)))
		if r, err := b.TokenRevocation(ctx, "jti-1", "fam1"); err != nil || !r.Revoked || r.FamilyRevoked {
			t.Fatalf("after node A revoked the token node B reads %+v, %v", r, err)
		}
		must(t, b.RevokeDeviceFamilies(ctx, "SEP1", t0.Add(time.Minute)))
		if r, err := a.TokenRevocation(ctx, "jti-2", "fam1"); err != nil || r.Revoked || !r.FamilyRevoked {
			t.Fatalf("after node B revoked the device's families node A reads %+v, %v", r, err)
		}
		if fs, err := a.RevokedFamilies(ctx, t0, 10); err != nil || len(fs) != 1 || fs[0].ID != "fam1" {
			t.Fatalf("revoked families = %+v, %v", fs, err)
		}
		if r, err := a.TokenRevocation(ctx, "jti-3", "no-such-family"); err != nil || !r.FamilyMissing {
			t.Fatalf("an unknown family reads %+v, %v", r, err)
		}

		must(t, a.PutRefreshToken(ctx, tok("rt-g1", "fam2")))
		if _, err := a.RotateRefreshToken(ctx, []byte("rt-g1"), t0.Add(time.Minute), func(RefreshToken) (RefreshToken, Grace, error) {
			return tok("rt-g2", "fam2"), Grace{Until: t0.Add(2 * time.Minute), From: "10.0.0.1", Sealed: []byte("sealed response")}, nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.RedeemGrace(ctx, []byte("rt-g1"), "10.0.0.9", t0.Add(90*time.Second)); !errors.Is(err, ErrAlreadyUsed) {
			t.Fatalf("the grace from another source: %v, want ErrAlreadyUsed", err)
		}
		if sealed, err := b.RedeemGrace(ctx, []byte("rt-g1"), "10.0.0.1", t0.Add(90*time.Second)); err != nil || string(sealed) != "sealed response" {
			t.Fatalf("the grace on node B = %q, %v", sealed, err)
		}
		if _, err := a.RedeemGrace(ctx, []byte("rt-g1"), "10.0.0.1", t0.Add(95*time.Second)); !errors.Is(err, ErrAlreadyUsed) {
			t.Fatalf("the grace a second time: %v, want ErrAlreadyUsed", err)
		}
	})
}

// What every node must share: three nodes asking for a secret that does
// not exist yet all get the one value that won; a signing key one node
// stores and retires is what another lists, its retirement kept at the
// first time.
func TestSecretsAndKeysAcrossNodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		nodes := db.nodes(3)
		got := make(chan string, len(nodes))
		for i, n := range nodes {
			go func() {
				v, err := n.Secret(ctx, "activation-hmac", func() ([]byte, error) { return []byte(fmt.Sprint("from node ", i)), nil })
				if err != nil {
					t.Error(err)
				}
				got <- string(v)
			}()
		}
		first := <-got
		for range len(nodes) - 1 {
			if v := <-got; v != first || first == "" {
				t.Fatalf("nodes got secrets %q and %q: want one value", first, v)
			}
		}
		must(t, nodes[0].PutSigningKey(ctx, SigningKey{KID: "k1", Alg: "ES256", PrivatePEM: []byte("pem"), CreatedAt: t0}))
		if err := nodes[1].PutSigningKey(ctx, SigningKey{KID: "k1", Alg: "ES256", PrivatePEM: []byte("other"), CreatedAt: t0}); !errors.Is(err, ErrConflict) {
			t.Fatalf("a second key k1 from another node: %v, want ErrConflict", err)
		}
		must(t, nodes[1].RetireSigningKey(ctx, "k1", t0.Add(time.Hour)))
		must(t, nodes[2].RetireSigningKey(ctx, "k1", t0.Add(2*time.Hour)))
		keys, err := nodes[2].ListSigningKeys(ctx)
		if err != nil || len(keys) != 1 || string(keys[0].PrivatePEM) != "pem" || !keys[0].RetiredAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("keys on node 3 = %+v, %v", keys, err)
		}
		if err := nodes[0].RetireSigningKey(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("retiring an unknown key: %v, want ErrNotFound", err)
		}
	})
}

// The change feed across nodes: node B listening is woken when node A's
// revocation commits, and reads it from the feed after its cursor; the
// listener stops, closing its channel, when its context ends.
// PostgreSQL-only: ListenChanges is PostgreSQL's LISTEN/NOTIFY, which is
// not part of Store (SQLite's nodes poll the feed; TestChangeFeed covers
// the feed itself on both engines).
func TestChangeFeedAcrossNodes(t *testing.T) {
	ctx := context.Background()
	nodes := postgresNodes(t, 2)
	a, b := nodes[0], nodes[1]
	cursor, err := b.ChangeCursor(ctx)
	must(t, err)
	lctx, stop := context.WithCancel(ctx)
	wake, err := b.ListenChanges(lctx)
	must(t, err)
	start := time.Now()
	must(t, a.RevokeAccessToken(ctx, "jti-1", t0.Add(time.Hour)))
	must(t, a.RevokeFamily(ctx, "fam-1", t0))
	select {
	case <-wake:
		t.Logf("node B woken %v after node A's first revocation was sent", time.Since(start))
	case <-time.After(30 * time.Second):
		t.Fatal("node B was never woken")
	}
	var got []Change
	for len(got) < 2 { // the second commit may land after the first wake-up
		cs, err := b.Changes(ctx, cursor, 10)
		must(t, err)
		got = cs
		if len(got) < 2 {
			select {
			case <-wake:
			case <-time.After(30 * time.Second):
				t.Fatalf("node B read %+v and was not woken again", got)
			}
		}
	}
	if len(got) != 2 || got[0].Kind != ChangeToken || got[0].Key != "jti-1" || got[1].Kind != ChangeFamily || got[1].Key != "fam-1" || got[1].ID <= got[0].ID {
		t.Fatalf("node B read %+v; want the token then the family, in order", got)
	}
	if jtis, err := b.RevokedAccessTokens(ctx, t0); err != nil || len(jtis) != 1 || jtis[0] != "jti-1" {
		t.Fatalf("revoked access tokens = %v, %v", jtis, err)
	}
	stop()
	for range wake { // drains, then ends when the listener has stopped
	}
}

// inventoryStore is the security-profile and device part both engines have,
// with the change feed that tells other nodes about edits.
type inventoryStore interface {
	codeStore
	PutSecurityProfile(ctx context.Context, p SecurityProfile) error
	GetSecurityProfile(ctx context.Context, name string) (SecurityProfile, error)
	ListSecurityProfiles(ctx context.Context) ([]SecurityProfile, error)
	PutDevice(ctx context.Context, d Device) error
	GetDevice(ctx context.Context, name string) (Device, error)
	DeviceByLine(ctx context.Context, line string) (Device, error)
	ListDevices(ctx context.Context) ([]Device, error)
	DeleteDevice(ctx context.Context, name string) error
	ChangeCursor(ctx context.Context) (int64, error)
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
}

var (
	_ inventoryStore = (*SQLite)(nil)
	_ inventoryStore = (*Postgres)(nil)
)

// Profiles and devices read back as written on both engines; a device keeps
// its first creation time; deleting it takes its codes with it; every edit
// is a 'config' change in the feed.
func TestInventoryOnBothEngines(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) { testInventory(t, db.open()) })
}

func testInventory(t *testing.T, s inventoryStore) {
	ctx := context.Background()
	cursor, err := s.ChangeCursor(ctx)
	must(t, err)
	sp := SecurityProfile{Name: "OAuth-8845", DeviceType: "8845", Mode: "Encrypted", Transport: "TLS", OAuth: true, TFTPEncrypted: true}
	must(t, s.PutSecurityProfile(ctx, sp))
	if got, err := s.GetSecurityProfile(ctx, sp.Name); err != nil || got != sp {
		t.Fatalf("profile = %+v, %v; want %+v", got, err, sp)
	}
	if _, err := s.GetSecurityProfile(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown profile: %v", err)
	}
	d := Device{Name: "SEP001122334455", Model: "8845", Line: "1001", Owner: "jsmith", SecurityProfile: sp.Name,
		AllowMRA: true, MRAServiceDomain: "example.com", CreatedAt: t0}
	must(t, s.PutDevice(ctx, d))
	later := d
	later.Line, later.CreatedAt = "1002", t0.Add(time.Hour)
	must(t, s.PutDevice(ctx, later))
	want := later
	want.CreatedAt = t0 // the first creation time stays
	if got, err := s.GetDevice(ctx, d.Name); err != nil || got != want {
		t.Fatalf("device = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.DeviceByLine(ctx, "1002"); err != nil || got.Name != d.Name {
		t.Fatalf("device by line = %+v, %v", got, err)
	}
	if _, err := s.DeviceByLine(ctx, "1001"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("device by its old line: %v", err)
	}
	if ps, err := s.ListSecurityProfiles(ctx); err != nil || len(ps) != 1 {
		t.Fatalf("profiles = %+v, %v", ps, err)
	}
	if ds, err := s.ListDevices(ctx); err != nil || len(ds) != 1 {
		t.Fatalf("devices = %+v, %v", ds, err)
	}
	putCodeIn(t, s, "code-of-device", d.Name, []byte("h"))
	must(t, s.DeleteDevice(ctx, d.Name))
	if cs, err := s.ListActivationCodes(ctx, d.Name); err != nil || len(cs) != 0 {
		t.Fatalf("codes left after the device was deleted: %+v, %v", cs, err)
	}
	if err := s.DeleteDevice(ctx, d.Name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
	changes, err := s.Changes(ctx, cursor, 100)
	must(t, err)
	seen := map[string]int{}
	for _, c := range changes {
		if c.Kind == ChangeConfig {
			seen[c.Key]++
		}
	}
	if seen["security_profiles"] != 1 || seen["devices"] != 3 {
		t.Fatalf("config changes in the feed %v; want one for the profile's edit and one for each of the device's 3", seen)
	}
}

// configStore is the parameter, user, Expressway-C and single-binding part
// both engines have.
type configStore interface {
	inventoryStore
	registrationStore
	GetParam(ctx context.Context, name string) (string, bool, error)
	SetParam(ctx context.Context, name, value string) error
	ListParams(ctx context.Context) (map[string]string, error)
	PutUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, username string) (User, error)
	AddExpressway(ctx context.Context, e ExpresswayEntry) (int64, error)
	UpdateExpressway(ctx context.Context, e ExpresswayEntry) error
	DeleteExpressway(ctx context.Context, id int64) error
	ListExpressways(ctx context.Context) ([]ExpresswayEntry, error)
	ReportName(ctx context.Context, name, address string, at time.Time) error
	ListReportedNames(ctx context.Context) ([]ReportedName, error)
	DeleteSecurityProfile(ctx context.Context, name string) error
	PutRegistration(ctx context.Context, r Registration) error
	DeleteRegistration(ctx context.Context, aor, contact string) error
	DeleteRegistrations(ctx context.Context, aor string) error
}

var (
	_ configStore = (*SQLite)(nil)
	_ configStore = (*Postgres)(nil)
)

// Parameters, users, Expressway-C entries, reported names, profile deletion
// and single binding changes behave alike on both engines.
func TestConfigOnBothEngines(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) { testConfig(t, db.open()) })
}

func testConfig(t *testing.T, s configStore) {
	ctx := context.Background()
	if _, ok, err := s.GetParam(ctx, "cluster_sip_oauth"); err != nil || ok {
		t.Fatalf("an unset parameter: ok %v, %v", ok, err)
	}
	must(t, s.SetParam(ctx, "cluster_sip_oauth", "false"))
	must(t, s.SetParam(ctx, "cluster_sip_oauth", "true"))
	if v, ok, err := s.GetParam(ctx, "cluster_sip_oauth"); err != nil || !ok || v != "true" {
		t.Fatalf("parameter = %q %v %v", v, ok, err)
	}
	if m, err := s.ListParams(ctx); err != nil || len(m) != 1 || m["cluster_sip_oauth"] != "true" {
		t.Fatalf("parameters = %v, %v", m, err)
	}

	must(t, s.PutUser(ctx, User{Username: "jsmith", PasswordHash: "h1", CreatedAt: t0}))
	must(t, s.PutUser(ctx, User{Username: "jsmith", PasswordHash: "h2", CreatedAt: t0.Add(time.Hour)}))
	if u, err := s.GetUser(ctx, "jsmith"); err != nil || u.PasswordHash != "h2" || !u.CreatedAt.Equal(t0) {
		t.Fatalf("user = %+v, %v", u, err)
	}
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}

	id, err := s.AddExpressway(ctx, ExpresswayEntry{Address: "expc.example.com", Names: []string{"expc.example.com"}})
	must(t, err)
	e := ExpresswayEntry{ID: id, Address: "expc.example.com", Description: "DC1", Names: []string{"expc.example.com", "expc2.example.com"}, Domains: []string{"other.example"}}
	must(t, s.UpdateExpressway(ctx, e))
	if es, err := s.ListExpressways(ctx); err != nil || len(es) != 1 || !reflect.DeepEqual(es[0], e) {
		t.Fatalf("entries = %+v, %v; want %+v", es, err, e)
	}
	if err := s.UpdateExpressway(ctx, ExpresswayEntry{ID: id + 100}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("updating an unknown entry: %v", err)
	}
	must(t, s.DeleteExpressway(ctx, id))
	if err := s.DeleteExpressway(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}

	must(t, s.ReportName(ctx, "expc.example.com", "192.0.2.1:1234", t0.Add(time.Minute)))
	must(t, s.ReportName(ctx, "expc.example.com", "192.0.2.2:1234", t0)) // older: address kept
	if rs, err := s.ListReportedNames(ctx); err != nil || len(rs) != 1 || rs[0].Address != "192.0.2.1:1234" ||
		!rs[0].FirstSeen.Equal(t0) || !rs[0].LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("reported names = %+v, %v", rs, err)
	}

	must(t, s.PutSecurityProfile(ctx, SecurityProfile{Name: "used", Mode: "Encrypted", Transport: "TLS", OAuth: true}))
	must(t, s.PutDevice(ctx, Device{Name: "SEP1", Model: "8845", Line: "1001", SecurityProfile: "used"}))
	if err := s.DeleteSecurityProfile(ctx, "used"); !errors.Is(err, ErrConflict) {
		t.Fatalf("deleting a profile a device uses: %v, want ErrConflict", err)
	}
	must(t, s.DeleteDevice(ctx, "SEP1"))
	must(t, s.DeleteSecurityProfile(ctx, "used"))
	if err := s.DeleteSecurityProfile(ctx, "used"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}

	reg := Registration{AOR: "sip:1001@example.com", Contact: "<sip:a>", Device: "SEP1", CallID: "c", CSeq: 1, ExpiresAt: t0.Add(time.Hour), UpdatedAt: t0}
	must(t, s.PutRegistration(ctx, reg))
	reg2 := reg
	reg2.Contact = "<sip:b>"
	must(t, s.PutRegistration(ctx, reg2))
	must(t, s.DeleteRegistration(ctx, reg.AOR, reg.Contact))
	if got, err := s.Registrations(ctx, reg.AOR, t0); err != nil || len(got) != 1 || got[0].Contact != "<sip:b>" {
		t.Fatalf("after deleting one binding: %+v, %v", got, err)
	}
	must(t, s.DeleteRegistrations(ctx, reg.AOR))
	if got, err := s.Registrations(ctx, reg.AOR, t0); err != nil || len(got) != 0 {
		t.Fatalf("after deleting the AOR's bindings: %+v, %v", got, err)
	}
}

// Administration behaves alike on both engines: administrators, API tokens
// valid only while their chain is (revoking one revokes what it made),
// nodes, trust stores, the audit log, and Purge.
func TestAdministrationOnBothEngines(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) { testAdministration(t, db.open()) })
}

func testAdministration(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, s.PutAdmin(ctx, Admin{Username: "ops", PasswordHash: "h", CreatedAt: t0}))
	if a, err := s.GetAdmin(ctx, "ops"); err != nil || a.PasswordHash != "h" || !a.CreatedAt.Equal(t0) {
		t.Fatalf("admin = %+v, %v", a, err)
	}
	if n, err := s.CountAdmins(ctx); err != nil || n != 1 {
		t.Fatalf("admins = %d, %v", n, err)
	}

	must(t, s.PutAPIToken(ctx, APIToken{ID: "login", Hash: []byte("h-login"), Owner: "ops", Login: true, CreatedAt: t0, ExpiresAt: t0.Add(12 * time.Hour)}))
	must(t, s.PutAPIToken(ctx, APIToken{ID: "script", Hash: []byte("h-script"), Owner: "ops", Parent: "login", CreatedAt: t0}))
	if err := s.PutAPIToken(ctx, APIToken{ID: "script", Hash: []byte("other")}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second token script: %v", err)
	}
	tok, err := s.APITokenByHash(ctx, []byte("h-script"), t0.Add(time.Minute))
	if err != nil || tok.ID != "script" || tok.Parent != "login" || !tok.LastUsed.Equal(t0.Add(time.Minute)) {
		t.Fatalf("token by hash = %+v, %v", tok, err)
	}
	if _, err := s.APITokenByHash(ctx, []byte("h-script"), t0.Add(13*time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a token whose parent expired: %v, want ErrNotFound", err)
	}
	if _, err := s.APITokenByHash(ctx, []byte("h-login"), t0.Add(13*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("an expired token: %v, want ErrExpired", err)
	}
	must(t, s.RevokeAPIToken(ctx, "login", t0.Add(2*time.Minute)))
	ts, err := s.ListAPITokens(ctx)
	if err != nil || len(ts) != 2 || ts[0].RevokedAt.IsZero() || ts[1].RevokedAt.IsZero() || ts[0].Hash != nil {
		t.Fatalf("after revoking the login, tokens = %+v, %v; want both revoked, no hashes", ts, err)
	}
	if err := s.RevokeAPIToken(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking an unknown token: %v", err)
	}
	must(t, s.PutAPIToken(ctx, APIToken{ID: "keep", Hash: []byte("h-keep"), Owner: "ops", CreatedAt: t0}))
	must(t, s.PutAPIToken(ctx, APIToken{ID: "other", Hash: []byte("h-other"), Owner: "ops", CreatedAt: t0}))
	must(t, s.RevokeAPITokensOf(ctx, "ops", "keep", t0.Add(3*time.Minute)))
	if _, err := s.APITokenByHash(ctx, []byte("h-keep"), t0.Add(4*time.Minute)); err != nil {
		t.Fatalf("the kept token: %v", err)
	}
	if _, err := s.APITokenByHash(ctx, []byte("h-other"), t0.Add(4*time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another token of the owner: %v, want ErrNotFound", err)
	}

	n := Node{Name: "core-1", Role: "publisher", PhoneOAuthPort: 5090, MRAPort: 5091, RunningMode: "enabled", RestartedAt: t0, ListeningPhoneOAuthPort: 5090}
	must(t, s.PutNode(ctx, n))
	if got, err := s.GetNode(ctx, "core-1"); err != nil || got != n {
		t.Fatalf("node = %+v, %v; want %+v", got, err, n)
	}
	if ns, err := s.ListNodes(ctx); err != nil || len(ns) != 1 {
		t.Fatalf("nodes = %+v, %v", ns, err)
	}
	if _, err := s.GetNode(ctx, "core-9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown node: %v", err)
	}

	c := TrustCert{Store: "tomcat-trust", Fingerprint: "ab", PEM: []byte("pem"), Subject: "CN=ca", Issuer: "CN=ca", NotAfter: t0.Add(time.Hour), AddedAt: t0}
	must(t, s.PutTrustCert(ctx, c))
	if err := s.PutTrustCert(ctx, c); !errors.Is(err, ErrConflict) {
		t.Fatalf("the same certificate again: %v", err)
	}
	if cs, err := s.ListTrustCerts(ctx, "tomcat-trust"); err != nil || len(cs) != 1 || !reflect.DeepEqual(cs[0], c) {
		t.Fatalf("trust store = %+v, %v", cs, err)
	}
	must(t, s.DeleteTrustCert(ctx, "tomcat-trust", "ab"))
	if err := s.DeleteTrustCert(ctx, "tomcat-trust", "ab"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}

	must(t, s.Audit(ctx, AuditEntry{At: t0, Actor: "ops", Action: "device.put", Detail: "SEP1"}))
	must(t, s.Audit(ctx, AuditEntry{At: t0.Add(time.Second), Actor: "ops", Action: "device.delete", Detail: "SEP1"}))
	if es, err := s.ListAudit(ctx, 1); err != nil || len(es) != 1 || es[0].Action != "device.delete" {
		t.Fatalf("newest audit entry = %+v, %v", es, err)
	}
	if es, err := s.ListAudit(ctx, 0); err != nil || len(es) != 2 {
		t.Fatalf("every audit entry = %+v, %v", es, err)
	}

	must(t, s.PutRegistration(ctx, Registration{AOR: "sip:1@x", Contact: "<sip:a>", Device: "SEP1", CallID: "c", CSeq: 1, ExpiresAt: t0.Add(time.Minute), UpdatedAt: t0}))
	must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: []byte("rt"), Family: "f", Device: "SEP1", Origin: "activation_code", IssuedAt: t0, ExpiresAt: t0.Add(time.Minute)}))
	must(t, s.Purge(ctx, t0.Add(2*time.Minute)))
	if regs, err := s.Registrations(ctx, "", time.Time{}.Add(1)); err != nil || len(regs) != 0 {
		t.Fatalf("after Purge, bindings = %+v, %v", regs, err)
	}
	if r, err := s.TokenRevocation(ctx, "j", "f"); err != nil || !r.FamilyMissing {
		t.Fatalf("after Purge, the family of an expired token reads %+v, %v; want missing", r, err)
	}
}
