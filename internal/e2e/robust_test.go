package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// closedWithin reports whether the server closes conn within d (reading
// whatever it sends first).
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

// Acceptance 9: malformed SIP, an oversized message, a TCP client that
// never starts TLS and a TLS client that never speaks neither crash nor
// stall either tier; everyone else keeps being served.
func TestHostileClientsDoNotStallTiers(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		l.Core.HandshakeTimeout, l.Edge.HandshakeTimeout = 300*time.Millisecond, 300*time.Millisecond
		l.Core.SIPIdleTimeout, l.Edge.SIPIdleTimeout = time.Second, time.Second
	}})
	ctx := context.Background()
	targets := map[string]string{"edge sip": env.Info.EdgeSIP, "core phone-oauth": env.Info.CorePhoneOAuth}
	tlsConf := &tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	// Open the hostile connections first and keep them open while a phone
	// onboards and registers. Every TLS port drops a TCP client that never
	// starts TLS; the SIP ports also drop a TLS client that never speaks.
	var silentTCP, silentTLS []net.Conn
	for _, addr := range []string{strings.TrimPrefix(env.Info.CoreHTTPS, "https://"), strings.TrimPrefix(env.Info.EdgeHTTPS, "https://"), env.Info.CoreMRA} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		silentTCP = append(silentTCP, c)
	}
	edgeCert, err := tls.LoadX509KeyPair(env.Layout.PKI.EdgeMTLSCert, env.Layout.PKI.EdgeMTLSKey)
	if err != nil {
		t.Fatal(err)
	}
	mraConf := tlsConf.Clone()
	mraConf.Certificates = []tls.Certificate{edgeCert}
	mc, err := tls.Dial("tcp", env.Info.CoreMRA, mraConf)
	if err != nil {
		t.Fatal(err)
	}
	silentTLS = append(silentTLS, mc)
	for name, addr := range targets {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		silentTCP = append(silentTCP, c)
		tc, err := tls.Dial("tcp", addr, tlsConf)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		silentTLS = append(silentTLS, tc)
	}
	ph := env.Phone(phoneA, true)
	if _, err := ph.Onboard(ctx, env.Devices[phoneA].ActivationCode); err != nil {
		t.Fatal(err)
	}
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register beside silent clients: %v %v", res, err)
	}
	for i, c := range silentTCP {
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("a TCP client that never starts TLS was not dropped (handshake deadline) [%d]", i)
		}
		c.Close()
	}
	for i, c := range silentTLS {
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("a TLS client that never speaks was not dropped (read deadline) [%d]", i)
		}
		c.Close()
	}

	hostile := map[string]string{
		"garbage":          "\x16\x03\x01 this is not SIP at all\r\n\r\n",
		"bad start line":   "REGISTER\r\n\r\n",
		"bad header":       "REGISTER sip:edgeway.test SIP/2.0\r\nVia SIP/2.0/TLS x\r\nContent-Length: abc\r\n\r\n",
		"lying length":     "REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS x;branch=z9hG4bK1\r\nContent-Length: 999999999\r\n\r\nshort",
		"oversized header": "REGISTER sip:edgeway.test SIP/2.0\r\nVia: SIP/2.0/TLS x;branch=z9hG4bK1\r\nX-Pad: " + strings.Repeat("A", 70_000) + "\r\n\r\n",
	}
	for name, addr := range targets {
		for what, payload := range hostile {
			c, err := tls.Dial("tcp", addr, tlsConf)
			if err != nil {
				t.Fatalf("%s %s: %v", name, what, err)
			}
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.Write([]byte(payload))
			if !closedWithin(c, 5*time.Second) {
				t.Errorf("%s: %s left the connection hanging", name, what)
			}
			c.Close()
		}
	}

	// A truncated token request gets a clear error, not a hang.
	req, _ := http.NewRequest(http.MethodPost, env.Info.EdgeHTTPS+"/oauth2/token", strings.NewReader("grant_type=refresh_tok"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.ContentLength = 100 // promises more than it sends
	resp, err := env.HTTPClient().Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("truncated token request: HTTP %d", resp.StatusCode)
		}
	}

	// Both tiers still serve: the phone re-registers, a second phone onboards.
	if res, err := ph.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("register after hostile clients: %v %v", res, err)
	}
	phB := env.Phone(phoneB, true)
	if _, err := phB.Onboard(ctx, env.Devices[phoneB].ActivationCode); err != nil {
		t.Fatal(err)
	}
	if res, err := phB.Register(ctx, 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("second phone after hostile clients: %v %v", res, err)
	}
	if n := len(env.Registrations(t)); n != 2 {
		t.Fatalf("bindings = %d, want 2", n)
	}
}
