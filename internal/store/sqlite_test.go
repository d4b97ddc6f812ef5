package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is a fixed instant with a non-zero nanosecond part, to prove times
// round-trip at full precision.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func openTest(t testing.TB) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "core.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// SQLite-only: the pragmas are SQLite's (PostgreSQL has no counterpart to
// WAL mode, busy_timeout or per-connection foreign_keys).
func TestOpenPragmas(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	// Check on several pooled connections at once.
	conns := make([]interface{ Close() error }, 0, 4)
	for range 4 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var mode string
		var busy, fk, sync int
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || busy != 5000 || fk != 1 || sync != 1 {
			t.Fatalf("journal_mode=%s busy_timeout=%d foreign_keys=%d synchronous=%d", mode, busy, fk, sync)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// SQLite-only: a file path that must survive SQLite's "file:" URI.
func TestOpenPathWithSpecialCharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?#%", "x.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetParam(context.Background(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at %q", path)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	forEachEngineUnmigrated(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		if err := s.SetParam(ctx, "ClusterName", "edgeway"); err != nil {
			t.Fatal(err)
		}
		v1, newest := schemaVersions(t, s)
		if v1 != newest {
			t.Fatalf("SchemaVersion = %d; want %d", v1, newest)
		}
		// Reopen (twice, with the first handle still open).
		for range 2 {
			s2 := db.open()
			if v2, _ := schemaVersions(t, s2); v2 != v1 {
				t.Fatalf("SchemaVersion after reopen = %d", v2)
			}
			if n, want := rawCount(t, s2, `SELECT COUNT(*) FROM schema_migrations`), migrationRows(s2); n != want {
				t.Fatalf("schema_migrations rows = %d, want %d", n, want)
			}
			if v, ok, err := s2.GetParam(ctx, "ClusterName"); err != nil || !ok || v != "edgeway" {
				t.Fatalf("param lost on reopen: %q %v %v", v, ok, err)
			}
			s2.Close()
		}
	})
}

// Eight nodes opening a fresh database at once all open it, and each
// migration is applied once (SQLite: switching a new file to WAL; both:
// two nodes migrating at once).
func TestConcurrentOpenOfNewFile(t *testing.T) {
	forEachEngineUnmigrated(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				s, err := OpenURL(ctx, db.dsn)
				if err != nil {
					errs <- err
					return
				}
				s.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent Open: %v", err)
		}
		s := db.open()
		v, newest := schemaVersions(t, s)
		if n := rawCount(t, s, `SELECT COUNT(*) FROM schema_migrations`); v != newest || n != migrationRows(s) {
			t.Fatalf("schema version %d with %d migrations recorded; want %d, each once (%d rows)", v, n, newest, migrationRows(s))
		}
	})
}

// A database a newer build migrated is refused, not misread.
func TestNewerSchemaRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		s := db.open()
		_, newest := schemaVersions(t, s)
		rawExec(t, s, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, newest+1)
		if s2, err := OpenURL(context.Background(), db.dsn); err == nil {
			s2.Close()
			t.Fatal("Open accepted a database from a newer build")
		}
	})
}

func TestParams(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		if _, ok, err := s.GetParam(ctx, "x"); err != nil || ok {
			t.Fatalf("GetParam(absent) = %v, %v", ok, err)
		}
		must(t, s.SetParam(ctx, "x", "1"))
		must(t, s.SetParam(ctx, "x", "2"))
		must(t, s.SetParam(ctx, "y", "'; DROP TABLE params; --"))
		m, err := s.ListParams(ctx)
		must(t, err)
		want := map[string]string{"x": "2", "y": "'; DROP TABLE params; --"}
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("ListParams = %v, want %v", m, want)
		}
	})
}

func TestSecret(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		calls := 0
		gen := func() ([]byte, error) { calls++; return []byte("first"), nil }
		v, err := s.Secret(ctx, "k", gen)
		must(t, err)
		v2, err := s.Secret(ctx, "k", func() ([]byte, error) { calls++; return []byte("second"), nil })
		must(t, err)
		if string(v) != "first" || string(v2) != "first" || calls != 1 {
			t.Fatalf("Secret = %q, %q after %d gen calls", v, v2, calls)
		}
		if _, err := s.Secret(ctx, "bad", func() ([]byte, error) { return nil, errors.New("boom") }); err == nil {
			t.Fatal("generator error not returned")
		}
		if _, err := s.Secret(ctx, "empty", func() ([]byte, error) { return nil, nil }); err == nil {
			t.Fatal("empty secret accepted")
		}
	})
}

func TestSecretConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, s2 := db.open(), db.open()
		var wg sync.WaitGroup
		got := make([][]byte, 20)
		errs := make([]error, 20)
		for i := range 20 {
			h := s
			if i%2 == 1 {
				h = s2
			}
			wg.Go(func() {
				got[i], errs[i] = h.Secret(ctx, "hmac", func() ([]byte, error) {
					b := make([]byte, 32)
					rand.Read(b)
					return b, nil
				})
			})
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if !bytes.Equal(got[i], got[0]) {
				t.Fatalf("caller %d saw a different secret", i)
			}
		}
	})
}

func TestSecurityProfilesDevicesUsers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()

		p := SecurityProfile{Name: "8845-OAuth", Mode: "encrypted", Transport: "TLS", OAuth: true, Digest: false, TFTPEncrypted: true}
		must(t, s.PutSecurityProfile(ctx, p))
		got, err := s.GetSecurityProfile(ctx, p.Name)
		must(t, err)
		if got != p {
			t.Fatalf("GetSecurityProfile = %+v, want %+v", got, p)
		}
		p.Digest = true
		must(t, s.PutSecurityProfile(ctx, p))
		must(t, s.PutSecurityProfile(ctx, SecurityProfile{Name: "A-plain", Mode: "non-secure", Transport: "TCP+UDP"}))
		ps, err := s.ListSecurityProfiles(ctx)
		must(t, err)
		if len(ps) != 2 || ps[0] != p || ps[1].Name != "A-plain" {
			t.Fatalf("ListSecurityProfiles = %+v", ps)
		}
		if _, err := s.GetSecurityProfile(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetSecurityProfile(unknown) = %v", err)
		}

		d := Device{Name: "SEP0011223344AA", Model: "8845", Line: "1001", Owner: "jsmith",
			SecurityProfile: p.Name, AllowMRA: true, MRAServiceDomain: "mra.example.com", CreatedAt: t0}
		must(t, s.PutDevice(ctx, d))
		gd, err := s.GetDevice(ctx, d.Name)
		must(t, err)
		if !reflect.DeepEqual(gd, d) {
			t.Fatalf("GetDevice = %+v, want %+v", gd, d)
		}
		// Upsert keeps CreatedAt.
		d2 := d
		d2.Line, d2.AllowMRA, d2.CreatedAt = "1002", false, t0.Add(time.Hour)
		must(t, s.PutDevice(ctx, d2))
		gd, err = s.GetDevice(ctx, d.Name)
		must(t, err)
		d2.CreatedAt = t0
		if !reflect.DeepEqual(gd, d2) {
			t.Fatalf("GetDevice after upsert = %+v, want %+v", gd, d2)
		}
		must(t, s.PutDevice(ctx, Device{Name: "CSFJSMITH", Model: "CSF", Line: "1002"}))
		byLine, err := s.DeviceByLine(ctx, "1002")
		must(t, err)
		if byLine.Name != "CSFJSMITH" {
			t.Fatalf("DeviceByLine = %q, want the first by name", byLine.Name)
		}
		if byLine.CreatedAt.IsZero() {
			t.Fatal("zero CreatedAt not defaulted")
		}
		if _, err := s.DeviceByLine(ctx, "9999"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeviceByLine(unknown) = %v", err)
		}
		ds, err := s.ListDevices(ctx)
		must(t, err)
		if len(ds) != 2 || ds[0].Name != "CSFJSMITH" || ds[1].Name != d.Name {
			t.Fatalf("ListDevices = %+v", ds)
		}
		// Deleting a device also deletes its activation codes.
		must(t, s.PutActivationCode(ctx, ActivationCode{ID: "c1", Device: "CSFJSMITH", Hash: []byte("h1"), ExpiresAt: t0.Add(time.Hour)}))
		must(t, s.DeleteDevice(ctx, "CSFJSMITH"))
		if _, err := s.GetDevice(ctx, "CSFJSMITH"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetDevice(deleted) = %v", err)
		}
		if cs, _ := s.ListActivationCodes(ctx, "CSFJSMITH"); len(cs) != 0 {
			t.Fatalf("codes of a deleted device survived: %+v", cs)
		}
		if err := s.DeleteDevice(ctx, "CSFJSMITH"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteDevice(unknown) = %v", err)
		}

		u := User{Username: "jsmith", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", CreatedAt: t0}
		must(t, s.PutUser(ctx, u))
		gu, err := s.GetUser(ctx, "jsmith")
		must(t, err)
		if gu != u {
			t.Fatalf("GetUser = %+v, want %+v", gu, u)
		}
		u.PasswordHash = "changed"
		u.CreatedAt = t0.Add(time.Hour)
		must(t, s.PutUser(ctx, u))
		gu, err = s.GetUser(ctx, "jsmith")
		must(t, err)
		if gu.PasswordHash != "changed" || !gu.CreatedAt.Equal(t0) {
			t.Fatalf("GetUser after upsert = %+v", gu)
		}
		if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetUser(unknown) = %v", err)
		}
	})
}

