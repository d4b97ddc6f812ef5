package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/edgeway/edgeway/core/policy"
	"github.com/edgeway/edgeway/internal/store"
)

// file is the configured bundle of a trust store ("" if none).
func (s *Trust) file(name string) (string, error) {
	switch name {
	case policy.TrustTomcat:
		return s.files.TomcatTrust, nil
	case policy.TrustPhoneEdge:
		return s.files.PhoneEdgeTrust, nil
	}
	return "", fmt.Errorf("unknown trust store %q: want %s or %s", name, policy.TrustTomcat, policy.TrustPhoneEdge)
}

// Bundle returns a trust store as a PEM bundle: the configured file's
// certificates followed by those uploaded through the admin API.
func (s *Trust) Bundle(ctx context.Context, name string) ([]byte, error) {
	path, err := s.file(name)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("trust store %s: %w", name, err)
		}
		buf.Write(b)
	}
	uploaded, err := s.st.ListTrustCerts(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, c := range uploaded {
		buf.Write(c.PEM)
	}
	return buf.Bytes(), nil
}

// Reload applies uploaded tomcat-trust certificates to the TLS
// listeners (S-11: tomcat-trust must verify the Expressway-C certificate).
func (s *Trust) Reload(ctx context.Context) error {
	uploaded, err := s.st.ListTrustCerts(ctx, policy.TrustTomcat)
	if err != nil {
		return err
	}
	certs := make([]*x509.Certificate, 0, len(uploaded))
	for _, c := range uploaded {
		b, _ := pem.Decode(c.PEM)
		if b == nil {
			continue
		}
		if cert, err := x509.ParseCertificate(b.Bytes); err == nil {
			certs = append(certs, cert)
		}
	}
	return s.trust.SetExtra(certs)
}

// TrustCertView is a trust-store certificate as the admin API shows it.
type TrustCertView struct {
	Store       string    `json:"store"`
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	NotAfter    time.Time `json:"not_after"`
	Fingerprint string    `json:"fingerprint_sha256"`
	Source      string    `json:"source"` // "file" or "uploaded"
}

func certView(store, source string, c *x509.Certificate) TrustCertView {
	sum := sha256.Sum256(c.Raw)
	return TrustCertView{Store: store, Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotAfter: c.NotAfter,
		Fingerprint: hex.EncodeToString(sum[:]), Source: source}
}

func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bad certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return out, nil
}

// fitsTrustStore refuses what cannot serve in a store: an expired
// certificate verifies nothing, and phone-edge-trust holds the CA that
// roots the core's Tomcat certificate (S-8), not a leaf. tomcat-trust may
// hold the Expressway-C's own certificate (S-11). One refused certificate
// refuses the whole upload: nothing is stored.
func fitsTrustStore(store string, c *x509.Certificate, now time.Time) error {
	rule := "S-11"
	if store == policy.TrustPhoneEdge {
		rule = "S-8"
	}
	if !now.Before(c.NotAfter) {
		return fmt.Errorf("%s: the certificate %q expired on %s: an expired certificate verifies nothing in %s", rule, c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339), store)
	}
	if store == policy.TrustPhoneEdge && !(c.BasicConstraintsValid && c.IsCA) {
		return fmt.Errorf("S-8: phone-edge-trust holds the CA certificate that roots the core's Tomcat certificate; %q is not a CA certificate", c.Subject.String())
	}
	return nil
}

func (s *Trust) apiTrustList(w http.ResponseWriter, r *http.Request) {
	names := []string{policy.TrustTomcat, policy.TrustPhoneEdge}
	if q := r.URL.Query().Get("store"); q != "" {
		if _, err := s.file(q); err != nil {
			apiError(w, 400, err)
			return
		}
		names = []string{q}
	}
	out := []TrustCertView{}
	for _, name := range names {
		path, _ := s.file(name)
		if path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				apiError(w, 500, err)
				return
			}
			certs, _ := parsePEMCerts(b)
			for _, c := range certs {
				out = append(out, certView(name, "file", c))
			}
		}
		uploaded, err := s.st.ListTrustCerts(r.Context(), name)
		if err != nil {
			apiError(w, 500, err)
			return
		}
		for _, u := range uploaded {
			certs, err := parsePEMCerts(u.PEM)
			if err == nil {
				out = append(out, certView(name, "uploaded", certs[0]))
			}
		}
	}
	writeJSON(w, 200, out)
}

// apiTrustUpload adds the PEM certificates in the body to a trust store:
// phone-edge-trust (S-8) or tomcat-trust (S-11).
func (s *Trust) apiTrustUpload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("store")
	if _, err := s.file(name); err != nil {
		apiError(w, 400, err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		apiError(w, 400, err)
		return
	}
	certs, err := parsePEMCerts(body)
	if err != nil {
		apiError(w, 400, err)
		return
	}
	for _, c := range certs {
		if err := fitsTrustStore(name, c, s.now()); err != nil {
			apiError(w, 400, err)
			return
		}
	}
	var added []TrustCertView
	for _, c := range certs {
		v := certView(name, "uploaded", c)
		err := s.st.PutTrustCert(r.Context(), store.TrustCert{Store: name, Fingerprint: v.Fingerprint,
			PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), Subject: v.Subject, Issuer: v.Issuer,
			NotAfter: c.NotAfter, AddedAt: s.now()})
		if errors.Is(err, store.ErrConflict) {
			continue // already there: uploading twice changes nothing
		} else if err != nil {
			apiError(w, 500, err)
			return
		}
		s.audit(r, "trust.upload", "store=%s subject=%q fingerprint=%s", name, v.Subject, v.Fingerprint)
		added = append(added, v)
	}
	if err := s.Reload(r.Context()); err != nil {
		apiError(w, 500, err)
		return
	}
	writeJSON(w, 201, added)
}

func (s *Trust) apiTrustDelete(w http.ResponseWriter, r *http.Request) {
	name, fp := r.PathValue("store"), r.PathValue("fingerprint")
	if _, err := s.file(name); err != nil {
		apiError(w, 400, err)
		return
	}
	if err := s.st.DeleteTrustCert(r.Context(), name, fp); err != nil {
		apiError(w, storeStatus(err), fmt.Errorf("%w (only uploaded certificates can be deleted; the configured file is the operator's)", err))
		return
	}
	s.audit(r, "trust.delete", "store=%s fingerprint=%s", name, fp)
	if err := s.Reload(r.Context()); err != nil {
		apiError(w, 500, err)
		return
	}
	// Connections admitted under the deleted CA close now, as new
	// handshakes would fail (S-11).
	s.gate.Sweep(r.Context())
	w.WriteHeader(http.StatusNoContent)
}
