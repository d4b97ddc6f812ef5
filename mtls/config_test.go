package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

// mtlsFixture is a core server identity, a trusted edge CA and an untrusted
// CA, mirroring the core/edge hop.
type mtlsFixture struct {
	dir         string
	ca, otherCA *CA
	coreKP      *KeyPair
	trust       *TrustStore // tomcat-trust: ca only
	edgeKP      *KeyPair    // from ca, expc.example.com
	rogueKP     *KeyPair    // from otherCA, expc.example.com
	wrongNameKP *KeyPair    // from ca, evil.example.com
}

func newFixture(t *testing.T) *mtlsFixture {
	t.Helper()
	f := &mtlsFixture{dir: t.TempDir()}
	f.ca = testCA(t, "Fixture CA")
	f.otherCA = testCA(t, "Other CA")
	f.coreKP = testKeyPair(t, f.ca, f.dir, "core", CertRequest{CommonName: "core.example.com", Names: []string{"core.example.com", "127.0.0.1"}, Server: true, Client: true})
	f.trust = testTrust(t, f.dir, "tomcat-trust.pem", f.ca)
	f.edgeKP = testKeyPair(t, f.ca, f.dir, "edge", CertRequest{CommonName: "expc.example.com", Names: []string{"expc.example.com"}, Client: true, Server: true})
	f.rogueKP = testKeyPair(t, f.otherCA, f.dir, "rogue", CertRequest{CommonName: "expc.example.com", Names: []string{"expc.example.com"}, Client: true})
	f.wrongNameKP = testKeyPair(t, f.ca, f.dir, "wrong", CertRequest{CommonName: "evil.example.com", Names: []string{"evil.example.com"}, Client: true})
	return f
}

// errAny marks a case where any error is expected.
var errAny = errors.New("any error")

func TestMutualServerConfig(t *testing.T) {
	f := newFixture(t)
	admit := AdmitNames([]string{"expc.example.com"})
	addr, results := serveTLS(t, MutualServerConfig(f.coreKP, f.trust, admit))

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			client := func(kp *KeyPair) *tls.Config {
				c := ClientConfig(kp, f.trust, "core.example.com")
				c.MinVersion, c.MaxVersion = version, version
				return c
			}
			cases := []struct {
				name    string
				kp      *KeyPair
				wantErr error // server-side error, nil for success
			}{
				{"trusted CA, allowed name", f.edgeKP, nil},
				{"trusted CA, admit refuses", f.wrongNameKP, ErrNotAdmitted},
				{"other CA", f.rogueKP, ErrUntrusted},
				// crypto/tls itself refuses (RequireAnyClientCert) before
				// VerifyConnection runs, with its own error.
				{"no client certificate", nil, errAny},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					state, cerr := dialTLS(t, addr, client(tc.kp))
					res := recv(t, results)
					if tc.wantErr == nil {
						if cerr != nil || res.err != nil {
							t.Fatalf("client err %v, server err %v", cerr, res.err)
						}
						if state.Version != version || res.state.Version != version {
							t.Errorf("negotiated %x, want %x", state.Version, version)
						}
						if len(res.state.PeerCertificates) == 0 || res.state.PeerCertificates[0].Subject.CommonName != "expc.example.com" {
							t.Error("server did not see the client certificate")
						}
						return
					}
					if cerr == nil {
						t.Error("client saw success for a refused handshake")
					}
					if res.err == nil || (tc.wantErr != errAny && !errors.Is(res.err, tc.wantErr)) {
						t.Errorf("server err = %v, want %v", res.err, tc.wantErr)
					}
				})
			}
		})
	}

	t.Run("admit error is wrapped", func(t *testing.T) {
		sentinel := errors.New("edge disabled")
		addr, results := serveTLS(t, MutualServerConfig(f.coreKP, f.trust, func(*x509.Certificate) error { return sentinel }))
		if _, err := dialTLS(t, addr, ClientConfig(f.edgeKP, f.trust, "127.0.0.1")); err == nil {
			t.Error("client succeeded")
		}
		if res := recv(t, results); !errors.Is(res.err, sentinel) || !errors.Is(res.err, ErrNotAdmitted) {
			t.Errorf("server err = %v", res.err)
		}
	})

	t.Run("nil admit admits any trusted cert", func(t *testing.T) {
		addr, results := serveTLS(t, MutualServerConfig(f.coreKP, f.trust, nil))
		if _, err := dialTLS(t, addr, ClientConfig(f.wrongNameKP, f.trust, "127.0.0.1")); err != nil {
			t.Error(err)
		}
		if res := recv(t, results); res.err != nil {
			t.Error(res.err)
		}
	})

	t.Run("server-only certificate refused as client", func(t *testing.T) {
		serverOnly := testKeyPair(t, f.ca, f.dir, "serveronly", CertRequest{CommonName: "expc.example.com", Names: []string{"expc.example.com"}, Server: true})
		if _, err := dialTLS(t, addr, ClientConfig(serverOnly, f.trust, "127.0.0.1")); err == nil {
			t.Error("client succeeded")
		}
		if res := recv(t, results); !errors.Is(res.err, ErrUntrusted) {
			t.Errorf("server err = %v", res.err)
		}
	})
}

