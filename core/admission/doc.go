// Package admission is the core's door for edges: the S-12 check run in
// every handshake that presents a client certificate (the MRA port and
// HTTPS; the chain was verified against tomcat-trust first, S-11), the
// re-check of the edge behind an MRA connection on every REGISTER, the
// record of the names edges presented (S-12 "Find"), and the sweep that
// closes admitted MRA connections after an Expressway-C entry is edited
// or deleted (S-12) or their CA leaves tomcat-trust (S-11). Gate is the
// one owner of the map of admitted MRA connections, and of which edge
// each speaks for (Announce, ConnOf), by which a node of a cluster reaches
// phones whose bindings came through another node (issue 11).
//
// core.Server builds one Gate and hands it to its listeners, core/oauth
// (which peer is calling) and the registrar.
package admission
