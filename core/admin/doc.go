// Package admin is the admin API the `edgeway admin` CLI speaks on the
// core's HTTPS port, behind a bearer API token: authentication (API
// tokens with lifetimes and revocation scopes, admin accounts, the audit
// log; issue 9 item 13), and its parts, each its own type with the store
// methods it uses: inventory — devices (S-5, S-17, S-19), security profiles
// (S-5, S-15, S-16), Expressway-C entries (S-12), activation codes (S-17);
// cluster — enterprise parameters (S-7, S-9, S-10, S-13), nodes and their
// SIP ports (S-11), `utils sipOAuth-mode` and `service restart
// callmanager` (S-13, S-14); Trust — tomcat-trust (S-11) and
// Phone-Edge-Trust (S-8). An edit or deletion of an Expressway-C entry or
// of a tomcat-trust certificate sweeps the admitted MRA connections at once
// (core/admission).
//
// core.Server builds one API with its collaborators and mounts Routes on
// the HTTPS mux beside core/oauth's endpoints.
package admin
