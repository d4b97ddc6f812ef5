// Package bench holds the simulated phone (onboard with an activation code,
// register over TLS through the edge with a bearer token, refresh and
// re-register, un-register) that `edgeway phone` runs and that the load
// generators and end-to-end tests build on. A phone may know several edges
// (an ordered list, or _collab-edge._tls SRV records: srv.go); it keeps
// its flow alive with CRLF pings and, when the flow fails, re-registers
// through the next edge with the same tokens (RFC 5626 §4.4.1, §4.5:
// flow.go).
package bench
