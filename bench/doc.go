// Package bench holds the simulated phone (onboard with an activation code,
// register over TLS through the edge with a bearer token, refresh and
// re-register, un-register) that `edgeway phone` runs and that the load
// generators and end-to-end tests build on.
package bench
