package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/edgeway/edgeway/core"
)

// Trust stores (S-8: phone-edge-trust, S-11: tomcat-trust) and the OAuth
// signing keys.
func trustCmds() []adminCmd {
	const stores = core.TrustTomcat + "|" + core.TrustPhoneEdge
	return []adminCmd{
		{path: []string{"trust", "upload"}, args: "--store " + stores + " FILE.pem",
			summary: "add the PEM certificates in FILE to a trust store", run: trustUpload},
		{path: []string{"trust", "list"}, args: "[--store S]", summary: "subject, issuer, expiry, SHA-256 fingerprint", run: trustList},
		{path: []string{"trust", "delete"}, args: "--store S FINGERPRINT", summary: "remove an uploaded certificate", run: trustDelete},
		{path: []string{"keys", "rotate"}, summary: "new signing key; old tokens stay valid until they expire", run: keysRotate(false)},
		{path: []string{"keys", "regen"}, summary: "new signing key; old tokens stop working now (R-1)", run: keysRotate(true)},
	}
}

// storeFlags are the flags of the trust commands: --store.
func storeFlags(a *adminClient) (*flag.FlagSet, *string) {
	fs := a.flags()
	return fs, fs.String("store", "", "trust store: "+core.TrustTomcat+" or "+core.TrustPhoneEdge)
}

func trustUpload(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs, store := storeFlags(a)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *store == "" {
		return a.usage("trust upload needs --store")
	}
	pemBytes, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	resp, err := a.doRaw(ctx, http.MethodPost, "/api/v1/trust/"+url.PathEscape(*store), "application/x-pem-file", bytes.NewReader(pemBytes))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var added []core.TrustCertView
	if err := json.NewDecoder(resp.Body).Decode(&added); err != nil {
		return fmt.Errorf("admin API: trust upload: reading the answer: %w", err)
	}
	if len(added) == 0 {
		fmt.Fprintf(out, "%s: every certificate in %s is already in %s\n", *store, pos[0], *store)
		return nil
	}
	for _, c := range added {
		fmt.Fprintf(out, "added to %s: %s (issuer %s, expires %s)\n  sha256 %s\n", c.Store, c.Subject, c.Issuer, localTime(c.NotAfter), c.Fingerprint)
	}
	return nil
}

func trustList(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs, store := storeFlags(a)
	if _, err := a.parse(fs, args, 0, 0); err != nil {
		return err
	}
	path := "/api/v1/trust"
	if *store != "" {
		path += "?store=" + url.QueryEscape(*store)
	}
	var certs []core.TrustCertView
	if err := a.getJSON(ctx, path, &certs); err != nil {
		return err
	}
	tw := newTable(out, "STORE", "SUBJECT", "ISSUER", "EXPIRES", "FINGERPRINT", "SOURCE")
	for _, c := range certs {
		row(tw, c.Store, c.Subject, c.Issuer, localTime(c.NotAfter), c.Fingerprint, c.Source)
	}
	return tw.Flush()
}

func trustDelete(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
	fs, store := storeFlags(a)
	pos, err := a.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *store == "" {
		return a.usage("trust delete needs --store")
	}
	// Accept the colon-separated upper-case form other tools print.
	fp := strings.ToLower(strings.ReplaceAll(pos[0], ":", ""))
	if err := a.call(ctx, http.MethodDelete, "/api/v1/trust/"+url.PathEscape(*store)+"/"+url.PathEscape(fp), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "deleted %s from %s\n", fp, *store)
	return nil
}

func keysRotate(regen bool) func(context.Context, *adminClient, []string, io.Writer) error {
	return func(ctx context.Context, a *adminClient, args []string, out io.Writer) error {
		if _, err := a.parse(nil, args, 0, 0); err != nil {
			return err
		}
		var v map[string]string
		if err := a.call(ctx, http.MethodPost, fmt.Sprintf("/api/v1/keys/rotate?regen=%v", regen), nil, &v); err != nil {
			return err
		}
		if regen {
			fmt.Fprintf(out, "new signing key %s is active; tokens signed by the previous keys no longer work\n", v["kid"])
		} else {
			fmt.Fprintf(out, "new signing key %s is active; the previous key verifies until its tokens expire\n", v["kid"])
		}
		return nil
	}
}
