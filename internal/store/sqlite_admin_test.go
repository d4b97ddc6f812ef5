package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

// openAtVersion creates a database file migrated only up to version, as an
// older build would have left it, and returns a handle on it.
func openAtVersion(t *testing.T, version int) (*SQLite, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", dsn(path))
	must(t, err)
	s := newSQLite(db)
	t.Cleanup(func() { s.Close() })
	must(t, s.migrateTo(ctx, version))
	return s, path
}

// SQLite-only: a file an older SQLite build left (schema version 1) is
// upgraded; PostgreSQL's schema has its own history, which began after
// these columns and tables existed.
func TestMigrationFromVersion1(t *testing.T) {
	ctx := context.Background()
	old, path := openAtVersion(t, 1)
	if v, err := old.SchemaVersion(ctx); err != nil || v != 1 {
		t.Fatalf("SchemaVersion of the old file = %d, %v", v, err)
	}
	// A row written by the version-1 build (no device_type column yet).
	if _, err := old.db.ExecContext(ctx,
		`INSERT INTO security_profiles (name, mode, transport, oauth, digest, tftp_encrypted)
		 VALUES ('8845-OAuth', 'encrypted', 'TLS', 1, 0, 1)`); err != nil {
		t.Fatal(err)
	}
	if _, err := old.db.ExecContext(ctx, `SELECT device_type FROM security_profiles`); err == nil {
		t.Fatal("version-1 schema already has device_type")
	}
	must(t, old.SetParam(ctx, "ClusterName", "edgeway"))
	must(t, old.Close())

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version-1 file: %v", err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("SchemaVersion after upgrade = %d, %v; want %d", v, err, len(migrations))
	}
	got, err := s.GetSecurityProfile(ctx, "8845-OAuth")
	must(t, err)
	want := SecurityProfile{Name: "8845-OAuth", DeviceType: "", Mode: "encrypted", Transport: "TLS", OAuth: true, TFTPEncrypted: true}
	if got != want {
		t.Fatalf("profile after upgrade = %+v, want %+v", got, want)
	}
	if v, ok, err := s.GetParam(ctx, "ClusterName"); err != nil || !ok || v != "edgeway" {
		t.Fatalf("param after upgrade = %q, %v, %v", v, ok, err)
	}
	// The new tables exist.
	if n, err := s.CountAdmins(ctx); err != nil || n != 0 {
		t.Fatalf("CountAdmins after upgrade = %d, %v", n, err)
	}
	must(t, s.PutNode(ctx, Node{Name: "cucm1", Role: "publisher"}))
	must(t, s.PutTrustCert(ctx, TrustCert{Store: "tomcat-trust", Fingerprint: "ab", PEM: []byte("pem")}))
	must(t, s.PutAPIToken(ctx, APIToken{ID: "t1", Hash: tokHash("t1"), Owner: "admin"}))
	// Reopening the upgraded file changes nothing.
	s2, err := Open(ctx, path)
	must(t, err)
	defer s2.Close()
	if v, err := s2.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("SchemaVersion after reopen = %d, %v", v, err)
	}
}

// SQLite-only: migrateTo is the SQLite migrator's test hook.
func TestMigrateToRejectsUnknownVersion(t *testing.T) {
	s, _ := openTest(t)
	if err := s.migrateTo(context.Background(), len(migrations)+1); err == nil {
		t.Fatal("migrateTo accepted a version beyond the last migration")
	}
}

func TestSecurityProfileDeviceTypeAndDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		p := SecurityProfile{Name: "Cisco 8845 - Standard SIP Secure Profile", DeviceType: "8845",
			Mode: "encrypted", Transport: "TLS", OAuth: true, TFTPEncrypted: true}
		must(t, s.PutSecurityProfile(ctx, p))
		got, err := s.GetSecurityProfile(ctx, p.Name)
		must(t, err)
		if got != p {
			t.Fatalf("GetSecurityProfile = %+v, want %+v", got, p)
		}
		// Upsert replaces the device type too.
		p.DeviceType = "UDT"
		must(t, s.PutSecurityProfile(ctx, p))
		ps, err := s.ListSecurityProfiles(ctx)
		must(t, err)
		if len(ps) != 1 || ps[0] != p {
			t.Fatalf("ListSecurityProfiles = %+v, want [%+v]", ps, p)
		}

		if err := s.DeleteSecurityProfile(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteSecurityProfile(unknown) = %v", err)
		}
		must(t, s.PutDevice(ctx, Device{Name: "SEP1", Model: "8845", Line: "1001", SecurityProfile: p.Name}))
		if err := s.DeleteSecurityProfile(ctx, p.Name); !errors.Is(err, ErrConflict) {
			t.Fatalf("DeleteSecurityProfile(in use) = %v", err)
		}
		if _, err := s.GetSecurityProfile(ctx, p.Name); err != nil {
			t.Fatalf("profile in use was deleted: %v", err)
		}
		// Once no device names it, it can go.
		must(t, s.PutDevice(ctx, Device{Name: "SEP1", Model: "8845", Line: "1001", SecurityProfile: "other"}))
		must(t, s.DeleteSecurityProfile(ctx, p.Name))
		if _, err := s.GetSecurityProfile(ctx, p.Name); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetSecurityProfile(deleted) = %v", err)
		}
		if err := s.DeleteSecurityProfile(ctx, p.Name); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second DeleteSecurityProfile = %v", err)
		}
	})
}

