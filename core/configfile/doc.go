// Package configfile serves device configuration files on the config port
// (6971, the TFTP role over HTTPS): GET /<device>.cnf.xml only to a bearer
// token of that device, GET /phone-edge-trust.pem (S-8) to any valid token
// of a device that exists (S-2, S-4, S-16: no TFTP encrypted config with
// SIP OAuth; the file is protected by HTTPS and the token instead). Paths
// are matched exactly, never cleaned or decoded (ConfigRequestFile,
// fuzzed by FuzzConfigPath). Through an admitted edge (S-12) the file
// points the phone at the edge (MRA mode, S-20); on premises at this
// node's Phone OAuth port (S-11).
//
// core.Server builds one Server per Serve and mounts its Handler on the
// config listener.
package configfile