func TestExpresswaysAndReportedNames(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		e := ExpresswayEntry{Address: "expc1.example.com", Description: "primary",
			Names: []string{"expc1.example.com", "expc.example.com"}, Domains: []string{"other.example.net"}}
		id1, err := s.AddExpressway(ctx, e)
		must(t, err)
		id2, err := s.AddExpressway(ctx, ExpresswayEntry{Address: "10.0.0.2"})
		must(t, err)
		if id1 == id2 || id1 == 0 {
			t.Fatalf("ids %d, %d", id1, id2)
		}
		list, err := s.ListExpressways(ctx)
		must(t, err)
		e.ID = id1
		if len(list) != 2 || !reflect.DeepEqual(list[0], e) || list[1].ID != id2 || list[1].Names != nil {
			t.Fatalf("ListExpressways = %+v", list)
		}
		e.Description = "renamed"
		e.Names = []string{"expc1.example.com"}
		must(t, s.UpdateExpressway(ctx, e))
		list, _ = s.ListExpressways(ctx)
		if !reflect.DeepEqual(list[0], e) {
			t.Fatalf("after update %+v, want %+v", list[0], e)
		}
		if err := s.UpdateExpressway(ctx, ExpresswayEntry{ID: 999}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateExpressway(unknown) = %v", err)
		}
		must(t, s.DeleteExpressway(ctx, id2))
		if err := s.DeleteExpressway(ctx, id2); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteExpressway(unknown) = %v", err)
		}
		list, _ = s.ListExpressways(ctx)
		if len(list) != 1 {
			t.Fatalf("after delete %+v", list)
		}

		must(t, s.ReportName(ctx, "expc1.example.com", "192.0.2.1:5061", t0))
		must(t, s.ReportName(ctx, "expc1.example.com", "192.0.2.2:5061", t0.Add(time.Minute)))
		must(t, s.ReportName(ctx, "a.example.com", "192.0.2.9:5061", t0))
		names, err := s.ListReportedNames(ctx)
		must(t, err)
		want := []ReportedName{
			{Name: "a.example.com", Address: "192.0.2.9:5061", FirstSeen: t0, LastSeen: t0},
			{Name: "expc1.example.com", Address: "192.0.2.2:5061", FirstSeen: t0, LastSeen: t0.Add(time.Minute)},
		}
		if !reflect.DeepEqual(names, want) {
			t.Fatalf("ListReportedNames = %+v, want %+v", names, want)
		}
	})
}

func TestActivationCodeRoundTripAndList(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		c := ActivationCode{ID: "a1", Device: "SEP1", Hash: []byte{1, 2, 3}, CreatedAt: t0, ExpiresAt: t0.Add(168 * time.Hour)}
		must(t, s.PutActivationCode(ctx, c))
		if err := s.PutActivationCode(ctx, c); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate id = %v", err)
		}
		dupHash := c
		dupHash.ID = "a2"
		if err := s.PutActivationCode(ctx, dupHash); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate hash = %v", err)
		}
		must(t, s.PutActivationCode(ctx, ActivationCode{ID: "b1", Device: "SEP2", Hash: []byte{9}, CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(time.Hour)}))
		cs, err := s.ListActivationCodes(ctx, "SEP1")
		must(t, err)
		if len(cs) != 1 || !reflect.DeepEqual(cs[0], c) {
			t.Fatalf("ListActivationCodes = %+v, want %+v", cs, c)
		}
		all, err := s.ListActivationCodes(ctx, "")
		must(t, err)
		if len(all) != 2 || all[0].ID != "a1" || all[1].ID != "b1" {
			t.Fatalf("ListActivationCodes(all) = %+v", all)
		}
		must(t, s.RevokeActivationCode(ctx, "b1", t0))
		must(t, s.RevokeActivationCode(ctx, "b1", t0.Add(time.Hour))) // first time kept
		cs, _ = s.ListActivationCodes(ctx, "SEP2")
		if !cs[0].RevokedAt.Equal(t0) {
			t.Fatalf("RevokedAt = %v", cs[0].RevokedAt)
		}
		if err := s.RevokeActivationCode(ctx, "zz", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RevokeActivationCode(unknown) = %v", err)
		}
	})
}

