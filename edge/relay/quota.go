package relay

// The per-device quota (486) and the relay's capacity (508).

import (
	"net"
)

// quota is the pion QuotaHandler (false → 486), called once the Allocate
// is authenticated: the per-device limit, then, when the relay is full and
// turn.alternate_servers are set, a redirect whose 486 the socket turns
// into 300 Try Alternate (alternate.go).
func (t *Server) quota(userID, _ string, src net.Addr) bool {
	device, _ := splitUserID(userID)
	t.mu.Lock()
	n := t.perDevice[device]
	t.mu.Unlock()
	if n >= t.cfg.MaxAllocationsPerDevice {
		if src != nil {
			t.redirects.Remove(src.String()) // this 486 stays a 486
		}
		t.log.Debug("TURN allocation refused: device quota", "device", device, "remote", src, "allocations", n)
		t.quotaHits.Add(1)
		return false
	}
	return !t.redirect(src)
}

// reserve counts a new relay socket of device against both limits (pion → 508).
func (t *Server) reserve(device string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return errTURNClosed
	case t.isDraining():
		t.log.Info("TURN allocation refused: the edge is draining", "device", device)
		t.drainHits.Add(1)
		return errTURNDraining
	case t.total >= t.cfg.MaxAllocations:
		t.log.Warn("TURN allocation refused: turn.max_allocations reached", "device", device, "allocations", t.total)
		t.atCap.Add(1)
		return errTURNCapacity
	case device != "" && t.perDevice[device] >= t.cfg.MaxAllocationsPerDevice:
		t.quotaHits.Add(1)
		return errTURNDeviceQuota
	}
	t.total++
	if device != "" {
		t.perDevice[device]++
	}
	return nil
}

func (t *Server) unreserve(device string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.total--
	if device == "" {
		return
	}
	if n := t.perDevice[device] - 1; n > 0 {
		t.perDevice[device] = n
	} else {
		delete(t.perDevice, device)
	}
}

// full reports whether the relay holds turn.max_allocations.
func (t *Server) full() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total >= t.cfg.MaxAllocations
}
