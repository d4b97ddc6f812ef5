package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/internal/media"
	"github.com/edgeway/edgeway/internal/quickstart"
	"github.com/edgeway/edgeway/mtls"
)

// phoneFlags describe one simulated phone.
type phoneFlags struct {
	conn                       connFlags
	edge, sip, serverName      string
	srv, resolver              string
	sipPort                    int
	keepAlive                  time.Duration
	device, line, domain, code string
	username, password         string
	onPrem                     bool
	expires                    int
	call                       string
	answer                     bool
	talk                       time.Duration
	callWait                   time.Duration
	codeGiven                  bool // --code on the command line: onboard with it, whatever is stored
	deviceGrantFlag            bool // --device-grant: onboard with RFC 8628 (phone_devicegrant.go)
	state                      string
	store                      *phoneStore // nil: tokens are not kept
}

func (p *phoneFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.conn.quickstart, "quickstart", "", "quickstart.json to take addresses, CA, line and code from")
	fs.StringVar(&p.conn.ca, "ca", "", "CA certificate (PEM) that verifies the edge")
	fs.StringVar(&p.edge, "edge", "", "edge HTTPS base URLs, comma-separated in the order to try, e.g. https://10.77.2.11:8443,https://10.77.2.12:8443")
	fs.StringVar(&p.sip, "sip", "", "edge SIP/TLS addresses, comma-separated, in the order of --edge, e.g. 10.77.2.11:5061,10.77.2.12:5061")
	fs.StringVar(&p.srv, "srv", "", "find the edges in the _collab-edge._tls.DOMAIN SRV records instead of --edge/--sip: HTTPS at each target:port in priority and weight order (RFC 2782), SIP at the target on --sip-port")
	fs.StringVar(&p.resolver, "resolver", "", "DNS server HOST:PORT for --srv and for the edges' names (default: the system's resolver)")
	fs.IntVar(&p.sipPort, "sip-port", bench.DefaultEdgeSIPPort, "SIP/TLS port of the edges found with --srv (the SRV record names only the HTTPS port)")
	fs.DurationVar(&p.keepAlive, "keepalive", bench.DefaultKeepAlive, "CRLF keep-alive interval on the registered flow (RFC 5626 §4.4.1; shortened by the registrar's Flow-Timer); when the flow fails the phone re-registers through the next edge; negative: no keep-alives")
	fs.StringVar(&p.serverName, "server-name", "", "name to verify in the edge certificate (default: the edges' HTTPS host when they share one, else each edge's own)")
	fs.StringVar(&p.device, "device", "", "device name, e.g. SEP001122334401")
	fs.StringVar(&p.line, "line", "", "directory number (default: from quickstart.json)")
	fs.StringVar(&p.domain, "domain", "", "SIP domain (default: from quickstart.json, else the --srv domain)")
	fs.StringVar(&p.code, "code", "", "activation code: onboard with it even when the device has stored tokens (default: the stored tokens, else the code from quickstart.json)")
	fs.BoolVar(&p.deviceGrantFlag, "device-grant", false, "onboard with the device grant (RFC 8628) instead of an activation code: print the user_code and the page where an administrator approves it (verification_uri_complete, also as a QR code), then poll until approved")
	fs.StringVar(&p.username, "username", "", "on-prem soft client: log in with this user instead of a code (S-18: never over MRA)")
	fs.StringVar(&p.password, "password", "", "password for --username")
	fs.BoolVar(&p.onPrem, "on-prem", false, "talk to the core directly (HTTPS and SIP Phone OAuth port) instead of the edge")
	fs.IntVar(&p.expires, "expires", 600, "REGISTER expiry to ask for, seconds")
	fs.StringVar(&p.call, "call", "", "call this line with SRTP media through the edge's TURN relay, then hang up")
	fs.BoolVar(&p.answer, "answer", false, "answer incoming calls with SRTP media through the edge's TURN relay")
	fs.DurationVar(&p.talk, "talk", 10*time.Second, "how long a call's media runs (--call, --answer)")
	fs.DurationVar(&p.callWait, "call-wait", 10*time.Second, "--call: while the callee is not registered (404, 480), try again every 500 ms for up to this long, e.g. when its --answer phone was started a moment ago; 0: once")
	fs.StringVar(&p.state, "state", "", "directory to keep each device's tokens in, DEVICE.json (0600), reused on the next start instead of the one-time code "+
		"(default: phones/ beside quickstart.json; \"none\": keep nothing)")
}

