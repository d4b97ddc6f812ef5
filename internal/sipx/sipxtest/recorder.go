// Package sipxtest holds test doubles for SIP handlers: a server
// transaction that records what a handler answers, so handler logic can
// be driven without sockets (fuzz targets, unit tests).
package sipxtest

import (
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Recorder is a sip.ServerTransaction that keeps every response sent on
// it. The zero value is not ready; use NewRecorder.
type Recorder struct {
	mu        sync.Mutex
	responses []*sip.Response
	done      chan struct{}
	once      sync.Once
}

// NewRecorder returns an open Recorder.
func NewRecorder() *Recorder { return &Recorder{done: make(chan struct{})} }

var _ sip.ServerTransaction = (*Recorder)(nil)

// Respond records res.
func (r *Recorder) Respond(res *sip.Response) error {
	r.mu.Lock()
	r.responses = append(r.responses, res)
	r.mu.Unlock()
	return nil
}

// Responses returns what was sent, in order.
func (r *Recorder) Responses() []*sip.Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*sip.Response(nil), r.responses...)
}

// Finals returns the final (non-1xx) responses sent.
func (r *Recorder) Finals() []*sip.Response {
	var out []*sip.Response
	for _, res := range r.Responses() {
		if !res.IsProvisional() {
			out = append(out, res)
		}
	}
	return out
}

func (r *Recorder) Terminate()                         { r.once.Do(func() { close(r.done) }) }
func (r *Recorder) OnTerminate(sip.FnTxTerminate) bool { return true }
func (r *Recorder) Done() <-chan struct{}              { return r.done }
func (r *Recorder) Err() error                         { return nil }
func (r *Recorder) Acks() <-chan *sip.Request          { return nil }
func (r *Recorder) OnCancel(sip.FnTxCancel) bool       { return true }
