package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgeway/edgeway/internal/quickstart"
)

// The admin CLI is a table of subcommands, one file per area
// (admin_params.go, admin_nodes.go, …); runAdmin picks the entry whose
// path matches the words given, and the usage text is generated from the
// table.

// adminCmd is one `edgeway admin` subcommand.
type adminCmd struct {
	path    []string   // the words that select it, e.g. {"device", "set"}
	aliases [][]string // other spellings, e.g. {{"devices"}}
	args    string     // what follows the path, for the usage line
	summary string
	noToken bool // authenticates by itself (login): needs no --token-file
	run     func(ctx context.Context, a *adminClient, args []string, out io.Writer) error
}

func (c *adminCmd) usageLine() string {
	return strings.TrimSpace(strings.Join(c.path, " ") + " " + c.args)
}

// adminArea is a group of subcommands shown together in the usage text.
type adminArea struct {
	title string
	cmds  []adminCmd
}

// adminAreas is the table of subcommands, in the order of the chapter's
// task flow.
func adminAreas() []adminArea {
	return []adminArea{
		{"enterprise parameters (S-7, S-9, S-10, S-13)", paramsCmds()},
		{"core nodes, the CallManager service, SIP OAuth mode (S-11, S-13, S-14)", nodeCmds()},
		{"Expressway-C entries and the signalling path (S-12)", expresswayCmds()},
		{"phone security profiles (S-5, S-15, S-16)", profileCmds()},
		{"devices (S-5, S-15, S-17, S-19)", deviceCmds()},
		{"activation codes", activationCmds()},
		{"users' refresh tokens (R-2)", familyCmds()},
		{"device codes (RFC 8628 device grant)", deviceCodeCmds()},
		{"trust stores and signing keys (S-8, S-11, R-1)", trustCmds()},
		{"admin accounts, API tokens, audit log", authCmds()},
	}
}

func adminUsage() string {
	var b strings.Builder
	b.WriteString("usage: edgeway admin [--quickstart FILE | --core URL --token-file F --ca FILE] <command>\n")
	const width = 36
	for _, area := range adminAreas() {
		fmt.Fprintf(&b, "\n%s:\n", area.title)
		for _, c := range area.cmds {
			line := c.usageLine()
			if len(line) > width {
				fmt.Fprintf(&b, "  %s\n  %-*s %s\n", line, width, "", c.summary)
			} else {
				fmt.Fprintf(&b, "  %-*s %s\n", width, line, c.summary)
			}
		}
	}
	b.WriteString("\n`edgeway admin <command> -h` lists a command's flags.\n\nflags:\n")
	return b.String()
}

// findAdminCmd returns the subcommand whose path (or alias) is the longest
// prefix of words, and the words after it.
func findAdminCmd(words []string) (*adminCmd, []string, error) {
	var best *adminCmd
	n := 0
	for _, area := range adminAreas() {
		for i := range area.cmds {
			c := &area.cmds[i]
			for _, name := range append([][]string{c.path}, c.aliases...) {
				if len(name) > n && len(words) >= len(name) && slices.Equal(words[:len(name)], name) {
					best, n = c, len(name)
				}
			}
		}
	}
	if best != nil {
		return best, words[n:], nil
	}
	if isAdminGroup(words[0]) {
		var subs []string
		for _, area := range adminAreas() {
			for _, c := range area.cmds {
				if c.path[0] == words[0] {
					subs = append(subs, strings.Join(c.path[1:], " "))
				}
			}
		}
		return nil, nil, fmt.Errorf("%w: unknown admin command %q; %s takes %s", errUsage, strings.Join(words, " "), words[0], strings.Join(subs, ", "))
	}
	return nil, nil, fmt.Errorf("%w: unknown admin command %q", errUsage, strings.Join(words, " "))
}

// isAdminGroup reports whether word starts some subcommand's path.
func isAdminGroup(word string) bool {
	for _, area := range adminAreas() {
		for _, c := range area.cmds {
			if c.path[0] == word {
				return true
			}
		}
	}
	return false
}

func runAdmin(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("edgeway admin", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), adminUsage()); fs.PrintDefaults() }
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
	c, cmdArgs, err := findAdminCmd(rest)
	if err != nil {
		if !isAdminGroup(rest[0]) { // a known group's error lists its commands
			fs.Usage()
		}
		return err
	}
	a := &adminClient{cmd: c}
	if !wantsHelp(cmdArgs) {
		if err := a.connect(cf, !c.noToken); err != nil {
			return err
		}
	}
	return c.run(ctx, a, cmdArgs, out)
}

