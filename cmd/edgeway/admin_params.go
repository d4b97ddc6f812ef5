package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/edgeway/edgeway/core"
)

// Enterprise parameters (S-9, S-10, S-13, S-7, token lifetimes).
func paramsCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"params", "get"}, aliases: [][]string{{"params", "list"}, {"params"}}, args: "[NAME]",
			summary: "enterprise parameters: value, default, read-only", run: paramsGet},
		{path: []string{"params", "set"}, args: "NAME VALUE",
			summary: "set one, e.g. params set oauth_access_token_for_devices explicit", run: paramsSet},
	}
}

func paramsGet(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 0, 1)
	if err != nil {
		return err
	}
	var ps []core.ParamView
	if err := a.getJSON(ctx, "/api/v1/params", &ps); err != nil {
		return err
	}
	tw := newTable(out, "NAME", "VALUE", "DEFAULT", "READ-ONLY")
	found := false
	for _, p := range ps {
		if len(pos) == 1 && p.Name != pos[0] {
			continue
		}
		found = true
		row(tw, p.Name, orDash(p.Value), orDash(p.Default), yesNo(p.ReadOnly))
	}
	if len(pos) == 1 && !found {
		return fmt.Errorf("no enterprise parameter %q", pos[0])
	}
	return tw.Flush()
}

func paramsSet(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 2, 2)
	if err != nil {
		return err
	}
	var p core.ParamView
	if err := a.call(ctx, http.MethodPut, "/api/v1/params/"+url.PathEscape(pos[0]), map[string]string{"value": pos[1]}, &p); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s = %s (default %s)\n", p.Name, p.Value, p.Default)
	return nil
}
