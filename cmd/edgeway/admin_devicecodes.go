package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/edgeway/edgeway/core/oauth"
)

// The device grant (RFC 8628): the requests waiting for approval, and the
// approval or denial of a user_code.
func deviceCodeCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"device-code", "list"}, summary: "list the device authorization requests waiting for approval (RFC 8628)", run: deviceCodeList},
		{path: []string{"device-code", "approve"}, args: "USER_CODE", summary: "approve a phone's user_code for the device it asked for", run: deviceCodeDecide("approve")},
		{path: []string{"device-code", "deny"}, args: "USER_CODE", summary: "deny a phone's user_code", run: deviceCodeDecide("deny")},
	}
}

func deviceCodeList(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var list []oauth.DeviceCodeView
	if err := a.getJSON(ctx, "/api/v1/device-codes", &list); err != nil {
		return err
	}
	tw := newTable(out, "USER_CODE", "DEVICE", "FROM", "EDGE", "ASKED", "EXPIRES")
	for _, c := range list {
		row(tw, c.UserCode, c.Device, c.Source, c.Edge, localTime(c.CreatedAt), localTime(c.ExpiresAt))
	}
	return tw.Flush()
}

func deviceCodeDecide(verb string) func(context.Context, *adminClient, []string, io.Writer) error {
	return func(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
		pos, err := a.parse(nil, args, 1, 1)
		if err != nil {
			return err
		}
		var v oauth.DeviceCodeView
		if err := a.call(ctx, http.MethodPost, "/api/v1/device-codes/"+url.PathEscape(pos[0])+"/"+verb, nil, &v); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s for device %s\n", v.Status, v.UserCode, v.Device)
		return nil
	}
}
