// Package policy holds the device and cluster rules every core component
// consults: which device models may use SIP OAuth (S-5), what a security
// profile needs for it (S-15, S-16), the enterprise parameters that switch
// the refresh login flow (S-10), implicit or explicit tokens (S-9) and the
// cluster SIP OAuth mode (S-13), and the refusals naming each rule.
//
// It imports nothing of core; core/oauth, core/registrar and core/admin
// call it, each through the small store interface it declares.
package policy