func TestProtocolVersions(t *testing.T) {
	f := newFixture(t)
	configs := map[string]*tls.Config{
		"Server":               ServerConfig(f.coreKP),
		"MutualServer":         MutualServerConfig(f.coreKP, f.trust, nil),
		"OptionalClientServer": OptionalClientServerConfig(f.coreKP, f.trust, nil),
		"Client":               ClientConfig(nil, f.trust, "x"),
	}
	for name, c := range configs {
		if c.MinVersion != tls.VersionTLS12 || c.MaxVersion != tls.VersionTLS13 {
			t.Errorf("%s: versions %x..%x", name, c.MinVersion, c.MaxVersion)
		}
	}

	addr, results := serveTLS(t, MutualServerConfig(f.coreKP, f.trust, nil))
	old := ClientConfig(f.edgeKP, f.trust, "127.0.0.1")
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := dialTLS(t, addr, old); err == nil {
		t.Error("TLS 1.1 client accepted")
	}
	if res := recv(t, results); res.err == nil {
		t.Error("server accepted TLS 1.1")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c := ClientConfig(f.edgeKP, f.trust, "127.0.0.1")
		c.MaxVersion = v
		state, err := dialTLS(t, addr, c)
		if err != nil || state.Version != v {
			t.Errorf("%s client: version %x err %v", tls.VersionName(v), state.Version, err)
		}
		if res := recv(t, results); res.err != nil {
			t.Errorf("%s: server err %v", tls.VersionName(v), res.err)
		}
	}
}

func TestOptionalClientServerConfig(t *testing.T) {
	f := newFixture(t)
	addr, results := serveTLS(t, OptionalClientServerConfig(f.coreKP, f.trust, AdmitNames([]string{"expc.example.com"})))
	cases := []struct {
		name     string
		kp       *KeyPair
		ok       bool
		wantPeer bool
	}{
		{"no certificate", nil, true, false},
		{"trusted allowed", f.edgeKP, true, true},
		{"trusted not admitted", f.wrongNameKP, false, false},
		{"untrusted", f.rogueKP, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialTLS(t, addr, ClientConfig(tc.kp, f.trust, "core.example.com"))
			res := recv(t, results)
			if (err == nil) != tc.ok || (res.err == nil) != tc.ok {
				t.Fatalf("client err %v, server err %v, want ok=%v", err, res.err, tc.ok)
			}
			if tc.ok && (len(res.state.PeerCertificates) > 0) != tc.wantPeer {
				t.Errorf("peer certificates: %d", len(res.state.PeerCertificates))
			}
		})
	}
}

func TestClientConfigVerifiesServer(t *testing.T) {
	f := newFixture(t)
	addr, results := serveTLS(t, ServerConfig(f.coreKP))
	otherTrust := testTrust(t, f.dir, "other-trust.pem", f.otherCA)
	cases := []struct {
		name       string
		trust      *TrustStore
		serverName string
		wantErr    error
	}{
		{"DNS name", f.trust, "core.example.com", nil},
		{"DNS name, other case", f.trust, "CORE.example.com", nil},
		{"IP literal", f.trust, "127.0.0.1", nil},
		{"wrong name", f.trust, "other.example.com", ErrUntrusted},
		{"wrong IP", f.trust, "127.0.0.2", ErrUntrusted},
		{"wrong CA", otherTrust, "core.example.com", ErrUntrusted},
		{"no server name", f.trust, "", ErrNoServerName},
		{"nil trust store", nil, "core.example.com", ErrNoTrustStore},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialTLS(t, addr, ClientConfig(nil, tc.trust, tc.serverName))
			res := recv(t, results)
			if tc.wantErr == nil {
				if err != nil || res.err != nil {
					t.Fatalf("client err %v, server err %v", err, res.err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("client err = %v, want %v", err, tc.wantErr)
			}
			if res.err == nil {
				t.Error("server saw a successful handshake")
			}
		})
	}
}

