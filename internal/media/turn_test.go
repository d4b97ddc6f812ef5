package media

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/edgeway/edgeway/internal/logx"
)

// An in-test TURN server (pion/turn/v5) on 127.0.0.1 over UDP, TCP and
// TLS, with static long-term credentials, that records every byte it
// sends or receives: on its client-facing sockets (what crosses the wire
// between a phone and the relay) and on each allocation's relay socket
// (what it forwards between peers).

const testRealm = "edgeway.test"

var testUsers = map[string]string{"alice": "alice-secret", "bob": "bob-secret"}

type testTURN struct {
	server        *turn.Server
	udp, tcp, tls string // host:port
	clientTLS     *tls.Config
	// wire is what the server reads and writes on its client-facing
	// sockets (for TLS, inside the TLS layer: what the server process
	// handles); relayed is what its relay sockets exchange with peers.
	wire, relayed *capture
	deniedPeer    net.IP // CreatePermission for it is refused (403)
}

func startTURN(t *testing.T) *testTURN {
	t.Helper()
	tt := &testTURN{wire: &capture{}, relayed: &capture{}, deniedPeer: net.IPv4(127, 0, 0, 9)}

	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsTCP, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, pool := selfSigned(t)
	tlsLn := &captureListener{c: tt.wire, Listener: tls.NewListener(tlsTCP,
		&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})}
	tt.clientTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tt.udp, tt.tcp, tt.tls = udp.LocalAddr().String(), tcp.Addr().String(), tlsTCP.Addr().String()

	keys := map[string][]byte{}
	for u, p := range testUsers {
		keys[u] = turn.GenerateAuthKey(u, testRealm, p)
	}
	relay := func() turn.RelayAddressGenerator {
		return &captureRelays{
			RelayAddressGeneratorStatic: turn.RelayAddressGeneratorStatic{RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1"},
			c:                           tt.relayed,
		}
	}
	permit := func(_ net.Addr, peer net.IP) bool { return !peer.Equal(tt.deniedPeer) }
	tt.server, err = turn.NewServer(turn.ServerConfig{
		Realm: testRealm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			k, ok := keys[ra.Username]
			return ra.Username, k, ok
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: &capturePacketConn{PacketConn: udp, c: tt.wire}, RelayAddressGenerator: relay(), PermissionHandler: permit,
		}},
		ListenerConfigs: []turn.ListenerConfig{
			{Listener: &captureListener{Listener: tcp, c: tt.wire}, RelayAddressGenerator: relay(), PermissionHandler: permit},
			{Listener: tlsLn, RelayAddressGenerator: relay(), PermissionHandler: permit},
		},
		LoggerFactory: logx.Pion(quietLog),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tt.server.Close() })
	return tt
}

var quietLog = slog.New(slog.DiscardHandler)

// addr is the server address for a transport.
func (tt *testTURN) addr(transport string) string {
	switch transport {
	case "tcp":
		return tt.tcp
	case "tls":
		return tt.tls
	}
	return tt.udp
}

// allocate is AllocateRelay on this server as user, closed at cleanup.
func (tt *testTURN) allocate(t *testing.T, transport, user string) *Relay {
	t.Helper()
	r, err := AllocateRelay(t.Context(), tt.addr(transport), transport, user, testUsers[user], testRealm,
		WithTLSConfig(tt.clientTLS), WithLogger(quietLog))
	if err != nil {
		t.Fatalf("AllocateRelay(%s, %s): %v", transport, user, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// waitAllocations waits until the server holds n allocations.
func (tt *testTURN) waitAllocations(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for tt.server.AllocationCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("server holds %d allocations, want %d", tt.server.AllocationCount(), n)
		}
		<-tick.C
	}
}

// capture accumulates bytes from several sockets.
type capture struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	packets int
}

func (c *capture) record(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	c.buf.WriteByte(0) // no match across two packets
	c.packets++
}

func (c *capture) contains(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Contains(c.buf.Bytes(), []byte(s))
}

func (c *capture) stats() (bytes, packets int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Len() - c.packets, c.packets
}

func (c *capture) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	c.packets = 0
}

type capturePacketConn struct {
	net.PacketConn
	c *capture
}

func (p *capturePacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := p.PacketConn.ReadFrom(b)
	if n > 0 {
		p.c.record(b[:n])
	}
	return n, addr, err
}

func (p *capturePacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	p.c.record(b)
	return p.PacketConn.WriteTo(b, addr)
}

type captureListener struct {
	net.Listener
	c *capture
}

func (l *captureListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &captureConn{Conn: conn, c: l.c}, nil
}

type captureConn struct {
	net.Conn
	c *capture
}

func (cc *captureConn) Read(b []byte) (int, error) {
	n, err := cc.Conn.Read(b)
	if n > 0 {
		cc.c.record(b[:n])
	}
	return n, err
}

func (cc *captureConn) Write(b []byte) (int, error) {
	cc.c.record(b)
	return cc.Conn.Write(b)
}

// captureRelays hands out relay sockets that record what they forward.
type captureRelays struct {
	turn.RelayAddressGeneratorStatic
	c *capture
}

func (g *captureRelays) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.RelayAddressGeneratorStatic.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	return &capturePacketConn{PacketConn: conn, c: g.c}, addr, nil
}

// selfSigned is a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "turn.edgeway.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
