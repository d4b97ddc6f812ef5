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

// Users' refresh tokens (R-2: an administrator revokes a user's existing
// refresh tokens, e.g. when an employee leaves). A revoked family's
// refresh token is refused (invalid_grant) and its access tokens no longer
// register, on every node.

func familyCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"user", "families"}, args: "USER", summary: "the refresh-token families of the user's devices and password logins", run: userFamilies},
		{path: []string{"user", "revoke-tokens"}, args: "USER", summary: "revoke every live refresh-token family of the user (R-2): the phones must onboard again", run: userRevokeTokens},
		{path: []string{"family", "revoke"}, args: "ID", summary: "revoke one refresh-token family (its refresh and access tokens stop at once)", run: familyRevoke},
	}
}

func userFamilies(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	var uf core.UserFamilies
	if err := a.getJSON(ctx, "/api/v1/users/"+url.PathEscape(pos[0])+"/families", &uf); err != nil {
		return err
	}
	if len(uf.Families) == 0 {
		fmt.Fprintln(out, uf.Note)
		return nil
	}
	tw := newTable(out, "ID", "DEVICE", "ORIGIN", "VIA-MRA", "STATE", "STARTED", "EXPIRES", "REVOKED")
	for _, f := range uf.Families {
		row(tw, f.ID, f.Device, f.Origin, yesNo(f.MRA), f.State, localTime(f.StartedAt), localTime(f.ExpiresAt), localTime(f.RevokedAt))
	}
	return tw.Flush()
}

func userRevokeTokens(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	var rv core.RevokedUserFamilies
	if err := a.call(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(pos[0])+"/families/revoke", nil, &rv); err != nil {
		return err
	}
	fmt.Fprintln(out, rv.Note)
	if len(rv.Revoked) > 0 {
		fmt.Fprintf(out, "revoked: %s\n", strings.Join(rv.Revoked, " "))
	}
	return nil
}

func familyRevoke(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.call(ctx, http.MethodDelete, "/api/v1/families/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "R-2: revoked refresh-token family %s: its refresh token is refused and its access tokens no longer register\n", pos[0])
	return nil
}
