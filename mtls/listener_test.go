package mtls

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"
	"time"
)

type rejection struct {
	remote net.Addr
	names  []string
	err    error
}

// startListener wraps a loopback listener with NewListener and serves it:
// each accepted conn gets the one-byte greeting dialTLS expects and is then
// sent on the returned channel (left open; closed at test end).
func startListener(t *testing.T, cfg *tls.Config, o ListenerOptions) (net.Listener, <-chan *tls.Conn, <-chan rejection) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rejects := make(chan rejection, 64)
	if o.OnReject == nil {
		o.OnReject = func(remote net.Addr, names []string, err error) {
			rejects <- rejection{remote, names, err}
		}
	}
	ln := NewListener(inner, cfg, o)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan *tls.Conn, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc, ok := c.(*tls.Conn)
			if !ok {
				t.Errorf("Accept returned %T, want *tls.Conn", c)
				c.Close()
				return
			}
			if !tc.ConnectionState().HandshakeComplete {
				t.Error("Accept returned a connection before its handshake completed")
			}
			_, _ = tc.Write([]byte("k"))
			t.Cleanup(func() { tc.Close() })
			accepted <- tc
		}
	}()
	return ln, accepted, rejects
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed waits for the server to close c (EOF or reset, not timeout).
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed by server: %v", err)
	}
}

func noRejection(t *testing.T, rejects <-chan rejection) {
	t.Helper()
	select {
	case r := <-rejects:
		t.Fatalf("unexpected rejection of %s: %v", r.remote, r.err)
	default:
	}
}

func TestListenerHandshakeTimeout(t *testing.T) {
	f := newFixture(t)
	const timeout = 500 * time.Millisecond
	ln, accepted, rejects := startListener(t, ServerConfig(f.coreKP), ListenerOptions{HandshakeTimeout: timeout})
	addr := ln.Addr().String()

	silent := dialRaw(t, addr)
	start := time.Now()

	// A good client completes while the silent one is still handshaking.
	if _, err := dialTLS(t, addr, ClientConfig(nil, f.trust, "core.example.com")); err != nil {
		t.Fatalf("good client: %v", err)
	}
	recv(t, accepted)
	noRejection(t, rejects)

	r := recv(t, rejects)
	elapsed := time.Since(start)
	if !errors.Is(r.err, ErrHandshakeTimeout) {
		t.Errorf("rejection err = %v, want ErrHandshakeTimeout", r.err)
	}
	if r.remote.String() != silent.LocalAddr().String() {
		t.Errorf("rejected %s, want %s", r.remote, silent.LocalAddr())
	}
	if r.names != nil {
		t.Errorf("names = %q, want nil (no certificate)", r.names)
	}
	if elapsed < timeout-50*time.Millisecond {
		t.Errorf("silent client dropped after %v, before the %v timeout", elapsed, timeout)
	}
	expectClosed(t, silent)
}

func TestListenerMaxConnsPerSource(t *testing.T) {
	f := newFixture(t)
	ln, accepted, rejects := startListener(t, ServerConfig(f.coreKP), ListenerOptions{MaxConnsPerSource: 2})
	addr := ln.Addr().String()
	good := ClientConfig(nil, f.trust, "core.example.com")

	s1 := dialRaw(t, addr)
	s2 := dialRaw(t, addr)
	_ = s2
	s3 := dialRaw(t, addr)
	r := recv(t, rejects)
	if !errors.Is(r.err, ErrSourceConnLimit) || r.remote.String() != s3.LocalAddr().String() {
		t.Fatalf("rejection %s: %v, want ErrSourceConnLimit for %s", r.remote, r.err, s3.LocalAddr())
	}
	expectClosed(t, s3)

	// Another source address has its own budget.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	if other, err := d.Dial("tcp", addr); err == nil {
		t.Cleanup(func() { other.Close() })
		c := tls.Client(other, good)
		if err := c.Handshake(); err != nil {
			t.Errorf("client from 127.0.0.2: %v", err)
		}
		recv(t, accepted)
	} else {
		t.Logf("cannot bind 127.0.0.2, skipping other-source check: %v", err)
	}

	// Closing s1 frees a slot (its handshake fails with EOF first).
	s1.Close()
	r = recv(t, rejects)
	if r.remote.String() != s1.LocalAddr().String() || errors.Is(r.err, ErrSourceConnLimit) {
		t.Fatalf("rejection %s: %v, want handshake failure of %s", r.remote, r.err, s1.LocalAddr())
	}
	if _, err := dialTLS(t, addr, good); err != nil {
		t.Fatalf("client after a slot was freed: %v", err)
	}
	conn := recv(t, accepted)
	noRejection(t, rejects)

	// Now s2 and conn hold the two slots; closing the accepted *tls.Conn on
	// the server side releases its slot.
	s4 := dialRaw(t, addr)
	if r := recv(t, rejects); !errors.Is(r.err, ErrSourceConnLimit) {
		t.Fatalf("rejection: %v", r.err)
	}
	expectClosed(t, s4)
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLS(t, addr, good); err != nil {
		t.Fatalf("client after closing an accepted conn: %v", err)
	}
	recv(t, accepted)
}