func putCode(t *testing.T, s codeStore, id, device string, hash []byte) {
	t.Helper()
	must(t, s.PutActivationCode(context.Background(), ActivationCode{
		ID: id, Device: device, Hash: hash, CreatedAt: t0, ExpiresAt: t0.Add(168 * time.Hour)}))
}

func TestRedeemActivationCode(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		h := []byte("hash-1")
		putCode(t, s, "id1", "SEP1", h)

		if _, err := s.RedeemActivationCode(ctx, []byte("nope"), "SEP1", t0, GuessBudget{}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown = %v", err)
		}
		// Wrong device: refused, code untouched.
		if c, err := s.RedeemActivationCode(ctx, h, "SEP2", t0, GuessBudget{}); !errors.Is(err, ErrWrongDevice) || c.ID != "" {
			t.Fatalf("wrong device = %+v, %v", c, err)
		}
		c, err := s.RedeemActivationCode(ctx, h, "SEP1", t0.Add(time.Minute), GuessBudget{})
		must(t, err)
		if c.ID != "id1" || c.Device != "SEP1" || !c.UsedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("redeemed = %+v", c)
		}
		if _, err := s.RedeemActivationCode(ctx, h, "SEP1", t0.Add(2*time.Minute), GuessBudget{}); !errors.Is(err, ErrAlreadyUsed) {
			t.Fatalf("second redeem = %v", err)
		}
		// Wrong device is reported before "already used".
		if _, err := s.RedeemActivationCode(ctx, h, "SEP2", t0, GuessBudget{}); !errors.Is(err, ErrWrongDevice) {
			t.Fatalf("wrong device on used code = %v", err)
		}
		cs, _ := s.ListActivationCodes(ctx, "SEP1")
		if !cs[0].UsedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("UsedAt = %v", cs[0].UsedAt)
		}

		// Revoked.
		putCode(t, s, "id2", "SEP1", []byte("hash-2"))
		must(t, s.RevokeDeviceActivationCodes(ctx, "SEP1", t0))
		if _, err := s.RedeemActivationCode(ctx, []byte("hash-2"), "SEP1", t0, GuessBudget{}); !errors.Is(err, ErrRevoked) {
			t.Fatalf("revoked = %v", err)
		}
		// RevokeDeviceActivationCodes leaves used codes unrevoked.
		cs, _ = s.ListActivationCodes(ctx, "SEP1")
		if !cs[0].RevokedAt.IsZero() || cs[1].RevokedAt.IsZero() {
			t.Fatalf("after RevokeDeviceActivationCodes: %+v", cs)
		}

		// Expired (at exactly ExpiresAt and after).
		putCode(t, s, "id3", "SEP3", []byte("hash-3"))
		if _, err := s.RedeemActivationCode(ctx, []byte("hash-3"), "SEP3", t0.Add(168*time.Hour), GuessBudget{}); !errors.Is(err, ErrExpired) {
			t.Fatalf("expired = %v", err)
		}
		// Still redeemable just before expiry: the expired attempt changed nothing.
		if _, err := s.RedeemActivationCode(ctx, []byte("hash-3"), "SEP3", t0.Add(168*time.Hour-1), GuessBudget{}); err != nil {
			t.Fatalf("just before expiry = %v", err)
		}

		// Wrong device leaves the code redeemable by the right device.
		putCode(t, s, "id4", "SEP4", []byte("hash-4"))
		for range 3 {
			if _, err := s.RedeemActivationCode(ctx, []byte("hash-4"), "SEPX", t0, GuessBudget{}); !errors.Is(err, ErrWrongDevice) {
				t.Fatalf("wrong device = %v", err)
			}
		}
		if _, err := s.RedeemActivationCode(ctx, []byte("hash-4"), "SEP4", t0, GuessBudget{}); err != nil {
			t.Fatalf("right device after wrong ones = %v", err)
		}
	})
}

// exactlyOneWins runs try n times at once, spread over the handles, and
// checks exactly one succeeds and the rest see ErrAlreadyUsed (the
// conditional UPDATE that decides every single-use secret in the store).
func exactlyOneWins[S any](t *testing.T, handles []S, n int, try func(st S) error) {
	t.Helper()
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		st := handles[i%len(handles)]
		wg.Go(func() {
			<-start
			switch err := try(st); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrAlreadyUsed):
				used.Add(1)
			default:
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("unexpected error: %v", err)
	}
	if ok.Load() != 1 || used.Load() != int32(n-1) {
		t.Fatalf("successes=%d already-used=%d, want 1 and %d", ok.Load(), used.Load(), n-1)
	}
}

