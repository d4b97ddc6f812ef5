package relay

// The drain (edge/drain.go, issue 12 §2): once the edge's drain flag is
// set, every new Allocate is refused 508 (reserve, quota.go), or
// redirected with 300 Try Alternate when alternates are configured
// (alternate.go); live allocations keep refreshing and relaying.

// isDraining reports whether the edge drains: no new allocations.
func (t *Server) isDraining() bool { return t.draining != nil && t.draining.Load() }

// DrainRefused counts the allocations refused (508) because the edge drains.
func (t *Server) DrainRefused() uint64 { return t.drainHits.Load() }