func TestListenerMaxConns(t *testing.T) {
	f := newFixture(t)
	ln, _, rejects := startListener(t, ServerConfig(f.coreKP), ListenerOptions{MaxConns: 1})
	addr := ln.Addr().String()
	dialRaw(t, addr)
	s2 := dialRaw(t, addr)
	if r := recv(t, rejects); !errors.Is(r.err, ErrConnLimit) {
		t.Fatalf("rejection: %v", r.err)
	}
	expectClosed(t, s2)
}

func TestListenerOnRejectNames(t *testing.T) {
	f := newFixture(t)
	accepts := make(chan *tls.Conn, 4)
	cfg := MutualServerConfig(f.coreKP, f.trust, AdmitNames([]string{"expc.example.com"}))
	ln, accepted, rejects := startListener(t, cfg, ListenerOptions{
		OnAccept: func(c *tls.Conn) { accepts <- c },
	})
	addr := ln.Addr().String()

	cases := []struct {
		name      string
		kp        *KeyPair
		wantNames []string
		wantErr   error
	}{
		{"name not admitted", f.wrongNameKP, []string{"evil.example.com"}, ErrNotAdmitted},
		{"untrusted CA", f.rogueKP, []string{"expc.example.com"}, ErrUntrusted},
		{"no certificate", nil, nil, nil},
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tc := range cases {
			t.Run(tls.VersionName(version)+"/"+tc.name, func(t *testing.T) {
				c := ClientConfig(tc.kp, f.trust, "core.example.com")
				c.MaxVersion = version
				if _, err := dialTLS(t, addr, c); err == nil {
					t.Fatal("client succeeded")
				}
				r := recv(t, rejects)
				if !reflect.DeepEqual(r.names, tc.wantNames) {
					t.Errorf("names = %#v, want %#v", r.names, tc.wantNames)
				}
				if r.err == nil || (tc.wantErr != nil && !errors.Is(r.err, tc.wantErr)) {
					t.Errorf("err = %v, want %v", r.err, tc.wantErr)
				}
			})
		}
	}

	if len(accepts) != 0 {
		t.Fatal("OnAccept called for rejected clients")
	}
	if _, err := dialTLS(t, addr, ClientConfig(f.edgeKP, f.trust, "core.example.com")); err != nil {
		t.Fatalf("good client: %v", err)
	}
	conn := recv(t, accepted)
	if onAcc := recv(t, accepts); onAcc != conn {
		t.Error("OnAccept got a different conn than Accept")
	}
	if st := conn.ConnectionState(); len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != "expc.example.com" {
		t.Error("accepted conn lacks the client certificate")
	}
}

func TestListenerClose(t *testing.T) {
	f := newFixture(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rejects := make(chan rejection, 4)
	ln := NewListener(inner, ServerConfig(f.coreKP), ListenerOptions{
		OnReject: func(remote net.Addr, names []string, err error) { rejects <- rejection{remote, names, err} },
	})
	acceptErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		acceptErr <- err
	}()
	// Whether or not the accept loop has picked it up yet, a connection
	// that has not been returned by Accept is closed by Close.
	silent := dialRaw(t, ln.Addr().String())

	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, acceptErr); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Accept after Close: %v", err)
	}
	expectClosed(t, silent)
	if err := ln.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	noRejection(t, rejects)
}

func TestListenerNilConfig(t *testing.T) {
	if _, err := NewListener(nil, nil, ListenerOptions{}).Accept(); err == nil {
		t.Error("Accept on a listener without config succeeded")
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(inner, nil, ListenerOptions{})
	if _, err := ln.Accept(); err == nil {
		t.Error("Accept with nil config succeeded")
	}
	if err := ln.Close(); err != nil {
		t.Error(err)
	}
}

func TestListenerSessionResumption(t *testing.T) {
	f := newFixture(t)
	cfg := MutualServerConfig(f.coreKP, f.trust, AdmitNames([]string{"expc.example.com"}))
	ln, accepted, _ := startListener(t, cfg, ListenerOptions{})
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			c := ClientConfig(f.edgeKP, f.trust, "core.example.com")
			c.MaxVersion = version
			c.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			var resumed bool
			for i := 0; i < 3 && !resumed; i++ {
				state, err := dialTLS(t, ln.Addr().String(), c)
				if err != nil {
					t.Fatalf("dial %d: %v", i, err)
				}
				conn := recv(t, accepted)
				resumed = state.DidResume
				if st := conn.ConnectionState(); len(st.PeerCertificates) == 0 {
					t.Fatal("resumed conn lacks the client certificate")
				}
			}
			if !resumed {
				t.Error("session never resumed through NewListener")
			}
		})
	}
}