func (p *phoneFlags) phone(ctx context.Context, log *slog.Logger) (*bench.Phone, error) {
	info, err := p.conn.resolve()
	if err != nil {
		return nil, err
	}
	if p.edge == "" && p.srv == "" {
		p.edge, p.sip = info.EdgeHTTPS, info.EdgeSIP
		if p.onPrem {
			p.edge, p.sip = info.CoreHTTPS, info.CorePhoneOAuth
		}
	}
	if p.domain == "" {
		p.domain = info.Domain
	}
	if p.domain == "" {
		p.domain = p.srv // the service domain the edges were found in (S-17)
	}
	var dev quickstart.Device
	for _, d := range info.Devices {
		if d.Name == p.device {
			dev = d
		}
	}
	if p.line == "" {
		p.line = dev.Line
	}
	p.codeGiven = p.code != "" || p.deviceGrantFlag
	if p.code == "" && p.username == "" {
		p.code = dev.ActivationCode
	}
	if p.username != "" && p.password == "" {
		for _, u := range info.Users {
			if u.Username == p.username {
				p.password = u.Password
			}
		}
	}
	if p.device == "" || p.line == "" || (p.srv == "" && (p.edge == "" || p.sip == "")) {
		return nil, fmt.Errorf("%w: need --device and --line, --edge and --sip or --srv (or --quickstart)", errUsage)
	}
	var resolver *net.Resolver
	if p.resolver != "" {
		if _, _, err := net.SplitHostPort(p.resolver); err != nil {
			return nil, fmt.Errorf("%w: --resolver HOST:PORT: %v", errUsage, err)
		}
		resolver = bench.NewResolver(p.resolver)
	}
	edges, err := p.edges(ctx, resolver)
	if err != nil {
		return nil, err
	}
	for _, e := range edges {
		// Edges by name (from --srv, or given so): the phone resolves them,
		// with the system's resolver when --resolver names none.
		if host, _, err := net.SplitHostPort(e.SIP); err == nil && net.ParseIP(host) == nil && resolver == nil {
			resolver = net.DefaultResolver
		}
	}
	pool, err := caPool(p.conn.ca)
	if err != nil {
		return nil, err
	}
	cfg := bench.PhoneConfig{Device: p.device, Line: p.line, Domain: p.domain, Edges: edges, Resolver: resolver,
		ServerName: p.serverName, RootCAs: pool, Expires: p.expires, KeepAlive: p.keepAlive, Log: log}
	if p.state == "" && p.conn.quickstart != "" {
		p.state = filepath.Join(filepath.Dir(p.conn.quickstart), "phones")
	}
	if p.state != "" && p.state != "none" {
		if p.store, err = openPhoneStore(p.state, p.device); err != nil {
			return nil, err
		}
		cfg.OnTokens = p.store.Save
	}
	ph, err := bench.NewPhone(cfg)
	if err != nil {
		p.store.Close()
		p.store = nil
		return nil, err
	}
	return ph, nil
}

// close releases the device's token file.
func (p *phoneFlags) close() { p.store.Close() }

