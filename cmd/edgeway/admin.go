package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/quickstart"
)

const adminUsage = `usage: edgeway admin [--quickstart FILE | --core URL --token-file F --ca FILE] <command>

commands:
  registrations                       list SIP bindings (with Path)
  expressway find                     names edges presented, and whether configured (S-12)
  expressway list                     configured Expressway-C entries
  expressway add --address A --name N [--name N2] [--description D]
  expressway delete ID
  activation issue DEVICE             issue a one-time code (shown once)
  activation issue-bulk DEVICE...     issue codes for many devices, CSV on stdout
  activation list [DEVICE]            list codes (never the plaintext)
  activation revoke ID
  devices                             list devices
  keys rotate                         new signing key; old tokens stay valid until they expire
  keys regen                          new signing key; tokens signed by the old ones stop working now (R-1)
`

type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func (a *adminClient) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.base, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct {
			Error     string `json:"error"`
			IssuedCSV string `json:"issued_csv"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		if e.IssuedCSV != "" {
			// A bulk issue failed part-way: the codes issued so far are valid.
			fmt.Fprintf(os.Stderr, "codes issued before the failure:\n%s", e.IssuedCSV)
		}
		return nil, fmt.Errorf("admin API: %s %s: HTTP %d: %s", method, path, resp.StatusCode, e.Error)
	}
	return resp, nil
}

func (a *adminClient) getJSON(ctx context.Context, path string, into any) error {
	resp, err := a.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(into)
}

// connFlags are how a CLI command finds a running core or edge.
type connFlags struct {
	quickstart, core, tokenFile, ca string
}

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.quickstart, "quickstart", "", "quickstart.json to take addresses and credentials from (default edgeway-data/quickstart.json when present)")
	fs.StringVar(&c.core, "core", "", "core HTTPS base URL")
	fs.StringVar(&c.tokenFile, "token-file", "", "admin token file")
	fs.StringVar(&c.ca, "ca", "", "CA certificate (PEM) that verifies the server")
}

// resolve fills unset values from quickstart.json.
func (c *connFlags) resolve() (quickstart.Info, error) {
	var info quickstart.Info
	path := c.quickstart
	if path == "" {
		if _, err := os.Stat(filepath.Join("edgeway-data", "quickstart.json")); err == nil {
			path = filepath.Join("edgeway-data", "quickstart.json")
		}
	}
	if path != "" {
		var err error
		if info, err = quickstart.ReadInfo(path); err != nil {
			return info, err
		}
	}
	if c.core == "" {
		c.core = info.CoreHTTPS
	}
	if c.tokenFile == "" {
		c.tokenFile = info.AdminTokenFile
	}
	if c.ca == "" {
		c.ca = info.CACert
	}
	return info, nil
}

func caPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return x509.SystemCertPool()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func runAdmin(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("edgeway admin", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), adminUsage); fs.PrintDefaults() }
	var cf connFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := cf.resolve(); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: admin needs a command", errUsage)
	}
	if cf.core == "" || cf.tokenFile == "" {
		return fmt.Errorf("%w: admin needs --core and --token-file (or --quickstart)", errUsage)
	}
	tok, err := os.ReadFile(cf.tokenFile)
	if err != nil {
		return err
	}
	pool, err := caPool(cf.ca)
	if err != nil {
		return err
	}
	a := &adminClient{base: cf.core, token: strings.TrimSpace(string(tok)), http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch strings.Join(rest[:min(2, len(rest))], " ") {
	case "registrations", "registrations list":
		var regs []core.RegistrationView
		if err := a.getJSON(ctx, "/api/v1/registrations", &regs); err != nil {
			return err
		}
		fmt.Fprintln(tw, "AOR\tDEVICE\tCONTACT\tMRA\tEDGE\tPATH\tEXPIRES IN")
		for _, r := range regs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", r.AOR, r.Device, r.Contact, r.MRA, r.Edge, strings.Join(r.Path, ", "), time.Until(r.ExpiresAt).Round(time.Second))
		}
		return nil
	case "expressway find":
		var found []core.FoundName
		if err := a.getJSON(ctx, "/api/v1/expressway/find", &found); err != nil {
			return err
		}
		fmt.Fprintln(tw, "X.509 NAME\tLAST SEEN FROM\tLAST SEEN\tCONFIGURED")
		for _, f := range found {
			conf := "no"
			if f.Configured {
				conf = fmt.Sprintf("yes (entry %d)", f.EntryID)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, f.Address, f.LastSeen.Local().Format(time.DateTime), conf)
		}
		return nil
	case "expressway list":
		var es []core.ExpresswayEntryView
		if err := a.getJSON(ctx, "/api/v1/expressway", &es); err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tADDRESS\tX.509 NAMES\tDESCRIPTION")
		for _, e := range es {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.ID, e.Address, strings.Join(e.Names, ", "), e.Description)
		}
		return nil
	case "expressway add":
		efs := flag.NewFlagSet("expressway add", flag.ContinueOnError)
		var v core.ExpresswayEntryView
		efs.StringVar(&v.Address, "address", "", "IP, hostname or FQDN of the Expressway-C")
		efs.StringVar(&v.Description, "description", "", "free text")
		efs.Func("name", "X.509 subject name / SAN to admit (repeatable)", func(s string) error { v.Names = append(v.Names, s); return nil })
		if err := efs.Parse(rest[2:]); err != nil {
			return err
		}
		resp, err := a.do(ctx, http.MethodPost, "/api/v1/expressway", v)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&v)
		fmt.Fprintf(out, "added Expressway-C entry %d (%s: %s)\n", v.ID, v.Address, strings.Join(v.Names, ", "))
		return nil
	case "expressway delete":
		if len(rest) != 3 {
			return fmt.Errorf("%w: expressway delete ID", errUsage)
		}
		resp, err := a.do(ctx, http.MethodDelete, "/api/v1/expressway/"+rest[2], nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		fmt.Fprintf(out, "deleted Expressway-C entry %s\n", rest[2])
		return nil
	case "activation issue":
		if len(rest) != 3 {
			return fmt.Errorf("%w: activation issue DEVICE", errUsage)
		}
		resp, err := a.do(ctx, http.MethodPost, "/api/v1/activation", map[string]string{"device": rest[2]})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var ic core.IssuedCode
		if err := json.NewDecoder(resp.Body).Decode(&ic); err != nil {
			return err
		}
		fmt.Fprintf(out, "device %s\nactivation code %s (one-time, shown once)\nid %s\nexpires %s\n", ic.Device, ic.ActivationCode, ic.ID, ic.ExpiresAt.Local().Format(time.DateTime))
		return nil
	case "activation issue-bulk":
		if len(rest) < 3 {
			return fmt.Errorf("%w: activation issue-bulk DEVICE...", errUsage)
		}
		resp, err := a.do(ctx, http.MethodPost, "/api/v1/activation/bulk", map[string][]string{"devices": rest[2:]})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(out, resp.Body)
		return err
	case "activation list":
		path := "/api/v1/activation"
		if len(rest) == 3 {
			path += "?device=" + url.QueryEscape(rest[2])
		}
		var codes []core.CodeView
		if err := a.getJSON(ctx, path, &codes); err != nil {
			return err
		}
		fmt.Fprintln(tw, "ID\tDEVICE\tSTATE\tCREATED\tEXPIRES")
		for _, c := range codes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Device, c.State, c.CreatedAt.Local().Format(time.DateTime), c.ExpiresAt.Local().Format(time.DateTime))
		}
		return nil
	case "activation revoke":
		if len(rest) != 3 {
			return fmt.Errorf("%w: activation revoke ID", errUsage)
		}
		resp, err := a.do(ctx, http.MethodDelete, "/api/v1/activation/"+rest[2], nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		fmt.Fprintf(out, "revoked activation code %s\n", rest[2])
		return nil
	case "devices", "devices list":
		var ds []struct {
			Name, Model, Line, Owner, SecurityProfile string
			AllowMRA                                  bool
		}
		if err := a.getJSON(ctx, "/api/v1/devices", &ds); err != nil {
			return err
		}
		fmt.Fprintln(tw, "NAME\tMODEL\tLINE\tOWNER\tPROFILE\tACTIVATION VIA MRA")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", d.Name, d.Model, d.Line, d.Owner, d.SecurityProfile, d.AllowMRA)
		}
		return nil
	case "keys rotate", "keys regen":
		regen := rest[1] == "regen"
		var v map[string]string
		resp, err := a.do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/keys/rotate?regen=%v", regen), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&v)
		if regen {
			fmt.Fprintf(out, "new signing key %s is active; tokens signed by the previous keys no longer work\n", v["kid"])
		} else {
			fmt.Fprintf(out, "new signing key %s is active; the previous key verifies until its tokens expire\n", v["kid"])
		}
		return nil
	}
	fs.Usage()
	return fmt.Errorf("%w: unknown admin command %q", errUsage, strings.Join(rest, " "))
}
