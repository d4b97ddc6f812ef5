package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/mtls"
)

// passwordEnv holds an admin password for login, so that it need not be
// on the command line (where ps shows it).
const passwordEnv = "EDGEWAY_ADMIN_PASSWORD"

// Admin accounts, API tokens and the audit log.
func authCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"login"}, args: "--username U [--password P] [--name N] [--ttl D] [--save FILE]", noToken: true,
			summary: "API token for an admin account's password (default $" + passwordEnv + ")", run: login},
		{path: []string{"token", "create"}, args: "--name N [--ttl D] [--save FILE]", summary: "new API token for scripts (shown once; default 90 days, never beyond the token that creates it)", run: tokenCreate},
		{path: []string{"token", "list"}, aliases: [][]string{{"tokens"}}, summary: "API tokens (never the secret)", run: tokenList},
		{path: []string{"token", "revoke"}, args: "ID", summary: "revoke an API token: it stops working at once", run: tokenRevoke},
		{path: []string{"account", "set"}, args: "USER --password P", summary: "create an admin account or set its password (12+ chars)", run: accountSet},
		{path: []string{"audit"}, args: "[--limit N]", summary: "the audit log, newest first: who changed what, when", run: audit},
	}
}

// showToken prints a new API token once, or writes it to file (mode 0600),
// with its expiry.
func showToken(out io.Writer, v core.APITokenView, file string) error {
	expiry := "never expires"
	if v.ExpiresAt != nil {
		expiry = "expires " + localTime(*v.ExpiresAt)
		if v.Clamped {
			expiry += " (no later than the token that created it; log in with --ttl for a longer one)"
		}
	}
	if file != "" {
		if err := mtls.WriteFileAtomic(file, []byte(v.Token+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "API token %s %q for %s saved to %s (use --token-file %s); %s\n", v.ID, v.Name, v.Owner, file, file, expiry)
		return nil
	}
	fmt.Fprintf(out, "API token %s %q for %s, %s (shown once; keep it secret):\n%s\n", v.ID, v.Name, v.Owner, expiry, v.Token)
	return nil
}

func login(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs := a.flags()
	user := fs.String("username", "", "admin account")
	pass := fs.String("password", "", "its password (default $"+passwordEnv+")")
	name := fs.String("name", "", "what the token is for (default \"login <time>\")")
	ttl := fs.Duration("ttl", 0, "token lifetime (default 12h, at most 2160h)")
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
	if *name != "" || *ttl != 0 {
		b := map[string]string{"name": *name}
		if *ttl != 0 {
			b["ttl"] = ttl.String()
		}
		body = b
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
	ttl := fs.Duration("ttl", 0, "token lifetime (default 2160h = 90 days, at most 8760h; never beyond the token that creates it)")
	save := fs.String("save", "", "write the token to this file (mode 0600) instead of printing it")
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *name == "" {
		return a.usage("token create needs --name")
	}
	body := map[string]string{"name": *name}
	if *ttl != 0 {
		body["ttl"] = ttl.String()
	}
	var v core.APITokenView
	if err := a.call(ctx, http.MethodPost, "/api/v1/auth/tokens/new", body, &v); err != nil {
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
	tw := newTable(out, "ID", "NAME", "OWNER", "CREATED", "LAST-USED", "EXPIRES", "STATE")
	now := time.Now()
	for _, t := range ts {
		lastUsed, expires, state := "-", "never", "active"
		if t.LastUsed != nil {
			lastUsed = localTime(*t.LastUsed)
		}
		if t.ExpiresAt != nil {
			expires = localTime(*t.ExpiresAt)
			if !t.ExpiresAt.After(now) {
				state = "expired"
			}
		}
		if t.RevokedAt != nil {
			state = "revoked " + localTime(*t.RevokedAt)
		}
		row(tw, t.ID, t.Name, t.Owner, localTime(t.CreatedAt), lastUsed, expires, state)
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
