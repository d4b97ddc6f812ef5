package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/edgeway/edgeway/core"
)

// Core nodes and their ports (S-11), the CallManager service and the SIP
// OAuth mode (S-13, S-14).
func nodeCmds() []adminCmd {
	mode := func(action string) func(context.Context, *adminClient, []string, io.Writer) error {
		return func(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
			return sipOAuthMode(ctx, a, action, args, out)
		}
	}
	utils := func(action, summary string) adminCmd {
		return adminCmd{path: []string{"utils", "sipOAuth-mode", action}, aliases: [][]string{{"utils", "sipoauth-mode", action}},
			summary: summary, run: mode(action)}
	}
	return []adminCmd{
		{path: []string{"node", "list"}, aliases: [][]string{{"nodes"}, {"nodes", "list"}},
			summary: "core nodes: role, SIP ports, running SIP OAuth mode", run: nodeList},
		{path: []string{"node", "set"}, args: "NAME [--phone-oauth-port N] [--mra-port N]",
			summary: "a node's SIP Phone OAuth and MRA ports (1024-49151, S-11)", run: nodeSet},
		{path: []string{"service", "restart"}, args: "callmanager",
			summary: "on the node --core names: apply the cluster SIP OAuth mode (S-14)", run: serviceRestart},
		utils("enable", "cluster SIP OAuth mode on (publisher only; S-7, S-13)"),
		utils("disable", "cluster SIP OAuth mode off (publisher only)"),
		utils("status", "cluster mode, each node's mode, restarts needed (S-14)"),
	}
}

func nodeList(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var nodes []core.NodeView
	if err := a.getJSON(ctx, "/api/v1/nodes", &nodes); err != nil {
		return err
	}
	tw := newTable(out, "NAME", "ROLE", "PHONE-OAUTH-PORT", "MRA-PORT", "LISTENING", "RUNNING-MODE", "RESTART-NEEDED")
	pending := false
	for _, n := range nodes {
		listening := fmt.Sprintf("%d/%d", n.ListeningPhoneOAuthPort, n.ListeningMRAPort)
		switch {
		case n.ListeningMRAPort == 0:
			listening = "-"
		case n.PortsPending:
			listening += "*"
			pending = true
		}
		row(tw, n.Name, n.Role, n.PhoneOAuthPort, n.MRAPort, listening, n.RunningMode, yesNo(n.RestartNeeded))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pending {
		fmt.Fprintln(out, "* listening on other ports than configured: the configured ones apply when edgeway core restarts on that node")
	}
	return nil
}

func nodeSet(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs := a.flags()
	phone := fs.Int("phone-oauth-port", 0, "SIP Phone OAuth port, TLS, on premises (1024-49151)")
	mra := fs.Int("mra-port", 0, "SIP MRA port, mutual TLS, edges only (1024-49151)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	set := setFlags(fs)
	body := map[string]int{}
	if set["phone-oauth-port"] {
		body["phone_oauth_port"] = *phone
	}
	if set["mra-port"] {
		body["mra_port"] = *mra
	}
	if len(body) == 0 {
		return a.usage("give --phone-oauth-port, --mra-port or both")
	}
	var n core.NodeView
	if err := a.call(ctx, http.MethodPut, "/api/v1/nodes/"+url.PathEscape(pos[0]), body, &n); err != nil {
		return err
	}
	fmt.Fprintf(out, "node %s: SIP Phone OAuth port %d, SIP MRA port %d (the node binds them when edgeway core restarts on it; `service restart callmanager` keeps its listeners)\n", n.Name, n.PhoneOAuthPort, n.MRAPort)
	return nil
}

func serviceRestart(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, -1)
	if err != nil {
		return err
	}
	var v struct {
		Node         string `json:"node"`
		Service      string `json:"service"`
		SIPOAuthMode string `json:"sip_oauth_mode"`
	}
	if err := a.call(ctx, http.MethodPost, "/api/v1/service/restart", map[string]string{"service": strings.Join(pos, " ")}, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "restarted %s on node %s; it now runs SIP OAuth mode %s\n", v.Service, v.Node, v.SIPOAuthMode)
	return nil
}

func sipOAuthMode(ctx context.Context, a *adminClient, action string, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var st core.ModeStatus
	var err error
	if action == "status" {
		err = a.getJSON(ctx, "/api/v1/utils/sipoauth-mode", &st)
	} else {
		err = a.call(ctx, http.MethodPost, "/api/v1/utils/sipoauth-mode", map[string]string{"action": action}, &st)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Cluster SIPOAuth Mode: %s\n\n", st.ClusterMode)
	tw := newTable(out, "NODE", "ROLE", "RUNNING-MODE", "RESTART-NEEDED", "LAST-RESTART")
	for _, n := range st.Nodes {
		row(tw, n.Name, n.Role, n.RunningMode, yesNo(n.RestartNeeded), localTime(n.RestartedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Message != "" {
		fmt.Fprintf(out, "\n%s\n", st.Message)
	} else {
		fmt.Fprintln(out, "\nevery node runs the cluster mode; no restart needed")
	}
	return nil
}