// wantsHelp reports whether args ask for a command's help.
func wantsHelp(args []string) bool {
	for _, s := range args {
		switch s {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// adminClient speaks the core's admin API for one subcommand.
type adminClient struct {
	base  string
	token string
	// basicUser and basicPass, when set, authenticate with HTTP Basic
	// instead of the bearer token (login).
	basicUser, basicPass string
	http                 *http.Client
	cmd                  *adminCmd // the command being run, for its usage line
}

// connect sets up the HTTPS client from the connection flags; the token
// file is read only if the command needs one.
func (a *adminClient) connect(cf connFlags, needToken bool) error {
	if cf.core == "" || (needToken && cf.tokenFile == "") {
		need := "--core and --token-file"
		if !needToken {
			need = "--core"
		}
		return fmt.Errorf("%w: edgeway admin %s needs %s (or --quickstart)", errUsage, a.cmd.usageLine(), need)
	}
	if needToken {
		tok, err := os.ReadFile(cf.tokenFile)
		if err != nil {
			return err
		}
		a.token = strings.TrimSpace(string(tok))
	}
	pool, err := caPool(cf.ca)
	if err != nil {
		return err
	}
	a.base = cf.core
	a.http = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	return nil
}

// apiError is a refusal from the admin API; Message is the API's own
// words (for a rule, they name it: "S-13: …").
type apiError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("admin API: %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// isNotFound reports whether err is the API's 404.
func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// do sends body as JSON (if not nil) and returns a 2xx response; any other
// status becomes an *apiError carrying the API's message.
func (a *adminClient) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	return a.doRaw(ctx, method, path, "application/json", rd)
}

// doRaw is do with a body of any content type.
func (a *adminClient) doRaw(ctx context.Context, method, path, contentType string, body io.Reader) (*http.Response, error) {
	if a.http == nil {
		return nil, fmt.Errorf("%w: admin: not connected", errUsage)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	if a.basicUser != "" {
		req.SetBasicAuth(a.basicUser, a.basicPass)
	} else {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
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
		return nil, &apiError{Method: method, Path: path, Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

// call sends body as JSON and decodes the answer into into (if not nil).
func (a *adminClient) call(ctx context.Context, method, path string, body, into any) error {
	resp, err := a.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if into == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("admin API: %s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

func (a *adminClient) getJSON(ctx context.Context, path string, into any) error {
	return a.call(ctx, http.MethodGet, path, nil, into)
}

// usage is a usage error (exit status 2) that shows the command's usage
// line.
func (a *adminClient) usage(format string, args ...any) error {
	return fmt.Errorf("%w: %s (usage: edgeway admin %s)", errUsage, fmt.Sprintf(format, args...), a.cmd.usageLine())
}

// flags returns an empty flag set for the command; parse reports its
// errors.
func (a *adminClient) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("edgeway admin "+strings.Join(a.cmd.path, " "), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses flags and positional arguments in any order, and checks
// that there are between min and max positional arguments (max < 0: no
// limit). -h prints the command's help and returns flag.ErrHelp.
func (a *adminClient) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	if fs == nil {
		fs = a.flags()
	}
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fmt.Fprintf(os.Stderr, "usage: edgeway admin %s\n\n%s\n", a.cmd.usageLine(), a.cmd.summary)
			n := 0
			fs.VisitAll(func(*flag.Flag) { n++ })
			if n > 0 {
				fmt.Fprintln(os.Stderr, "\nflags:")
				fs.PrintDefaults()
			}
			return nil, err
		}
		if err != nil {
			return nil, a.usage("%v", err)
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch {
	case len(pos) < min && min == max && min == 1:
		return nil, a.usage("%s needs an argument", strings.Join(a.cmd.path, " "))
	case len(pos) < min:
		return nil, a.usage("%s needs %d arguments", strings.Join(a.cmd.path, " "), min)
	case max >= 0 && len(pos) > max:
		return nil, a.usage("unexpected argument %q", pos[max])
	}
	return pos, nil
}

// setFlags names the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ", ") }
func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// newTable starts a table with its header row; the caller flushes it.
func newTable(out io.Writer, columns ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	return tw
}

// row writes one table row.
func row(tw io.Writer, cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(tw, strings.Join(s, "\t"))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
			c.quickstart = path
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
