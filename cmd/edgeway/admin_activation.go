package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/edgeway/edgeway/core"
)

// One-time activation codes for onboarding.
func activationCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"activation", "issue"}, args: "DEVICE", summary: "issue a one-time code (shown once); revokes older ones and unlocks a code locked after wrong guesses", run: activationIssue},
		{path: []string{"activation", "issue-bulk"}, args: "DEVICE...", summary: "issue codes for many devices, CSV on stdout", run: activationIssueBulk},
		{path: []string{"activation", "list"}, args: "[DEVICE]", summary: "list codes (never the plaintext)", run: activationList},
		{path: []string{"activation", "revoke"}, args: "ID", summary: "revoke a code", run: activationRevoke},
	}
}

func activationIssue(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	var ic core.IssuedCode
	if err := a.call(ctx, http.MethodPost, "/api/v1/activation", map[string]string{"device": pos[0]}, &ic); err != nil {
		return err
	}
	fmt.Fprintf(out, "device %s\nactivation code %s (one-time, shown once)\nid %s\nexpires %s\n", ic.Device, ic.ActivationCode, ic.ID, localTime(ic.ExpiresAt))
	return nil
}

func activationIssueBulk(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, -1)
	if err != nil {
		return err
	}
	resp, err := a.do(ctx, http.MethodPost, "/api/v1/activation/bulk", map[string][]string{"devices": pos})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}

func activationList(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 0, 1)
	if err != nil {
		return err
	}
	path := "/api/v1/activation"
	if len(pos) == 1 {
		path += "?device=" + url.QueryEscape(pos[0])
	}
	var codes []core.CodeView
	if err := a.getJSON(ctx, path, &codes); err != nil {
		return err
	}
	tw := newTable(out, "ID", "DEVICE", "STATE", "CREATED", "EXPIRES")
	for _, c := range codes {
		row(tw, c.ID, c.Device, c.State, localTime(c.CreatedAt), localTime(c.ExpiresAt))
	}
	return tw.Flush()
}

func activationRevoke(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.call(ctx, http.MethodDelete, "/api/v1/activation/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "revoked activation code %s\n", pos[0])
	return nil
}
