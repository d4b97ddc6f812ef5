package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/edgeway/edgeway/core"
)

// Phone security profiles (S-5, S-15, S-16) and devices (S-5, S-15, S-17,
// S-19).

func profileCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"profile", "list"}, aliases: [][]string{{"profiles"}}, summary: "phone security profiles", run: profileList},
		{path: []string{"profile", "set"},
			args:    "NAME --mode non-secure|authenticated|encrypted --transport TCP|UDP|TLS|TCP+UDP [--oauth] [--digest] [--tftp-encrypted] [--device-type T]",
			summary: "create or replace a profile (S-15, S-16 refusals)", run: profileSet},
		{path: []string{"profile", "delete"}, args: "NAME", summary: "delete a profile no device uses", run: profileDelete},
	}
}

func deviceCmds() []adminCmd {
	return []adminCmd{
		{path: []string{"device", "list"}, aliases: [][]string{{"devices"}, {"devices", "list"}}, summary: "list devices", run: deviceList},
		{path: []string{"device", "show"}, args: "NAME", summary: "one device's settings", run: deviceShow},
		{path: []string{"device", "set"}, args: "NAME --model M --line L --profile P [--owner U] [--allow-mra] [--mra-domain D]",
			summary: "create or change a device; flags not given keep their values", run: deviceSet},
		{path: []string{"device", "delete"}, args: "NAME", summary: "delete a device and its bindings", run: deviceDelete},
		{path: []string{"device", "apply-config"}, args: "NAME", summary: "push a changed config: the phone registers again", run: deviceReset("apply-config")},
		{path: []string{"device", "reset"}, args: "NAME", summary: "drop the phone's bindings: it must register again (S-15)", run: deviceReset("reset")},
	}
}

func profileList(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var ps []core.ProfileView
	if err := a.getJSON(ctx, "/api/v1/profiles", &ps); err != nil {
		return err
	}
	tw := newTable(out, "NAME", "DEVICE-TYPE", "MODE", "TRANSPORT", "OAUTH", "DIGEST", "TFTP-ENCRYPTED", "BOUND-TOKENS")
	for _, p := range ps {
		row(tw, p.Name, orDash(p.DeviceType), p.Mode, p.Transport, yesNo(p.OAuth), yesNo(p.Digest), yesNo(p.TFTPEncrypted), yesNo(p.RequireBoundTokens))
	}
	return tw.Flush()
}