func TestAdmins(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		if n, err := s.CountAdmins(ctx); err != nil || n != 0 {
			t.Fatalf("CountAdmins(empty) = %d, %v", n, err)
		}
		if _, err := s.GetAdmin(ctx, "admin"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetAdmin(unknown) = %v", err)
		}
		if err := s.PutAdmin(ctx, Admin{}); err == nil {
			t.Fatal("admin without a name accepted")
		}
		a := Admin{Username: "admin", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", CreatedAt: t0}
		must(t, s.PutAdmin(ctx, a))
		got, err := s.GetAdmin(ctx, "admin")
		must(t, err)
		if got != a {
			t.Fatalf("GetAdmin = %+v, want %+v", got, a)
		}
		// Upsert replaces the hash and keeps CreatedAt.
		must(t, s.PutAdmin(ctx, Admin{Username: "admin", PasswordHash: "changed", CreatedAt: t0.Add(time.Hour)}))
		got, err = s.GetAdmin(ctx, "admin")
		must(t, err)
		if got.PasswordHash != "changed" || !got.CreatedAt.Equal(t0) {
			t.Fatalf("GetAdmin after upsert = %+v", got)
		}
		must(t, s.PutAdmin(ctx, Admin{Username: "ops", PasswordHash: "x"}))
		if got, _ := s.GetAdmin(ctx, "ops"); got.CreatedAt.IsZero() {
			t.Fatal("zero CreatedAt not defaulted")
		}
		if n, err := s.CountAdmins(ctx); err != nil || n != 2 {
			t.Fatalf("CountAdmins = %d, %v", n, err)
		}
		// Admins and end users are separate.
		if _, err := s.GetUser(ctx, "admin"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetUser(admin) = %v", err)
		}
	})
}

func TestAPITokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		t1 := APIToken{ID: "tok1", Hash: tokHash("secret-1"), Name: "provisioning script", Owner: "admin", CreatedAt: t0}
		t2 := APIToken{ID: "tok2", Hash: tokHash("secret-2"), Name: "monitoring", Owner: "ops", CreatedAt: t0.Add(time.Second)}
		t0b := APIToken{ID: "tok0", Hash: tokHash("secret-0"), Name: "same instant", Owner: "admin", CreatedAt: t0}
		for _, tk := range []APIToken{t2, t1, t0b} {
			must(t, s.PutAPIToken(ctx, tk))
		}
		if err := s.PutAPIToken(ctx, APIToken{ID: "tok1", Hash: tokHash("other")}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate id = %v", err)
		}
		if err := s.PutAPIToken(ctx, APIToken{ID: "tok9", Hash: t1.Hash}); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate hash = %v", err)
		}
		if err := s.PutAPIToken(ctx, APIToken{ID: "x"}); err == nil {
			t.Fatal("token without a hash accepted")
		}

		// Lookup returns the token and records its use.
		got, err := s.APITokenByHash(ctx, t1.Hash, t0.Add(time.Minute))
		must(t, err)
		want := t1
		want.LastUsed = t0.Add(time.Minute)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("APITokenByHash = %+v, want %+v", got, want)
		}
		got, err = s.APITokenByHash(ctx, t1.Hash, t0.Add(2*time.Minute))
		must(t, err)
		if !got.LastUsed.Equal(t0.Add(2 * time.Minute)) {
			t.Fatalf("LastUsed after second use = %v", got.LastUsed)
		}
		if _, err := s.APITokenByHash(ctx, tokHash("unknown"), t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("APITokenByHash(unknown) = %v", err)
		}

		// Listing: oldest first (ID breaks ties), hashes never returned.
		list, err := s.ListAPITokens(ctx)
		must(t, err)
		if len(list) != 3 || list[0].ID != "tok0" || list[1].ID != "tok1" || list[2].ID != "tok2" {
			t.Fatalf("ListAPITokens order = %+v", list)
		}
		for _, tk := range list {
			if tk.Hash != nil {
				t.Fatalf("ListAPITokens returned the hash of %q", tk.ID)
			}
		}
		wantList := t1
		wantList.Hash, wantList.LastUsed = nil, t0.Add(2*time.Minute)
		if !reflect.DeepEqual(list[1], wantList) {
			t.Fatalf("listed token = %+v, want %+v", list[1], wantList)
		}
		if !list[2].LastUsed.IsZero() {
			t.Fatalf("unused token has LastUsed %v", list[2].LastUsed)
		}

		// Revocation: first time kept, revoked tokens are not found and their
		// LastUsed is not touched.
		must(t, s.RevokeAPIToken(ctx, "tok1", t0.Add(time.Hour)))
		must(t, s.RevokeAPIToken(ctx, "tok1", t0.Add(2*time.Hour)))
		if err := s.RevokeAPIToken(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("RevokeAPIToken(unknown) = %v", err)
		}
		if got, err := s.APITokenByHash(ctx, t1.Hash, t0.Add(3*time.Hour)); !errors.Is(err, ErrNotFound) || got.ID != "" {
			t.Fatalf("APITokenByHash(revoked) = %+v, %v", got, err)
		}
		list, _ = s.ListAPITokens(ctx)
		if !list[1].RevokedAt.Equal(t0.Add(time.Hour)) || !list[1].LastUsed.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("revoked token = %+v", list[1])
		}
		// Other tokens are unaffected.
		if _, err := s.APITokenByHash(ctx, t2.Hash, t0); err != nil {
			t.Fatalf("APITokenByHash(tok2) = %v", err)
		}
	})
}

