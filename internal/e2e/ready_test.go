package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/internal/testenv"
)

// heldProxy is a TCP proxy to target that holds every connection it
// accepts, unanswered, until release: a core whose MRA port is reachable
// but has not answered yet. Its goroutines end when the test does.
type heldProxy struct {
	ln      net.Listener
	target  string
	release chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
}

func startHeldProxy(t *testing.T, target string) *heldProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &heldProxy{ln: ln, target: target, release: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.track(c)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		p.Release()
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *heldProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// Release lets held and later connections through to the target.
func (p *heldProxy) Release() { p.once.Do(func() { close(p.release) }) }

func (p *heldProxy) serve(c net.Conn) {
	defer c.Close()
	<-p.release
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.track(up)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		up.Close()
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	<-done
}

// Issue 12 §2: an edge is not ready before a health check has found one of
// its cores up — a core counts as up until its checks fail, which must not
// make an edge that has reached none look ready — and is ready once one
// has. Here the core's MRA port answers nothing until the proxy in front
// of it lets the edge's connections through.
func TestEdgeNotReadyBeforeACoreIsChecked(t *testing.T) {
	var proxy *heldProxy
	env := testenv.Start(t, testenv.Options{Configure: func(l *quickstart.Layout) {
		proxy = startHeldProxy(t, l.Edge.CoreMRA)
		l.Edge.CoreMRA = proxy.ln.Addr().String()
		// The check after the release comes soon (the first runs at once).
		l.Edge.CoreHealthInterval, l.Edge.CoreHealthTimeout = 300*time.Millisecond, time.Second
	}})
	u := "http://" + env.Info.EdgeOps + "/readyz"
	code, body := get(t, u)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no core health-checked yet") {
		t.Fatalf("edge /readyz before any core answered a health check: %d %q, want 503 no core health-checked yet", code, body)
	}
	if c := env.Edge.Cores(); len(c) != 1 || !c[0].Up || c[0].Passed != 0 {
		t.Fatalf("cores %+v, want one, up (not failed yet) and never checked", c)
	}
	proxy.Release()
	waitUntil(t, "edge /readyz 200 once its core answered a health check", func() bool {
		code, _ := get(t, u)
		return code == http.StatusOK
	})
}