// edges are the phone's edges: from --srv, or --edge and --sip paired in
// order.
func (p *phoneFlags) edges(ctx context.Context, resolver *net.Resolver) ([]bench.Edge, error) {
	if p.srv != "" {
		if p.edge != "" || p.sip != "" {
			return nil, fmt.Errorf("%w: --srv finds the edges; leave out --edge and --sip", errUsage)
		}
		return bench.LookupEdges(ctx, resolver, p.srv, p.sipPort)
	}
	urls, sips := splitList(p.edge), splitList(p.sip)
	if len(urls) != len(sips) {
		return nil, fmt.Errorf("%w: --edge names %d edges and --sip %d; give both in the same order", errUsage, len(urls), len(sips))
	}
	edges := make([]bench.Edge, len(urls))
	for i := range urls {
		edges[i] = bench.Edge{HTTPS: urls[i], SIP: sips[i]}
	}
	return edges, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// obtain gives the phone its tokens: the stored ones when the device has
// been here before (refreshed when there is a refresh token, so a revoked
// family shows at once and the TURN credentials are fresh), else a login
// or the activation code. note hears what was done.
func (p *phoneFlags) obtain(ctx context.Context, ph *bench.Phone, note io.Writer) (t bench.Tokens, resumed bool, err error) {
	if p.store != nil && !p.codeGiven {
		saved, ok, err := p.store.Load()
		if err != nil {
			return bench.Tokens{}, false, err
		}
		switch {
		case ok && saved.RefreshToken != "":
			ph.SetTokens(saved)
			nt, err := ph.Refresh(ctx)
			if err == nil {
				fmt.Fprintf(note, "resumed %s with its stored refresh token (%s): access token valid %ds\n", p.device, p.store.path, nt.ExpiresIn)
				return nt, true, nil
			}
			var te *bench.TokenError
			if !errors.As(err, &te) || te.Code != "invalid_grant" {
				return bench.Tokens{}, false, err // not a refusal: keep the tokens for the next try
			}
			// Revoked (a replayed refresh token, RFC 9700 §4.14.2; RFC 7009;
			// an administrator) or expired: the family is gone for good.
			fmt.Fprintf(note, "the stored refresh token of %s was refused (%s: %s); the token family is revoked or expired, so it is forgotten\n",
				p.device, te.Code, te.Description)
			if err := p.store.Forget(); err != nil {
				return bench.Tokens{}, false, err
			}
			ph.SetTokens(bench.Tokens{})
			if p.username == "" && p.code == "" {
				return bench.Tokens{}, false, fmt.Errorf("%s has no usable tokens and no activation code: issue one (edgeway admin activation issue %s) and pass --code, "+
					"or run quickstart again for fresh demo codes", p.device, p.device)
			}
			fmt.Fprintf(note, "onboarding %s again with a fresh credential\n", p.device)
		case ok && time.Until(saved.Expiry()) > 30*time.Second:
			ph.SetTokens(saved)
			fmt.Fprintf(note, "resumed %s with its stored access token (%s), valid %s more; no refresh token to rotate\n",
				p.device, p.store.path, time.Until(saved.Expiry()).Round(time.Second))
			return saved, true, nil
		}
	}
	if p.deviceGrantFlag {
		t, err = p.deviceGrant(ctx, ph, note)
		return t, false, err
	}
	if p.username != "" {
		t, err = ph.Login(ctx, p.username, p.password)
		return t, false, err
	}
	if p.code == "" {
		return bench.Tokens{}, false, fmt.Errorf("%w: need --code (or --username/--password on premises)", errUsage)
	}
	t, err = ph.Onboard(ctx, p.code)
	var te *bench.TokenError
	if errors.As(err, &te) && te.Code == "invalid_grant" && p.store != nil {
		return t, false, fmt.Errorf("%w (no stored tokens for %s in %s: issue a fresh code with edgeway admin activation issue %s, or run quickstart again)",
			err, p.device, filepath.Dir(p.store.path), p.device)
	}
	return t, false, err
}

func runPhone(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("edgeway phone", flag.ContinueOnError)
	var pf phoneFlags
	pf.register(fs)
	level, format := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := newLogger(*level, *format)
	if err != nil {
		return err
	}
	ph, err := pf.phone(ctx, log)
	if err != nil {
		return err
	}
	defer pf.close()
	defer ph.Close()
	t, resumed, err := pf.obtain(ctx, ph, out)
	if err != nil {
		return err
	}
	if !resumed {
		fmt.Fprintf(out, "onboarded %s: access token valid %ds, refresh token %v\n", pf.device, t.ExpiresIn, t.RefreshToken != "")
	}
	if pf.call != "" {
		return placeCall(ctx, ph, pf, out)
	}
	if pf.answer {
		go ph.AnswerWithMedia(ctx, pf.talk, func(st media.Stats, err error) {
			if err != nil {
				fmt.Fprintf(out, "call media failed: %v\n", err)
				return
			}
			printStats(out, "received", st)
		})
	}
	err = ph.Run(ctx, func(e bench.Event) {
		fmt.Fprintf(out, "%s %-12s %s\n", e.At.Format("15:04:05"), e.Kind, e.Detail)
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func runOnboard(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("edgeway onboard", flag.ContinueOnError)
	var pf phoneFlags
	pf.register(fs)
	inf := fs.String("inf", "", "also append a sipp injection row `line;domain;Authorization: Bearer <token>` to this file (see bench/sipp)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ph, err := pf.phone(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer pf.close()
	defer ph.Close()
	t, _, err := pf.obtain(ctx, ph, os.Stderr)
	if err != nil {
		return err
	}
	if *inf != "" {
		f, err := os.OpenFile(*inf, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		_, werr := io.WriteString(f, sippRow(pf.line, pf.domain, t.AccessToken))
		if err := errors.Join(werr, f.Close()); err != nil {
			return err
		}
	}
	return json.NewEncoder(out).Encode(t)
}

// sippRow is a sipp injection-file row for bench/sipp and bench/peers
// scenarios: line;domain;Authorization header.
func sippRow(line, domain, accessToken string) string {
	return fmt.Sprintf("%s;%s;Authorization: Bearer %s\n", line, domain, accessToken)
}

func runPKI(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		return fmt.Errorf("%w: edgeway pki init --dir DIR [--core-name N]... [--edge-name N]... [--edge-public-name N]... [--force]", errUsage)
	}
	fs := flag.NewFlagSet("edgeway pki init", flag.ContinueOnError)
	var o mtls.DevPKIOptions
	fs.StringVar(&o.Dir, "dir", "edgeway-data/pki", "output directory")
	fs.Func("core-name", "SAN of the core's Tomcat certificate (repeatable; default core.edgeway.test, localhost, 127.0.0.1, 127.0.0.2)", func(s string) error { o.CoreNames = append(o.CoreNames, s); return nil })
	fs.Func("edge-name", "SAN of the edge's mTLS client certificate = its Expressway-C name (repeatable; default expc.edgeway.test)", func(s string) error { o.EdgeMTLSNames = append(o.EdgeMTLSNames, s); return nil })
	fs.Func("edge-public-name", "SAN of the edge's public certificate (repeatable; default edge.edgeway.test, localhost, 127.0.0.1)", func(s string) error { o.EdgePublicNames = append(o.EdgePublicNames, s); return nil })
	fs.BoolVar(&o.Force, "force", false, "regenerate even when the files exist")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	p, err := mtls.InitDevPKI(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "development PKI in %s\n", o.Dir)
	for _, l := range [][2]string{
		{"CA certificate", p.CACert}, {"core (Tomcat) certificate", p.CoreCert}, {"edge mTLS certificate", p.EdgeMTLSCert},
		{"edge public certificate", p.EdgePublicCert}, {"tomcat-trust (S-11)", p.TomcatTrust}, {"Phone-Edge-Trust (S-8)", p.PhoneEdgeTrust},
	} {
		fmt.Fprintf(out, "  %-28s %s\n", l[0], l[1])
	}
	return nil
}

// placeCall registers, calls pf.call with media for pf.talk, prints the
// media statistics and un-registers.
func placeCall(ctx context.Context, ph *bench.Phone, pf phoneFlags, out io.Writer) error {
	res, err := ph.RegisterAnyEdge(ctx, pf.expires)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	defer func() { _ = ph.Unregister(context.WithoutCancel(ctx)) }()
	path := "via the edge's TURN relay"
	if ph.Tokens().TURN == nil {
		path = "from this phone's own socket: no TURN credentials on premises"
	}
	fmt.Fprintf(out, "calling %s for %s (SRTP %s)…\n", pf.call, pf.talk, path)
	deadline, said := time.Now().Add(pf.callWait), false
	for {
		st, err := ph.CallWithMedia(ctx, pf.call, pf.talk)
		var re *bench.RefusedError
		if errors.As(err, &re) && (re.Status == 404 || re.Status == 480) && time.Now().Before(deadline) {
			if !said {
				fmt.Fprintf(out, "%s is not reachable yet (%d %s); trying again for up to %s\n", pf.call, re.Status, re.Reason, time.Until(deadline).Round(time.Second))
				said = true
			}
			t := time.NewTimer(500 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		if err != nil {
			return err
		}
		printStats(out, "received", st)
		return nil
	}
}

func printStats(out io.Writer, what string, st media.Stats) {
	fmt.Fprintf(out, "media %s: sent %d, received %d, played %d, lost %d, reordered %d, duplicates %d, auth failures %d, jitter %.2f ms\n",
		what, st.Sent, st.Received, st.PlayedOut, st.Lost, st.Reordered, st.Duplicates, st.AuthFailures, st.JitterMs)
}