// Lookups of one token from many goroutines and two handles all succeed
// while the token is valid (the UPDATE ... RETURNING must not trip over
// concurrent writers).
func TestAPITokenByHashConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, s2 := db.open(), db.open()
		must(t, s.PutAPIToken(ctx, APIToken{ID: "c", Hash: tokHash("c"), Owner: "admin", CreatedAt: t0}))
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			h := []Store{s, s2}[i%2]
			wg.Go(func() {
				if _, err := h.APITokenByHash(ctx, tokHash("c"), t0.Add(time.Duration(i)*time.Second)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent APITokenByHash: %v", err)
		}
		list, _ := s.ListAPITokens(ctx)
		if len(list) != 1 || list[0].LastUsed.IsZero() {
			t.Fatalf("after concurrent use: %+v", list)
		}
	})
}

func TestNodes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		if _, err := s.GetNode(ctx, "cucm1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetNode(unknown) = %v", err)
		}
		if err := s.PutNode(ctx, Node{}); err == nil {
			t.Fatal("node without a name accepted")
		}
		n1 := Node{Name: "cucm1", Role: "publisher", PhoneOAuthPort: 5090, MRAPort: 5091,
			RunningMode: "enabled", RestartedAt: t0, LastSeen: t0.Add(time.Minute)}
		n2 := Node{Name: "cucm2", Role: "subscriber", PhoneOAuthPort: 5090, MRAPort: 5091, RunningMode: "disabled"}
		must(t, s.PutNode(ctx, n2))
		must(t, s.PutNode(ctx, n1))
		got, err := s.GetNode(ctx, "cucm1")
		must(t, err)
		if got != n1 {
			t.Fatalf("GetNode = %+v, want %+v", got, n1)
		}
		// Upsert replaces every field, zero times included.
		n1b := Node{Name: "cucm1", Role: "subscriber", PhoneOAuthPort: 6090, MRAPort: 6091, RunningMode: "disabled",
			LastSeen: t0.Add(time.Hour)}
		must(t, s.PutNode(ctx, n1b))
		got, err = s.GetNode(ctx, "cucm1")
		must(t, err)
		if got != n1b {
			t.Fatalf("GetNode after upsert = %+v, want %+v", got, n1b)
		}
		list, err := s.ListNodes(ctx)
		must(t, err)
		if !reflect.DeepEqual(list, []Node{n1b, n2}) {
			t.Fatalf("ListNodes = %+v", list)
		}
	})
}

