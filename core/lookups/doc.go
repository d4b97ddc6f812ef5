// Package lookups caches the configuration every REGISTER reads:
// Expressway-C entries (S-12), devices, security profiles (S-5, S-15) and
// enterprise parameters (S-9). The admin API purges it on every write;
// the change feed (core/feed.go) purges it on a change made through
// another node. core/registrar and core/admission read through it.
package lookups
