package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/testenv"
	"github.com/edgeway/edgeway/mtls"
)

// optionsOver sends one OPTIONS on an established TLS connection and
// returns the status line of the answer, or the error that ended the
// connection first.
func optionsOver(conn *tls.Conn, target string) (string, error) {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TLS probe.invalid;branch=z9hG4bK-%d\r\nMax-Forwards: 70\r\n"+
		"From: <sip:probe@probe.invalid>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: probe-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		target, time.Now().UnixNano(), target, time.Now().UnixNano())
	if _, err := conn.Write([]byte(msg)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

func certFrom(t *testing.T, ca *mtls.CA, names ...string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(mtls.CertRequest{CommonName: names[0], Names: names, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// S-11/S-12: the MRA port admits only a client certificate that chains to
// tomcat-trust AND names a configured Expressway-C; everything else is
// refused in the handshake, before any SIP is read. 5090 asks for no
// client certificate. "Find" shows what edges presented.
func TestMRAPortAdmission(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	devCA, err := mtls.LoadCA(env.Layout.PKI.CACert, env.Layout.PKI.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := mtls.NewCA("Somebody Else's CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	edgeCert, err := tls.LoadX509KeyPair(env.Layout.PKI.EdgeMTLSCert, env.Layout.PKI.EdgeMTLSKey)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(addr string, certs []tls.Certificate) (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", Certificates: certs, MinVersion: tls.VersionTLS12})
	}
	cases := []struct {
		name  string
		certs []tls.Certificate
		admit bool
	}{
		{"configured Expressway-C certificate", []tls.Certificate{edgeCert}, true},
		{"trusted CA, name matches no entry", []tls.Certificate{certFrom(t, devCA, "rogue.edgeway.test")}, false},
		{"trusted CA, suffix trick", []tls.Certificate{certFrom(t, devCA, "expc.edgeway.test.evil.example")}, false},
		{"untrusted CA, configured name", []tls.Certificate{certFrom(t, otherCA, "expc.edgeway.test")}, false},
		{"untrusted CA, its own name", []tls.Certificate{certFrom(t, otherCA, "untrusted-only.edgeway.test")}, false},
		{"no client certificate", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := dial(env.Info.CoreMRA, tc.certs)
			var status string
			if err == nil {
				// TLS 1.3 finishes the client side before the server has
				// judged the certificate; the refusal arrives as an alert.
				status, err = optionsOver(conn, "edgeway.test")
				conn.Close()
			}
			if tc.admit && (err != nil || !strings.HasPrefix(status, "SIP/2.0 200")) {
				t.Fatalf("admitted edge: %q %v", status, err)
			}
			if !tc.admit && (err == nil || strings.HasPrefix(status, "SIP/2.0")) {
				t.Fatalf("refused certificate got a SIP answer %q (err %v)", status, err)
			}
		})
	}

	t.Run("5090 asks for no client certificate", func(t *testing.T) {
		asked := false
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", env.Info.CorePhoneOAuth, &tls.Config{
			RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked = true
				return &tls.Certificate{}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		status, err := optionsOver(conn, "edgeway.test")
		if err != nil || !strings.HasPrefix(status, "SIP/2.0 200") || asked {
			t.Fatalf("5090: status %q err %v, client certificate requested: %v", status, err, asked)
		}
	})

	t.Run("Find lists presented names", func(t *testing.T) {
		code, body := env.Admin(t, http.MethodGet, "/api/v1/expressway/find", nil)
		if code != 200 {
			t.Fatalf("find: %d %s", code, body)
		}
		got := map[string]bool{}
		for _, f := range decode[[]core.FoundName](t, body) {
			got[f.Name] = f.Configured
		}
		if conf, ok := got["expc.edgeway.test"]; !ok || !conf {
			t.Errorf("find: expc.edgeway.test missing or not configured: %v", got)
		}
		if conf, ok := got["rogue.edgeway.test"]; !ok || conf {
			t.Errorf("find: rogue.edgeway.test missing or shown configured: %v", got)
		}
		// Only chains that verify against tomcat-trust are worth listing:
		// strangers must not be able to write into Find.
		if _, ok := got["untrusted-only.edgeway.test"]; ok {
			t.Errorf("find lists a name from an untrusted chain: %v", got)
		}
	})
}

// Acceptance 10: every TLS listener speaks TLS 1.2 and 1.3 and nothing older.
func TestTLSVersions(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	edgeCert, err := tls.LoadX509KeyPair(env.Layout.PKI.EdgeMTLSCert, env.Layout.PKI.EdgeMTLSKey)
	if err != nil {
		t.Fatal(err)
	}
	trim := func(u string) string { return strings.TrimPrefix(u, "https://") }
	listeners := map[string]string{
		"edge https": trim(env.Info.EdgeHTTPS), "edge sip": env.Info.EdgeSIP,
		"core https": trim(env.Info.CoreHTTPS), "core phone-oauth": env.Info.CorePhoneOAuth, "core mra": env.Info.CoreMRA,
	}
	for name, addr := range listeners {
		for _, v := range []struct {
			ver uint16
			ok  bool
		}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
			conf := &tls.Config{RootCAs: env.CA, ServerName: "127.0.0.1", MinVersion: v.ver, MaxVersion: v.ver, Certificates: []tls.Certificate{edgeCert}}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
			if err == nil {
				conn.Close()
			}
			if (err == nil) != v.ok {
				t.Errorf("%s with %s: err %v, want ok=%v", name, tls.VersionName(v.ver), err, v.ok)
			}
		}
	}
}
