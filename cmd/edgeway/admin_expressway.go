package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgeway/edgeway/core"
)

// Expressway-C entries (S-12) and what the core sees of the signalling
// path.
func expresswayCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"expressway", "find"}, summary: "names edges presented, and whether configured (S-12)", run: expresswayFind},
		{path: []string{"expressway", "list"}, summary: "configured Expressway-C entries", run: expresswayList},
		{path: []string{"expressway", "add"}, args: "--address A --name N [--name N2]... [--domain D]... [--description D]",
			summary: "admit an Expressway-C by its X.509 names / SANs", run: expresswayAdd},
		{path: []string{"expressway", "edit"}, args: "ID [--address A] [--name N]... [--domain D]... [--description D]",
			summary: "change an entry; fields not given keep their values", run: expresswayEdit},
		{path: []string{"expressway", "delete"}, args: "ID", summary: "remove an entry; its edge is shut out within seconds", run: expresswayDelete},
		{path: []string{"registrations"}, aliases: [][]string{{"registrations", "list"}}, summary: "list SIP bindings (with Path)", run: registrations},
	}
}

func registrations(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var regs []core.RegistrationView
	if err := a.getJSON(ctx, "/api/v1/registrations", &regs); err != nil {
		return err
	}
	tw := newTable(out, "AOR", "DEVICE", "CONTACT", "MRA", "EDGE", "PATH", "EXPIRES IN")
	for _, r := range regs {
		row(tw, r.AOR, r.Device, r.Contact, r.MRA, r.Edge, strings.Join(r.Path, ", "), time.Until(r.ExpiresAt).Round(time.Second))
	}
	return tw.Flush()
}

func expresswayFind(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var found []core.FoundName
	if err := a.getJSON(ctx, "/api/v1/expressway/find", &found); err != nil {
		return err
	}
	tw := newTable(out, "X.509 NAME", "LAST SEEN FROM", "LAST SEEN", "CONFIGURED")
	for _, f := range found {
		conf := "no"
		if f.Configured {
			conf = fmt.Sprintf("yes (entry %d)", f.EntryID)
		}
		row(tw, f.Name, f.Address, localTime(f.LastSeen), conf)
	}
	return tw.Flush()
}

func expresswayList(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var es []core.ExpresswayEntryView
	if err := a.getJSON(ctx, "/api/v1/expressway", &es); err != nil {
		return err
	}
	tw := newTable(out, "ID", "ADDRESS", "X.509 NAMES", "DOMAINS", "DESCRIPTION")
	for _, e := range es {
		row(tw, e.ID, e.Address, strings.Join(e.Names, ", "), orDash(strings.Join(e.Domains, ", ")), e.Description)
	}
	return tw.Flush()
}

// expresswayFlags are the fields of an entry as flags.
type expresswayFlags struct {
	address, description *string
	names, domains       listFlag
}

func newExpresswayFlags(a *adminClient) (*expresswayFlags, *flag.FlagSet) {
	f := &expresswayFlags{}
	fs := a.flags()
	f.address = fs.String("address", "", "IP, hostname or FQDN of the Expressway-C")
	f.description = fs.String("description", "", "free text")
	fs.Var(&f.names, "name", "X.509 subject name / SAN to admit (repeatable)")
	fs.Var(&f.domains, "domain", "extra domain served through this Expressway-C (repeatable)")
	return f, fs
}

// nonEmpty drops empty values, so that --domain "" clears the list.
func nonEmpty(l []string) []string {
	out := []string{}
	for _, s := range l {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func expresswayAdd(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	f, fs := newExpresswayFlags(a)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *f.address == "" || len(nonEmpty(f.names)) == 0 {
		return a.usage("expressway add needs --address and at least one --name")
	}
	v := core.ExpresswayEntryView{Address: *f.address, Description: *f.description, Names: nonEmpty(f.names), Domains: nonEmpty(f.domains)}
	if err := a.call(ctx, http.MethodPost, "/api/v1/expressway", v, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "added Expressway-C entry %d (%s: %s)\n", v.ID, v.Address, strings.Join(v.Names, ", "))
	return nil
}

func expresswayEdit(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	f, fs := newExpresswayFlags(a)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil {
		return a.usage("bad entry ID %q", pos[0])
	}
	set := setFlags(fs)
	if len(set) == 0 {
		return a.usage("nothing to change")
	}
	var es []core.ExpresswayEntryView
	if err := a.getJSON(ctx, "/api/v1/expressway", &es); err != nil {
		return err
	}
	var v *core.ExpresswayEntryView
	for i := range es {
		if es[i].ID == id {
			v = &es[i]
		}
	}
	if v == nil {
		return fmt.Errorf("no Expressway-C entry %d (expressway list shows them)", id)
	}
	if set["address"] {
		v.Address = *f.address
	}
	if set["description"] {
		v.Description = *f.description
	}
	if set["name"] {
		v.Names = nonEmpty(f.names)
	}
	if set["domain"] {
		v.Domains = nonEmpty(f.domains)
	}
	if err := a.call(ctx, http.MethodPut, "/api/v1/expressway/"+strconv.FormatInt(id, 10), v, v); err != nil {
		return err
	}
	fmt.Fprintf(out, "updated Expressway-C entry %d (%s: %s", v.ID, v.Address, strings.Join(v.Names, ", "))
	if len(v.Domains) > 0 {
		fmt.Fprintf(out, "; domains %s", strings.Join(v.Domains, ", "))
	}
	fmt.Fprintln(out, ")")
	return nil
}

func expresswayDelete(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.call(ctx, http.MethodDelete, "/api/v1/expressway/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "deleted Expressway-C entry %s\n", pos[0])
	return nil
}