// TestResumedSessionReverified: a session ticket issued before the client's
// CA was removed from tomcat-trust does not let it back in.
func TestResumedSessionReverified(t *testing.T) {
	f := newFixture(t)
	path := trustFile(t, f.dir, "reverify-trust.pem", f.ca)
	trust, err := NewTrustStore(path)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	trust.r.now = clk.Now
	ln, accepted, rejects := startListener(t, MutualServerConfig(f.coreKP, trust, nil), ListenerOptions{})
	c := ClientConfig(f.edgeKP, f.trust, "core.example.com")
	c.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	for i := 0; i < 2; i++ { // the second dial resumes
		if _, err := dialTLS(t, ln.Addr().String(), c); err != nil {
			t.Fatal(err)
		}
		recv(t, accepted)
	}
	writeFile(t, path, f.otherCA.CertPEM)
	clk.Advance(1100 * time.Millisecond)
	state, err := dialTLS(t, ln.Addr().String(), c)
	if err == nil {
		t.Fatalf("client admitted after its CA was removed (resumed=%v)", state.DidResume)
	}
	if r := recv(t, rejects); !errors.Is(r.err, ErrUntrusted) {
		t.Errorf("rejection: %v", r.err)
	}
}

// Issue 9 item 11: a client that completes TLS but is never marked
// Established gives its slot back after EstablishTimeout; one that is
// marked stays open.
func TestListenerEstablishTimeout(t *testing.T) {
	f := newFixture(t)
	const timeout = 300 * time.Millisecond
	ln, accepted, rejects := startListener(t, ServerConfig(f.coreKP), ListenerOptions{EstablishTimeout: timeout, MaxConnsPerSource: 2, HandshakeTimeout: time.Minute})
	addr := ln.Addr().String()
	good := ClientConfig(nil, f.trust, "core.example.com")

	silent := dialKeep(t, addr, good)
	start := time.Now()
	recv(t, accepted)
	kept := dialKeep(t, addr, good)
	keptSrv := recv(t, accepted)
	if !Established(keptSrv) {
		t.Fatal("Established did not recognise a connection from this listener")
	}
	if Established(silent) {
		t.Fatal("Established accepted a client-side connection")
	}

	r := recv(t, rejects)
	if !errors.Is(r.err, ErrNotEstablished) || r.remote.String() != silent.LocalAddr().String() {
		t.Fatalf("rejection %s: %v, want ErrNotEstablished for %s", r.remote, r.err, silent.LocalAddr())
	}
	if elapsed := time.Since(start); elapsed < timeout-50*time.Millisecond {
		t.Errorf("closed after %v, before the %v timeout", elapsed, timeout)
	}
	expectClosed(t, silent)

	// The slot came back: a third connection from this source is admitted
	// (the per-source cap is 2 and the established one still holds one).
	if _, err := dialTLS(t, addr, good); err != nil {
		t.Fatalf("after the silent client's slot was freed: %v", err)
	}
	recv(t, accepted)
	// The established connection outlived the timeout.
	if _, err := keptSrv.Write([]byte("x")); err != nil {
		t.Fatalf("established connection was closed: %v", err)
	}
	buf := make([]byte, 1)
	_ = kept.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(kept, buf); err != nil || string(buf) != "x" {
		t.Fatalf("established connection: read %q, %v", buf, err)
	}
}

// dialKeep completes a TLS handshake, reads the listener's greeting and
// leaves the connection open (closed at test end).
func dialKeep(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c := tls.Client(dialRaw(t, addr), cfg)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'k' {
		t.Fatalf("dial %s: %q %v", addr, buf, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// TestListenerConfigPerConnection: a handshake gets its own config clone
// (with the hooks that record the client leaf for OnReject) only when the
// config asks for a client certificate; a config that asks for none (the
// edge's phone ports) is used as it is, so no clone stays with each
// connection for its lifetime.
func TestListenerConfigPerConnection(t *testing.T) {
	l := &listener{}
	hello := func() *tls.ClientHelloInfo { return &tls.ClientHelloInfo{Conn: &trackedConn{l: l}} }

	none := &tls.Config{ClientAuth: tls.NoClientCert}
	got, err := l.configForClient(none)(hello())
	if err != nil || got != nil {
		t.Fatalf("NoClientCert: got %p, %v; want the listener's own config (nil)", got, err)
	}

	mutual := &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	got, err = l.configForClient(mutual)(hello())
	if err != nil || got == nil || got == mutual || got.VerifyConnection == nil {
		t.Fatalf("RequireAnyClientCert: got %p, %v; want a clone that records the leaf", got, err)
	}
}
