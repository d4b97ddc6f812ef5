// Package core is the Unified CM role of Edgeway, assembled from its
// components: Server builds them from a Config and a store and serves
// them on four listeners. Each component is a package with its own small
// Config, its collaborators passed in and the store methods it uses
// declared as its own interface:
//
//   - core/oauth: the OAuth authorization server — activation-code,
//     refresh and on-premises password grants (S-10, S-17, S-18), rotation
//     and the refresh grace, RFC 7009 revocation and the change feed,
//     signing keys and JWKS, the access-token check (S-2);
//   - core/admission: the S-12 Expressway-C check in every handshake with
//     a client certificate, the per-REGISTER re-check, "Find" and the sweep
//     after an entry or tomcat-trust changes (S-11, S-12); the one owner of
//     the admitted MRA connections;
//   - core/registrar: the two SIP ports (S-11), REGISTER as one chain of
//     named checks (S-13/S-14, S-12, S-2/S-16/R-2, S-5/S-15, S-9) and the
//     location service;
//   - core/proxy: calls and dialogs across the two ports;
//   - core/configfile: device config files and Phone-Edge-Trust on the
//     config port (S-2, S-4, S-8, S-16, S-20);
//   - core/admin: the admin API the `edgeway admin` CLI speaks (S-5, S-7,
//     S-8, S-9, S-10, S-11, S-12, S-13, S-14, S-15, S-16, S-17, S-19);
//   - core/webui: the web administration at /ui/ on the same HTTPS
//     address, its pages served through the admin API in process (same
//     login, refusals and audit);
//   - core/policy and core/lookups: the device and parameter rules every
//     component consults, and the per-REGISTER cache.
//
// Every SIP request passes sipx.Guard first (RFC 3261 §8.2: a missing,
// duplicated or garbled mandatory header is a 400 naming it; handler
// panics are recovered and counted). No component imports core; core
// keeps the names its callers have always used (Config, New, Server,
// the admin views and parameters) as aliases.
//
// cmd/edgeway, internal/node and quickstart build a Server from a Config
// and run it; tests hand Serve their own loopback listeners.
package core
