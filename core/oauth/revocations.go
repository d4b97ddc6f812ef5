package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/edgeway/edgeway/core/admission"
)

// RevokedFamiliesPath lists revoked refresh-token families to edges, so
// the TURN credentials an edge handed out with a family's tokens die with
// it (issue 9, item 7; R-2; the refresh-token replay rule). Edges only:
// the request must come over mutual TLS with a certificate that matches a
// configured Expressway-C entry (S-12), like the OAuth traffic an edge
// forwards. The answer is edge.RevokedFamilies.
const RevokedFamiliesPath = "/internal/v1/revoked-families"

// revokedFamiliesPage bounds one answer; the edge asks again for More.
const revokedFamiliesPage = 1000

// revokedFamiliesKeep is how long after its revocation a family matters to
// an edge: a TURN credential never outlives the access token it came
// with, so the access-token lifetime, and a margin for clocks.
func (s *Server) revokedFamiliesKeep() time.Duration { return s.ttl.Access() + 5*time.Minute }

// HandleRevokedFamilies is GET RevokedFamiliesPath?since=<Unix ns>: the
// families revoked after since (at most revokedFamiliesKeep ago; without
// since, all of those), oldest first.
func (s *Server) HandleRevokedFamilies(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		apiError(w, http.StatusForbidden, errors.New("S-12: edges only: present an Expressway-C certificate"))
		return
	}
	if _, _, err := s.edges.Entry(r.Context(), r.TLS.PeerCertificates[0]); err != nil {
		if errors.Is(err, admission.ErrEdgeNotConfigured) {
			apiError(w, http.StatusForbidden, err)
			return
		}
		s.log.Error("checking edge certificate", "err", err)
		apiError(w, http.StatusServiceUnavailable, errors.New("try again"))
		return
	}
	keep := s.revokedFamiliesKeep()
	since := s.now().Add(-keep).UnixNano()
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			apiError(w, http.StatusBadRequest, fmt.Errorf("since %q: want Unix nanoseconds", v))
			return
		}
		since = max(since, n)
	}
	rows, err := s.st.RevokedFamilies(r.Context(), time.Unix(0, since), revokedFamiliesPage+1)
	if err != nil {
		s.log.Error("listing revoked families", "err", err)
		apiError(w, http.StatusServiceUnavailable, errors.New("try again"))
		return
	}
	more := len(rows) > revokedFamiliesPage
	if more {
		rows = rows[:revokedFamiliesPage]
	}
	ids := make([]string, len(rows))
	cursor := since
	for i, f := range rows {
		ids[i] = f.ID
		cursor = f.RevokedAt.UnixNano()
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"families": ids, "cursor": strconv.FormatInt(cursor, 10), "more": more,
		"keep_seconds": int64(keep / time.Second),
	})
}