func TestTrustCerts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		c1 := TrustCert{Store: "tomcat-trust", Fingerprint: "aa11", PEM: []byte("-----BEGIN CERTIFICATE-----\n1"),
			Subject: "CN=Root CA", Issuer: "CN=Root CA", NotAfter: t0.Add(365 * 24 * time.Hour), AddedAt: t0.Add(time.Second)}
		c2 := TrustCert{Store: "phone-edge-trust", Fingerprint: "bb22", PEM: []byte("pem2"),
			Subject: "CN=expc1.example.com", Issuer: "CN=Root CA", AddedAt: t0}
		// The same certificate may be in several stores.
		c3 := c1
		c3.Store, c3.AddedAt = "phone-edge-trust", t0.Add(2*time.Second)
		for _, c := range []TrustCert{c1, c2, c3} {
			must(t, s.PutTrustCert(ctx, c))
		}
		dup := c1
		dup.Subject, dup.AddedAt = "CN=other", t0.Add(time.Hour)
		if err := s.PutTrustCert(ctx, dup); !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate fingerprint = %v", err)
		}
		if err := s.PutTrustCert(ctx, TrustCert{Store: "tomcat-trust", Fingerprint: "cc"}); err == nil {
			t.Fatal("certificate without a PEM accepted")
		}

		all, err := s.ListTrustCerts(ctx, "")
		must(t, err)
		if !reflect.DeepEqual(all, []TrustCert{c2, c1, c3}) {
			t.Fatalf("ListTrustCerts(all) = %+v", all)
		}
		edge, err := s.ListTrustCerts(ctx, "phone-edge-trust")
		must(t, err)
		if !reflect.DeepEqual(edge, []TrustCert{c2, c3}) {
			t.Fatalf("ListTrustCerts(phone-edge-trust) = %+v", edge)
		}
		tomcat, _ := s.ListTrustCerts(ctx, "tomcat-trust")
		if !reflect.DeepEqual(tomcat, []TrustCert{c1}) {
			t.Fatalf("ListTrustCerts(tomcat-trust) = %+v (duplicate changed it?)", tomcat)
		}

		must(t, s.DeleteTrustCert(ctx, "phone-edge-trust", "aa11"))
		if err := s.DeleteTrustCert(ctx, "phone-edge-trust", "aa11"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteTrustCert(absent) = %v", err)
		}
		if err := s.DeleteTrustCert(ctx, "nostore", "bb22"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("DeleteTrustCert(wrong store) = %v", err)
		}
		all, _ = s.ListTrustCerts(ctx, "")
		if !reflect.DeepEqual(all, []TrustCert{c2, c1}) {
			t.Fatalf("after delete = %+v", all)
		}
		// Deleted, it can be added again.
		must(t, s.PutTrustCert(ctx, c3))
	})
}

// A token created from another lives only as long as its parent: revoking
// the parent revokes it (and what was made from it), and it stops working
// even if it was written after the revocation. A password change revokes
// every other token of the account.
func TestAPITokenLineage(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open()
		tok := func(id, owner, parent string, login bool) APIToken {
			return APIToken{ID: id, Hash: tokHash("secret-" + id), Owner: owner, Parent: parent, Login: login, CreatedAt: t0}
		}
		valid := func(id string) bool {
			t.Helper()
			_, err := s.APITokenByHash(ctx, tokHash("secret-"+id), t0)
			if err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		for _, tk := range []APIToken{
			tok("login-a", "alice", "", true), tok("script-a", "alice", "login-a", false), tok("grandchild", "alice", "script-a", false),
			tok("other-a", "alice", "", true), tok("login-b", "bob", "", true),
		} {
			must(t, s.PutAPIToken(ctx, tk))
		}
		got, err := s.APITokenByHash(ctx, tokHash("secret-script-a"), t0)
		must(t, err)
		if got.Parent != "login-a" || got.Login || got.Owner != "alice" {
			t.Fatalf("APITokenByHash = %+v", got)
		}
		for _, id := range []string{"login-a", "script-a", "grandchild", "other-a", "login-b"} {
			if !valid(id) {
				t.Fatalf("%s not valid before any revocation", id)
			}
		}
		must(t, s.RevokeAPIToken(ctx, "login-a", t0))
		for id, want := range map[string]bool{"login-a": false, "script-a": false, "grandchild": false, "other-a": true, "login-b": true} {
			if valid(id) != want {
				t.Errorf("after revoking login-a: %s valid = %v, want %v", id, !want, want)
			}
		}
		list, err := s.ListAPITokens(ctx)
		must(t, err)
		for _, tk := range list {
			if (tk.ID == "script-a" || tk.ID == "grandchild") && tk.RevokedAt.IsZero() {
				t.Errorf("%s listed as valid after its parent's revocation", tk.ID)
			}
		}
		// Written under a revoked parent (a request racing the revocation).
		must(t, s.PutAPIToken(ctx, tok("late", "alice", "login-a", false)))
		if valid("late") {
			t.Error("a token whose parent is revoked works")
		}
		if err := s.RevokeAPIToken(ctx, "nope", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking an unknown token: %v", err)
		}
		// Password change of alice, keeping the token that made it.
		must(t, s.PutAPIToken(ctx, tok("login-a2", "alice", "", true)))
		must(t, s.PutAPIToken(ctx, tok("script-a2", "alice", "other-a", false)))
		must(t, s.RevokeAPITokensOf(ctx, "alice", "login-a2", t0))
		for id, want := range map[string]bool{"login-a2": true, "other-a": false, "script-a2": false, "login-b": true} {
			if valid(id) != want {
				t.Errorf("after alice's password change: %s valid = %v, want %v", id, !want, want)
			}
		}
	})
}