func TestNilInputsDoNotPanic(t *testing.T) {
	var kp *KeyPair
	var ts *TrustStore
	if _, err := kp.Certificate(); !errors.Is(err, ErrNoKeyPair) {
		t.Error(err)
	}
	if kp.Leaf() != nil || kp.LastError() == nil {
		t.Error("nil KeyPair")
	}
	if c, err := kp.GetClientCertificate(nil); err != nil || len(c.Certificate) != 0 {
		t.Error("nil KeyPair should present no client certificate")
	}
	if _, err := ts.Verify(nil, x509.ExtKeyUsageAny); !errors.Is(err, ErrNoTrustStore) {
		t.Error(err)
	}
	if ts.Pool() == nil || ts.Certificates() != nil {
		t.Error("nil TrustStore")
	}
	f := newFixture(t)
	if _, err := f.trust.Verify(nil, x509.ExtKeyUsageAny); !errors.Is(err, ErrNoCertificate) {
		t.Error(err)
	}
	if _, err := f.trust.Verify([]*x509.Certificate{nil}, x509.ExtKeyUsageAny); !errors.Is(err, ErrNoCertificate) {
		t.Error(err)
	}

	// A server without a key pair fails handshakes instead of panicking.
	addr, results := serveTLS(t, ServerConfig(nil))
	if _, err := dialTLS(t, addr, ClientConfig(nil, f.trust, "core.example.com")); err == nil {
		t.Error("handshake with nil key pair succeeded")
	}
	if res := recv(t, results); !errors.Is(res.err, ErrNoKeyPair) {
		t.Errorf("server err = %v", res.err)
	}
	addr, results = serveTLS(t, MutualServerConfig(f.coreKP, nil, nil))
	if _, err := dialTLS(t, addr, ClientConfig(f.edgeKP, f.trust, "core.example.com")); err == nil {
		t.Error("handshake with nil trust store succeeded")
	}
	if res := recv(t, results); !errors.Is(res.err, ErrNoTrustStore) {
		t.Errorf("server err = %v", res.err)
	}
}

func ExampleMutualServerConfig() {
	// The core's SIP listener on 5091: Tomcat certificate, tomcat-trust,
	// and S-12 admission by Expressway-C name.
	kp, err := NewKeyPair("/etc/edgeway/core.pem", "/etc/edgeway/core-key.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	trust, err := NewTrustStore("/etc/edgeway/tomcat-trust.pem")
	if err != nil {
		fmt.Println(err)
		return
	}
	inner, err := net.Listen("tcp", ":5091")
	if err != nil {
		fmt.Println(err)
		return
	}
	ln := NewListener(inner, MutualServerConfig(kp, trust, AdmitNames([]string{"expc.example.com"})), ListenerOptions{
		OnReject: func(remote net.Addr, names []string, err error) {
			fmt.Printf("rejected %s %q: %v\n", remote, names, err)
		},
	})
	defer ln.Close()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			// conn is a *tls.Conn whose client passed S-11 and S-12.
		}()
	}
}

// TestTLS12OffersAEADOnly: issue 9 item 8 (LUCKY13). A TLS 1.2 client that
// offers only CBC suites is refused by every server config; each AEAD suite
// that fits the (ECDSA) certificate is accepted.
func TestTLS12OffersAEADOnly(t *testing.T) {
	f := newFixture(t)
	admit := AdmitNames([]string{"expc.example.com"})
	servers := map[string]*tls.Config{
		"ServerConfig":               ServerConfig(f.coreKP),
		"MutualServerConfig":         MutualServerConfig(f.coreKP, f.trust, admit),
		"OptionalClientServerConfig": OptionalClientServerConfig(f.coreKP, f.trust, admit),
	}
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, // AEAD but no forward secrecy
	}
	aead := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	for name, cfg := range servers {
		t.Run(name, func(t *testing.T) {
			addr, results := serveTLS(t, cfg)
			client := func(suites []uint16) *tls.Config {
				c := ClientConfig(f.edgeKP, f.trust, "core.example.com")
				c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				c.CipherSuites = suites
				return c
			}
			for _, s := range cbc {
				if _, err := dialTLS(t, addr, client([]uint16{s})); err == nil {
					t.Errorf("%s was negotiated", tls.CipherSuiteName(s))
				}
				if res := recv(t, results); res.err == nil {
					t.Errorf("server accepted %s", tls.CipherSuiteName(s))
				}
			}
			for _, s := range aead {
				state, err := dialTLS(t, addr, client([]uint16{s}))
				res := recv(t, results)
				if err != nil || res.err != nil {
					t.Errorf("%s: client %v, server %v", tls.CipherSuiteName(s), err, res.err)
					continue
				}
				if state.CipherSuite != s {
					t.Errorf("negotiated %s, want %s", tls.CipherSuiteName(state.CipherSuite), tls.CipherSuiteName(s))
				}
			}
		})
	}
	for _, s := range CipherSuites() {
		for _, insecure := range tls.InsecureCipherSuites() {
			if s == insecure.ID {
				t.Errorf("CipherSuites includes insecure %s", insecure.Name)
			}
		}
		if n := tls.CipherSuiteName(s); !strings.Contains(n, "GCM") && !strings.Contains(n, "CHACHA20_POLY1305") {
			t.Errorf("CipherSuites includes non-AEAD %s", n)
		}
	}
}
