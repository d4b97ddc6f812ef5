package media

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/replaydetector"
)

// ReplayWindow is how many SRTP packets behind the newest one Unprotect
// still accepts (RFC 3711 §3.3.2); older or repeated ones are ErrReplay.
// 1024 packets are about 20 s of 20 ms audio.
const ReplayWindow = 1024

// Errors from Session; compare with errors.Is.
var (
	// ErrAuth: the packet's authentication tag does not verify — a wrong
	// key, or a packet altered on the way. Its payload must not be played.
	ErrAuth = errors.New("media: SRTP authentication failed")
	// ErrReplay: the packet's index was already accepted, or is older than
	// the replay window.
	ErrReplay = errors.New("media: SRTP packet replayed or outside the replay window")
	// ErrMalformed: not an RTP packet, or too short to carry a tag.
	ErrMalformed = errors.New("media: malformed SRTP packet")
	// ErrSessionKeys: the two Crypto values cannot form a session.
	ErrSessionKeys = errors.New("media: unusable SRTP session keys")
)

// Session is one call leg's SRTP state: it protects what we send with our
// own key (local) and unprotects what we receive with the peer's (remote).
// Protect and Unprotect are safe to call from different goroutines (each
// direction has its own lock; pion's contexts are not concurrency-safe).
type Session struct {
	suite string

	encMu sync.Mutex
	enc   *srtp.Context // guarded by encMu

	decMu    sync.Mutex
	dec      *srtp.Context // guarded by decMu
	replayed bool          // guarded by decMu; set by replayWatch during DecryptRTP
}

// NewSession builds the two SRTP contexts (pion/srtp/v3). local and remote
// must use the same suite and must not share a key: SDES gives each
// direction its own master key (RFC 4568 §6.1), and reusing one with the
// same SSRC would reuse the keystream.
func NewSession(local, remote Crypto) (*Session, error) {
	ls, err := local.validate()
	if err != nil {
		return nil, fmt.Errorf("%w: local: %w", ErrSessionKeys, err)
	}
	if _, err := remote.validate(); err != nil {
		return nil, fmt.Errorf("%w: remote: %w", ErrSessionKeys, err)
	}
	if local.Suite != remote.Suite {
		return nil, fmt.Errorf("%w: local suite %s, remote %s", ErrSessionKeys, local.Suite, remote.Suite)
	}
	if bytes.Equal(local.Key, remote.Key) {
		return nil, fmt.Errorf("%w: both directions use the same master key", ErrSessionKeys)
	}
	s := &Session{suite: local.Suite}
	s.enc, err = srtp.CreateContext(local.Key[:ls.keyLen], local.Key[ls.keyLen:], ls.profile)
	if err != nil {
		return nil, fmt.Errorf("media: SRTP context for sending: %w", err)
	}
	watch := srtp.SRTPReplayDetectorFactory(func() replaydetector.ReplayDetector {
		return newReplayWatch(&s.replayed)
	})
	s.dec, err = srtp.CreateContext(remote.Key[:ls.keyLen], remote.Key[ls.keyLen:], ls.profile, watch)
	if err != nil {
		return nil, fmt.Errorf("media: SRTP context for receiving: %w", err)
	}
	return s, nil
}

// maxSRTPIndex is the largest 48-bit SRTP packet index (ROC<<16 | SEQ).
const maxSRTPIndex = 1<<48 - 1

// Suite is the negotiated SDES suite.
func (s *Session) Suite() string { return s.suite }

// Protect encrypts and authenticates one RTP packet, returning a new slice.
func (s *Session) Protect(rtpPacket []byte) ([]byte, error) {
	s.encMu.Lock()
	defer s.encMu.Unlock()
	out, err := s.enc.EncryptRTP(nil, rtpPacket, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return out, nil
}

// Unprotect verifies and decrypts one SRTP packet, returning the RTP
// packet in a new slice; the input is left as it was. A packet whose tag
// does not verify is ErrAuth, a repeated or too old one ErrReplay; neither
// yields any plaintext.
func (s *Session) Unprotect(srtpPacket []byte) ([]byte, error) {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	s.replayed = false
	out, err := s.dec.DecryptRTP(nil, srtpPacket, nil)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		return nil, fmt.Errorf("%w: %w", ErrAuth, err)
	case s.replayed:
		return nil, fmt.Errorf("%w: %w", ErrReplay, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
}

// replayWatch wraps pion's sliding-window detector to tell Unprotect that a
// refusal came from the replay check: pion reports it with an unexported
// error type.
type replayWatch struct {
	inner    replaydetector.ReplayDetector
	rejected *bool // Session.replayed, under Session.decMu
}

func newReplayWatch(rejected *bool) replaydetector.ReplayDetector {
	inner := replaydetector.New(ReplayWindow, maxSRTPIndex)
	w := replayWatch{inner: inner, rejected: rejected}
	if ca, ok := inner.(replaydetector.CheckAccepter); ok {
		return &replayWatchCA{replayWatch: w, ca: ca}
	}
	return &w
}

func (w *replayWatch) Check(seq uint64) (func() bool, bool) {
	accept, ok := w.inner.Check(seq)
	if !ok {
		*w.rejected = true
	}
	return accept, ok
}

// replayWatchCA is replayWatch for detectors with the two-phase
// CheckAccepter interface, which pion prefers when present.
type replayWatchCA struct {
	replayWatch
	ca replaydetector.CheckAccepter
}

func (w *replayWatchCA) CheckSeq(seq uint64) replaydetector.Token {
	tok := w.ca.CheckSeq(seq)
	if !tok.Passed() {
		*w.rejected = true
	}
	return tok
}

func (w *replayWatchCA) Accept(tok replaydetector.Token) bool { return w.ca.Accept(tok) }
