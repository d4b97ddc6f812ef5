package testenv

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/mtls"
)

// Chapter is what the chapter's task flow starts from, beyond Bare: the
// edge's mutual-TLS certificate comes from the Expressway's own CA, which
// the core does not trust yet (S-11: tomcat-trust must verify it), and the
// core serves no Phone-Edge-Trust (S-8 is the administrator's upload).
type Chapter struct {
	// EdgeName is the one name the edge's certificate presents (S-12).
	EdgeName string
	// ExpresswayCA is the PEM file of the Expressway's CA.
	ExpresswayCA string
	// TomcatCA is the PEM file of the CA that roots the core's HTTPS
	// certificate: what Phone-Edge-Trust must hold (S-8).
	TomcatCA string
}

// StartChapter starts a bare core and edge as the chapter's task flow
// finds them, the edge presenting edgeName and retrying the core every
// 100 ms so that the administrator's fixes take hold at once.
func StartChapter(t *testing.T, edgeName string) (*Env, *Chapter) {
	t.Helper()
	ch := &Chapter{EdgeName: edgeName}
	env := Start(t, Options{Bare: true, Configure: func(l *quickstart.Layout) {
		expCA, err := mtls.NewCA("Expressway CA", 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := expCA.Issue(mtls.CertRequest{CommonName: edgeName, Names: []string{edgeName}, Client: true, Server: true})
		if err != nil {
			t.Fatal(err)
		}
		ch.ExpresswayCA = filepath.Join(l.Dir, "expressway-ca.pem")
		l.Edge.TLS.MTLSCert, l.Edge.TLS.MTLSKey = filepath.Join(l.Dir, "expc.pem"), filepath.Join(l.Dir, "expc-key.pem")
		for path, b := range map[string][]byte{ch.ExpresswayCA: expCA.CertPEM, l.Edge.TLS.MTLSCert: certPEM, l.Edge.TLS.MTLSKey: keyPEM} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		ch.TomcatCA = l.PKI.CACert
		l.Core.TLS.PhoneEdgeTrust = "" // S-8 is the administrator's upload
		l.Edge.CoreRetry = 100 * time.Millisecond
	}})
	return env, ch
}

// HoldsTomcatCA says whether a PEM bundle (Phone-Edge-Trust as a phone
// downloads it) holds the CA that roots the core's Tomcat certificate (S-8).
func (ch *Chapter) HoldsTomcatCA(bundle []byte) bool {
	caPEM, err := os.ReadFile(ch.TomcatCA)
	if err != nil {
		return false
	}
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return false
	}
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && bytes.Equal(c.Raw, blk.Bytes) {
			return true
		}
	}
}