// raceRedeem has n goroutines redeem one code through the given handles.
func raceRedeem[S codeStore](t *testing.T, handles []S, n int) {
	t.Helper()
	h := []byte("race-hash")
	putCode(t, handles[0], "race", "SEPR", h)
	warmUp(t, handles...)
	exactlyOneWins(t, handles, n, func(st S) error {
		_, err := st.RedeemActivationCode(context.Background(), h, "SEPR", t0, GuessBudget{})
		return err
	})
}

// warmUp has each handle open several connections at once. A race run
// while a handle has one connection and dials the others (PostgreSQL's
// pool opens them on demand) is mostly run one at a time on that one.
func warmUp[S codeStore](t *testing.T, handles ...S) {
	t.Helper()
	var wg sync.WaitGroup
	for _, h := range handles {
		for range 2 * maxConns {
			wg.Go(func() {
				if _, err := h.ListActivationCodes(context.Background(), ""); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
}

func TestRedeemRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		s := db.open()
		raceRedeem(t, []Store{s}, 100)
	})
}

func TestRedeemRaceTwoHandles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		s, s2 := db.open(), db.open()
		raceRedeem(t, []Store{s, s2}, 100)
	})
}

func tokHash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestRefreshTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		rt := RefreshToken{Hash: tokHash("r1"), Family: "fam1", Device: "SEP1", Origin: "activation_code", MRA: true,
			IssuedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
		must(t, s.PutRefreshToken(ctx, rt))
		if err := s.PutRefreshToken(ctx, rt); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate = %v", err)
		}
		for _, tc := range []struct {
			jti, family string
			want        Revocation
		}{
			{"j-live", "fam1", Revocation{}},
			{"j-live", "nofam", Revocation{FamilyMissing: true}},
			{"j-live", "", Revocation{}}, // a token without a family (password grant)
		} {
			if got, err := s.TokenRevocation(ctx, tc.jti, tc.family); err != nil || got != tc.want {
				t.Errorf("TokenRevocation(%q, %q) = %+v, %v; want %+v", tc.jti, tc.family, got, err, tc.want)
			}
		}
		if _, err := s.RotateRefreshToken(ctx, tokHash("nope"), t0, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown = %v", err)
		}

		got, err := s.RotateRefreshToken(ctx, rt.Hash, t0.Add(time.Hour), nil)
		must(t, err)
		want := rt
		want.RotatedAt = t0.Add(time.Hour)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("RotateRefreshToken = %+v, want %+v", got, want)
		}
		// Replay: ErrAlreadyUsed with the token, so the caller can revoke its family.
		got, err = s.RotateRefreshToken(ctx, rt.Hash, t0.Add(2*time.Hour), nil)
		if !errors.Is(err, ErrAlreadyUsed) || got.Family != "fam1" || !bytes.Equal(got.Hash, rt.Hash) {
			t.Fatalf("replay = %+v, %v", got, err)
		}

		rt2 := RefreshToken{Hash: tokHash("r2"), Family: "fam1", Device: "SEP1", Origin: "activation_code", MRA: true,
			IssuedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(25 * time.Hour)}
		must(t, s.PutRefreshToken(ctx, rt2))
		must(t, s.RevokeFamily(ctx, "fam1", t0.Add(2*time.Hour)))
		if got, err := s.TokenRevocation(ctx, "j-live", "fam1"); err != nil || got != (Revocation{FamilyRevoked: true}) {
			t.Fatalf("TokenRevocation in a revoked family = %+v, %v", got, err)
		}
		if got, err := s.RotateRefreshToken(ctx, rt2.Hash, t0.Add(3*time.Hour), nil); !errors.Is(err, ErrRevoked) || got.Family != "fam1" {
			t.Fatalf("rotate in revoked family = %+v, %v", got, err)
		}

		// Expired.
		must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: tokHash("r3"), Family: "fam2", Device: "SEP2",
			Username: "jsmith", Origin: "password", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		if _, err := s.RotateRefreshToken(ctx, tokHash("r3"), t0.Add(time.Hour), nil); !errors.Is(err, ErrExpired) {
			t.Fatalf("expired = %v", err)
		}

		// RevokeDeviceFamilies.
		must(t, s.RevokeDeviceFamilies(ctx, "SEP2", t0))
		if rv, _ := s.TokenRevocation(ctx, "j", "fam2"); !rv.FamilyRevoked {
			t.Fatal("RevokeDeviceFamilies did not revoke fam2")
		}
		// Revoking an unknown family records it.
		must(t, s.RevokeFamily(ctx, "fam9", t0))
		if rv, err := s.TokenRevocation(ctx, "j", "fam9"); err != nil || !rv.FamilyRevoked {
			t.Fatalf("TokenRevocation(fam9) = %+v, %v", rv, err)
		}
	})
}

func TestRotateRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, s2 := db.open(), db.open()
		must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: tokHash("r"), Family: "f", Device: "d", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
		exactlyOneWins(t, []Store{s, s2}, 50, func(st Store) error {
			_, err := st.RotateRefreshToken(ctx, tokHash("r"), t0, nil)
			return err
		})
	})
}

func TestAccessTokensAndSigningKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		if got, err := s.TokenRevocation(ctx, "j1", ""); err != nil || got.Revoked {
			t.Fatalf("TokenRevocation(absent) = %+v, %v", got, err)
		}
		must(t, s.RevokeAccessToken(ctx, "j1", t0.Add(time.Hour)))
		must(t, s.RevokeAccessToken(ctx, "j1", t0.Add(time.Hour)))
		if got, err := s.TokenRevocation(ctx, "j1", ""); err != nil || got != (Revocation{Revoked: true}) {
			t.Fatalf("TokenRevocation of a revoked token = %+v, %v", got, err)
		}

		k1 := SigningKey{KID: "k1", Alg: "ES256", PrivatePEM: []byte("-----BEGIN PRIVATE KEY-----\n..."), CreatedAt: t0}
		k2 := SigningKey{KID: "k2", Alg: "ES256", PrivatePEM: []byte("pem2"), CreatedAt: t0.Add(time.Hour)}
		must(t, s.PutSigningKey(ctx, k2))
		must(t, s.PutSigningKey(ctx, k1))
		if err := s.PutSigningKey(ctx, k1); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate key = %v", err)
		}
		must(t, s.RetireSigningKey(ctx, "k1", t0.Add(2*time.Hour)))
		if err := s.RetireSigningKey(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RetireSigningKey(unknown) = %v", err)
		}
		keys, err := s.ListSigningKeys(ctx)
		must(t, err)
		k1.RetiredAt = t0.Add(2 * time.Hour)
		if !reflect.DeepEqual(keys, []SigningKey{k1, k2}) {
			t.Fatalf("ListSigningKeys = %+v", keys)
		}
	})
}

func TestRegistrations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		r1 := Registration{AOR: "sip:1001@example.com", Contact: "<sip:1001@192.0.2.10:5061;transport=tls>",
			Device: "SEP1", Path: []string{"<sip:expc1.example.com;lr>", "<sip:expe.example.com;lr>"}, CallID: "c1", CSeq: 4294967295,
			ExpiresAt: t0.Add(time.Hour), MRA: true, Edge: "expc1.example.com", Node: "cucm1", Source: "192.0.2.1:5061", UpdatedAt: t0}
		r2 := Registration{AOR: "sip:1001@example.com", Contact: "<sip:1001@192.0.2.11:5060>",
			Device: "CSF1", CallID: "c2", CSeq: 1, ExpiresAt: t0.Add(time.Minute), Node: "cucm1", Source: "192.0.2.11:5060", UpdatedAt: t0}
		r3 := Registration{AOR: "sip:1000@example.com", Contact: "<sip:1000@192.0.2.12>", Device: "SEP0", CallID: "c3",
			ExpiresAt: t0.Add(time.Hour), UpdatedAt: t0}
		for _, r := range []Registration{r1, r2, r3} {
			must(t, s.PutRegistration(ctx, r))
		}
		got, err := s.Registrations(ctx, r1.AOR, t0)
		must(t, err)
		if len(got) != 2 || !reflect.DeepEqual(got[0], r1) || !reflect.DeepEqual(got[1], r2) {
			t.Fatalf("Registrations = %+v", got)
		}
		// Expiry filtering: r2 expires at t0+1m.
		got, _ = s.Registrations(ctx, r1.AOR, t0.Add(time.Minute))
		if len(got) != 1 || got[0].Contact != r1.Contact {
			t.Fatalf("Registrations after r2 expiry = %+v", got)
		}
		// All AORs, sorted by AOR then contact.
		all, _ := s.Registrations(ctx, "", t0)
		if len(all) != 3 || all[0].AOR != r3.AOR || all[1].Contact != r1.Contact || all[2].Contact != r2.Contact {
			t.Fatalf("Registrations(all) = %+v", all)
		}
		// Same (AOR, Contact) replaces.
		r1b := r1
		r1b.CSeq, r1b.CallID, r1b.Path, r1b.ExpiresAt, r1b.Node = 7, "c1b", nil, t0.Add(2*time.Hour), "cucm2"
		must(t, s.PutRegistration(ctx, r1b))
		got, _ = s.Registrations(ctx, r1.AOR, t0.Add(90*time.Minute))
		if len(got) != 1 || !reflect.DeepEqual(got[0], r1b) {
			t.Fatalf("after replace = %+v, want %+v", got, r1b)
		}
		must(t, s.DeleteRegistration(ctx, r1.AOR, r1.Contact))
		must(t, s.DeleteRegistration(ctx, r1.AOR, r1.Contact))
		got, _ = s.Registrations(ctx, r1.AOR, t0)
		if len(got) != 1 || got[0].Contact != r2.Contact {
			t.Fatalf("after delete = %+v", got)
		}
		must(t, s.DeleteRegistrations(ctx, r1.AOR))
		got, _ = s.Registrations(ctx, r1.AOR, t0)
		if len(got) != 0 {
			t.Fatalf("after delete all = %+v", got)
		}
	})
}

