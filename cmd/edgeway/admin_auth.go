package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/mtls"
)

// passwordEnv holds an admin password for login, so that it need not be
// on the command line (where ps shows it).
const passwordEnv = "EDGEWAY_ADMIN_PASSWORD"

// Admin accounts, API tokens and the audit log.
func authCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"login"}, args: "--username U [--password P] [--name N] [--save FILE]", noToken: true,
			summary: "API token for an admin account's password (default $" + passwordEnv + ")", run: login},
		{path: []string{"token", "create"}, args: "--name N [--save FILE]", summary: "new API token for scripts (shown once)", run: tokenCreate},
		{path: []string{"token", "list"}, aliases: [][]string{{"tokens"}}, summary: "API tokens (never the secret)", run: tokenList},
		{path: []string{"token", "revoke"}, args: "ID", summary: "revoke an API token: it stops working at once", run: tokenRevoke},
		{path: []string{"account", "set"}, args: "USER --password P", summary: "create an admin account or set its password (12+ chars)", run: accountSet},
		{path: []string{"audit"}, args: "[--limit N]", summary: "the audit log, newest first: who changed what, when", run: audit},
	}
}

// showToken prints a new API token once, or writes it to file (mode 0600).
func showToken(out io.Writer, v core.APITokenView, file string) error {
	if file != "" {
		if err := mtls.WriteFileAtomic(file, []byte(v.Token+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "API token %s %q for %s saved to %s (use --token-file %s)\n", v.ID, v.Name, v.Owner, file, file)
		return nil
	}
	fmt.Fprintf(out, "API token %s %q for %s (shown once; keep it secret):\n%s\n", v.ID, v.Name, v.Owner, v.Token)
	return nil
}

func login(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs := a.flags()
	user := fs.String("username", "", "admin account")
	pass := fs.String("password", "", "its password (default $"+passwordEnv+")")
	name := fs.String("name", "", "what the token is for (default \"login <time>\")")
	save := fs.String("save", "", "write the token to this file (mode 0600) instead of printing it")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *pass == "" {
		*pass = os.Getenv(passwordEnv)
	}
	if *user == "" || *pass == "" {
		return a.usage("login needs --username and a password (--password or $%s)", passwordEnv)
	}
	a.basicUser, a.basicPass = *user, *pass
	var body any
	if *name != "" {
		body = map[string]string{"name": *name}
	}
	var v core.APITokenView
	if err := a.call(ctx, http.MethodPost, "/api/v1/auth/tokens", body, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "logged in as %s\n", *user)
	return showToken(out, v, *save)
}

func tokenCreate(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs := a.flags()
	name := fs.String("name", "", "what the token is for")
	save := fs.String("save", "", "write the token to this file (mode 0600) instead of printing it")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *name == "" {
		return a.usage("token create needs --name")
	}
	var v core.APITokenView
	if err := a.call(ctx, http.MethodPost, "/api/v1/auth/tokens/new", map[string]string{"name": *name}, &v); err != nil {
		return err
	}
	return showToken(out, v, *save)
}

func tokenList(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var ts []core.APITokenView
	if err := a.getJSON(ctx, "/api/v1/auth/tokens", &ts); err != nil {
		return err
	}
	tw := newTable(out, "ID", "NAME", "OWNER", "CREATED", "LAST-USED", "STATE")
	for _, t := range ts {
		lastUsed, state := "-", "active"
		if t.LastUsed != nil {
			lastUsed = localTime(*t.LastUsed)
		}
		if t.RevokedAt != nil {
			state = "revoked " + localTime(*t.RevokedAt)
		}
		row(tw, t.ID, t.Name, t.Owner, localTime(t.CreatedAt), lastUsed, state)
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.call(ctx, http.MethodDelete, "/api/v1/auth/tokens/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "revoked API token %s\n", pos[0])
	return nil
}

func accountSet(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs := a.flags()
	pass := fs.String("password", "", "the account's new password (at least 12 characters)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *pass == "" {
		return a.usage("account set needs --password")
	}
	if err := a.call(ctx, http.MethodPut, "/api/v1/accounts/"+url.PathEscape(pos[0]), map[string]string{"password": *pass}, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "admin account %s saved; it logs in with `edgeway admin login --username %s`\n", pos[0], pos[0])
	return nil
}

func audit(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs := a.flags()
	limit := fs.Int("limit", 50, "show at most N entries, newest first (0: all the API returns)")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *limit < 0 {
		return a.usage("--limit must not be negative")
	}
	var entries []core.AuditView
	if err := a.getJSON(ctx, "/api/v1/audit", &entries); err != nil {
		return err
	}
	if *limit > 0 && len(entries) > *limit {
		entries = entries[:*limit]
	}
	tw := newTable(out, "AT", "ACTOR", "ACTION", "DETAIL")
	for _, e := range entries {
		row(tw, localTime(e.At), e.Actor, e.Action, e.Detail)
	}
	return tw.Flush()
}
