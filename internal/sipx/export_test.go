package sipx

import "github.com/emiago/sipgo/sip"

// SetBefore installs a hook that runs ahead of every handler a valid
// request reaches: tests inject panics with it.
func (g *Guard) SetBefore(f func(*sip.Request)) { g.before = f }