func TestAudit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		for i := range 5 {
			must(t, s.Audit(ctx, AuditEntry{At: t0.Add(time.Duration(i) * time.Second), Actor: "admin",
				Action: "device.put", Detail: fmt.Sprintf("SEP%d", i)}))
		}
		got, err := s.ListAudit(ctx, 3)
		must(t, err)
		if len(got) != 3 || got[0].Detail != "SEP4" || got[2].Detail != "SEP2" || !got[0].At.Equal(t0.Add(4*time.Second)) || got[0].ID == 0 {
			t.Fatalf("ListAudit(3) = %+v", got)
		}
		all, _ := s.ListAudit(ctx, 0)
		if len(all) != 5 || all[4].Detail != "SEP0" {
			t.Fatalf("ListAudit(0) = %+v", all)
		}
	})
}

func TestPurge(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		now := t0.Add(30 * 24 * time.Hour)
		// Activation codes: expired 8 days ago (purged), expired 6 days ago (kept), live (kept).
		must(t, s.PutActivationCode(ctx, ActivationCode{ID: "old", Device: "d", Hash: []byte("1"), CreatedAt: t0, ExpiresAt: now.Add(-8 * 24 * time.Hour)}))
		must(t, s.PutActivationCode(ctx, ActivationCode{ID: "recent", Device: "d", Hash: []byte("2"), CreatedAt: t0, ExpiresAt: now.Add(-6 * 24 * time.Hour)}))
		must(t, s.PutActivationCode(ctx, ActivationCode{ID: "live", Device: "d", Hash: []byte("3"), CreatedAt: t0, ExpiresAt: now.Add(time.Hour)}))
		// Refresh tokens.
		must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: tokHash("dead"), Family: "fdead", Device: "d", IssuedAt: t0, ExpiresAt: now.Add(-time.Second)}))
		must(t, s.PutRefreshToken(ctx, RefreshToken{Hash: tokHash("alive"), Family: "falive", Device: "d", IssuedAt: t0, ExpiresAt: now.Add(time.Hour)}))
		// Revoked access tokens.
		must(t, s.RevokeAccessToken(ctx, "jdead", now.Add(-time.Second)))
		must(t, s.RevokeAccessToken(ctx, "jalive", now.Add(time.Second)))
		// Registrations.
		must(t, s.PutRegistration(ctx, Registration{AOR: "sip:a@x", Contact: "<sip:dead>", ExpiresAt: now.Add(-time.Second)}))
		must(t, s.PutRegistration(ctx, Registration{AOR: "sip:a@x", Contact: "<sip:alive>", ExpiresAt: now.Add(time.Second)}))

		must(t, s.Purge(ctx, now))

		cs, _ := s.ListActivationCodes(ctx, "d")
		if len(cs) != 2 || cs[0].ID != "live" && cs[1].ID != "live" {
			t.Fatalf("codes after purge = %+v", cs)
		}
		for _, c := range cs {
			if c.ID == "old" {
				t.Fatal("old code not purged")
			}
		}
		if _, err := s.RotateRefreshToken(ctx, tokHash("dead"), now, nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("dead token = %v", err)
		}
		if rv, err := s.TokenRevocation(ctx, "j", "fdead"); err != nil || !rv.FamilyMissing {
			t.Fatalf("empty family not purged: %+v %v", rv, err)
		}
		if rv, err := s.TokenRevocation(ctx, "j", "falive"); err != nil || rv.FamilyMissing {
			t.Fatalf("live family purged: %+v %v", rv, err)
		}
		if rv, _ := s.TokenRevocation(ctx, "jdead", ""); rv.Revoked {
			t.Fatal("expired revocation not purged")
		}
		if rv, _ := s.TokenRevocation(ctx, "jalive", ""); !rv.Revoked {
			t.Fatal("live revocation purged")
		}
		if n := rawCount(t, s, `SELECT COUNT(*) FROM registrations`); n != 1 {
			t.Fatalf("registrations after purge = %d", n)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRedeemRaceProcesses runs the redemption race in two real child
// processes (this test binary re-executed) sharing one database.
func TestRedeemRaceProcesses(t *testing.T) {
	if os.Getenv("EDGEWAY_STORE_CHILD") != "" {
		t.Skip("child")
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	forEachEngine(t, testRedeemRaceProcesses)
}

func testRedeemRaceProcesses(t *testing.T, db testDB) {
	s := db.open()
	h := []byte("proc-hash")
	putCode(t, s, "proc", "SEPP", h)
	const procs, perProc = 2, 50
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRedeemChild$", "-test.v")
			cmd.Env = append(os.Environ(), "EDGEWAY_STORE_CHILD="+db.dsn, fmt.Sprintf("EDGEWAY_STORE_N=%d", perProc))
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Wait()
	var ok, used int
	for i := range procs {
		if errs[i] != nil {
			t.Fatalf("child %d: %v\n%s", i, errs[i], outs[i])
		}
		var o, u int
		for _, line := range strings.Split(string(outs[i]), "\n") {
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "RESULT ok=%d used=%d", &o, &u); err == nil {
				break
			}
		}
		ok += o
		used += u
	}
	if ok != 1 || used != procs*perProc-1 {
		t.Fatalf("across processes: successes=%d already-used=%d, want 1 and %d", ok, used, procs*perProc-1)
	}
}

// TestRedeemChild is the body of one child process of TestRedeemRaceProcesses.
func TestRedeemChild(t *testing.T) {
	dsn := os.Getenv("EDGEWAY_STORE_CHILD")
	if dsn == "" {
		t.Skip("only run as a child of TestRedeemRaceProcesses")
	}
	var n int
	fmt.Sscan(os.Getenv("EDGEWAY_STORE_N"), &n)
	s, err := OpenURL(context.Background(), dsn)
	must(t, err)
	defer s.Close()
	warmUp(t, s)
	var ok, used atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.RedeemActivationCode(context.Background(), []byte("proc-hash"), "SEPP", t0, GuessBudget{})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrAlreadyUsed):
				used.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	fmt.Printf("RESULT ok=%d used=%d\n", ok.Load(), used.Load())
}