func profileSet(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs := a.flags()
	var p core.ProfileView
	fs.StringVar(&p.Mode, "mode", "", "device security mode: non-secure, authenticated or encrypted")
	fs.StringVar(&p.Transport, "transport", "", "transport: TCP, UDP, TLS or TCP+UDP")
	fs.BoolVar(&p.OAuth, "oauth", false, "Enable OAuth Authentication (needs encrypted + TLS, S-15)")
	fs.BoolVar(&p.Digest, "digest", false, "Enable Digest Authentication (not with OAuth, S-16)")
	fs.BoolVar(&p.TFTPEncrypted, "tftp-encrypted", false, "TFTP Encrypted Config (not with OAuth, S-16)")
	fs.StringVar(&p.DeviceType, "device-type", "", "the device type the profile is for, e.g. 8845 or UDT (default any)")
	fs.BoolVar(&p.RequireBoundTokens, "require-bound-tokens", false,
		"Require certificate-bound tokens (RFC 8705): the devices must present their client certificate to get tokens, and bearer tokens do not register (needs --oauth)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if p.Mode == "" || p.Transport == "" {
		return a.usage("profile set needs --mode and --transport")
	}
	if err := a.call(ctx, http.MethodPut, "/api/v1/profiles/"+url.PathEscape(pos[0]), p, &p); err != nil {
		return err
	}
	fmt.Fprintf(out, "saved security profile %q: %s, %s, OAuth %s, digest %s, TFTP encrypted config %s, certificate-bound tokens %s", p.Name, p.Mode, p.Transport,
		onOff(p.OAuth), onOff(p.Digest), onOff(p.TFTPEncrypted), onOff(p.RequireBoundTokens))
	if p.DeviceType != "" {
		fmt.Fprintf(out, ", for device type %s", p.DeviceType)
	}
	fmt.Fprintln(out)
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func profileDelete(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.call(ctx, http.MethodDelete, "/api/v1/profiles/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "deleted security profile %q\n", pos[0])
	return nil
}

// deviceRow decodes a device from GET /api/v1/devices, which answers with
// the store's field names (SecurityProfile, AllowMRA, MRAServiceDomain)
// rather than DeviceView's; both spellings are accepted.
type deviceRow struct {
	core.DeviceView
	StoreProfile  string `json:"SecurityProfile"`
	StoreAllowMRA bool   `json:"AllowMRA"`
	StoreDomain   string `json:"MRAServiceDomain"`
}

func (d deviceRow) view() core.DeviceView {
	v := d.DeviceView
	if v.SecurityProfile == "" {
		v.SecurityProfile = d.StoreProfile
	}
	v.AllowMRA = v.AllowMRA || d.StoreAllowMRA
	if v.MRAServiceDomain == "" {
		v.MRAServiceDomain = d.StoreDomain
	}
	return v
}

func deviceList(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	if _, err := a.parse(nil, args, 0, 0); err != nil {
		return err
	}
	var ds []deviceRow
	if err := a.getJSON(ctx, "/api/v1/devices", &ds); err != nil {
		return err
	}
	tw := newTable(out, "NAME", "MODEL", "LINE", "OWNER", "PROFILE", "ACTIVATION-VIA-MRA", "MRA-DOMAIN")
	for _, r := range ds {
		d := r.view()
		row(tw, d.Name, d.Model, d.Line, orDash(d.Owner), d.SecurityProfile, yesNo(d.AllowMRA), orDash(d.MRAServiceDomain))
	}
	return tw.Flush()
}

func deviceShow(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	var r deviceRow
	if err := a.getJSON(ctx, "/api/v1/devices/"+url.PathEscape(pos[0]), &r); err != nil {
		return err
	}
	d := r.view()
	tw := newTable(out, "FIELD", "VALUE")
	row(tw, "name", d.Name)
	row(tw, "model", d.Model)
	row(tw, "line", d.Line)
	row(tw, "owner", orDash(d.Owner))
	row(tw, "security profile", d.SecurityProfile)
	row(tw, "allow activation code via MRA", yesNo(d.AllowMRA))
	row(tw, "activation code MRA service domain", orDash(d.MRAServiceDomain))
	return tw.Flush()
}

func deviceSet(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs := a.flags()
	model := fs.String("model", "", "model / device type, e.g. 8845 or CSF (S-5 lists those that may use OAuth)")
	line := fs.String("line", "", "directory number, e.g. 1001")
	profile := fs.String("profile", "", "phone security profile")
	owner := fs.String("owner", "", "owner user ID")
	allowMRA := fs.Bool("allow-mra", false, "Allow Activation Code via MRA (S-17; --allow-mra=false turns it off)")
	domain := fs.String("mra-domain", "", "Activation Code MRA Service Domain (S-17)")
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	name, set := pos[0], setFlags(fs)
	var cur deviceRow
	err = a.getJSON(ctx, "/api/v1/devices/"+url.PathEscape(name), &cur)
	exists := err == nil
	switch {
	case isNotFound(err):
		if !set["model"] || !set["line"] || !set["profile"] {
			return a.usage("new device %s needs --model, --line and --profile", name)
		}
	case err != nil:
		return err
	case len(set) == 0:
		return a.usage("nothing to change")
	}
	d := cur.view()
	d.Name = name
	for _, f := range []struct {
		flag     string
		from, to *string
	}{{"model", model, &d.Model}, {"line", line, &d.Line}, {"profile", profile, &d.SecurityProfile}, {"owner", owner, &d.Owner}, {"mra-domain", domain, &d.MRAServiceDomain}} {
		if set[f.flag] {
			*f.to = *f.from
		}
	}
	if set["allow-mra"] {
		d.AllowMRA = *allowMRA
	}
	if err := a.call(ctx, http.MethodPut, "/api/v1/devices/"+url.PathEscape(name), d, &d); err != nil {
		return err
	}
	verb := "created"
	if exists {
		verb = "saved"
	}
	fmt.Fprintf(out, "%s device %s: model %s, line %s, profile %q, activation via MRA %s", verb, d.Name, d.Model, d.Line, d.SecurityProfile, yesNo(d.AllowMRA))
	if d.MRAServiceDomain != "" {
		fmt.Fprintf(out, " (domain %s)", d.MRAServiceDomain)
	}
	fmt.Fprintln(out)
	if exists {
		fmt.Fprintf(out, "a registered phone picks it up after `edgeway admin device apply-config %s` or `device reset %s`\n", d.Name, d.Name)
	}
	return nil
}

func deviceDelete(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	pos, err := a.parse(nil, args, 1, 1)
	if err != nil {
		return err
	}
	if err := a.call(ctx, http.MethodDelete, "/api/v1/devices/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "deleted device %s and its bindings\n", pos[0])
	return nil
}

// deviceReset is reset or apply-config: the core drops the device's
// bindings, so the phone registers again with its new config.
func deviceReset(action string) func(context.Context, *adminClient, []string, io.Writer) error {
	return func(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
		pos, err := a.parse(nil, args, 1, 1)
		if err != nil {
			return err
		}
		var v struct {
			Device  string `json:"device"`
			Removed int    `json:"bindings_removed"`
		}
		if err := a.call(ctx, http.MethodPost, "/api/v1/devices/"+url.PathEscape(pos[0])+"/"+action, nil, &v); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %s: %d binding(s) removed; the phone must register again\n", action, v.Device, v.Removed)
		return nil
	}
}