// A successor that cannot be stored rolls the rotation back, so the client's
// retry with the same refresh token is not a replay.
func TestRotateWithSuccessorIsAtomic(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		t0 := time.Unix(1_800_000_000, 0)
		old := RefreshToken{Hash: tokHash("a1"), Family: "famA", Device: "SEP1", Origin: "activation_code", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := s.PutRefreshToken(ctx, old); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		if _, err := s.RotateRefreshToken(ctx, old.Hash, t0, func(RefreshToken) (RefreshToken, Grace, error) { return RefreshToken{}, Grace{}, boom }); !errors.Is(err, boom) {
			t.Fatalf("failing successor: %v", err)
		}
		// A successor that conflicts (same hash as an existing token) also rolls back.
		if _, err := s.RotateRefreshToken(ctx, old.Hash, t0, func(o RefreshToken) (RefreshToken, Grace, error) {
			o.Hash = old.Hash
			return o, Grace{}, nil
		}); !errors.Is(err, ErrConflict) {
			t.Fatalf("conflicting successor: %v", err)
		}
		got, err := s.RotateRefreshToken(ctx, old.Hash, t0, func(o RefreshToken) (RefreshToken, Grace, error) {
			o.Hash, o.RotatedAt, o.IssuedAt, o.ExpiresAt = tokHash("a2"), time.Time{}, t0, t0.Add(time.Hour)
			return o, Grace{}, nil
		})
		if err != nil || got.Family != "famA" {
			t.Fatalf("rotation after failed attempts: %+v %v", got, err)
		}
		if _, err := s.RotateRefreshToken(ctx, tokHash("a2"), t0, nil); err != nil {
			t.Fatalf("successor was not stored: %v", err)
		}
	})
}
