// Command edgeway runs and administers Edgeway: the core and edge tiers, a
// one-command quickstart on loopback, the development PKI, the admin CLI
// and a simulated phone. Run `edgeway help` for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/internal/logx"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, out io.Writer) error
}

func commands() []command {
	return []command{
		{"quickstart", "run core, edge on loopback with a dev PKI and demo phones", runQuickstart},
		{"core", "run a core node (OAuth server, SIP registrar)", runCore},
		{"edge", "run an edge node (onboarding proxy, SIP/TLS front)", runEdge},
		{"pki", "pki init: create a development CA and certificates", runPKI},
		{"admin", "administer a running core over its HTTPS API", runAdmin},
		{"phone", "a simulated phone: onboard, register, refresh, un-register", runPhone},
		{"onboard", "redeem an activation code and print the tokens as JSON", runOnboard},
		{"bench", "load-test: onboard, register or call with many simulated phones", runBench},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: edgeway <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n`edgeway <command> -h` lists a command's flags.")
}

// errUsage marks errors caused by bad arguments (exit status 2).
var errUsage = errors.New("usage")

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage(os.Stdout)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands() {
		if c.name == os.Args[1] {
			err := c.run(ctx, os.Args[2:], os.Stdout)
			switch {
			case err == nil, errors.Is(err, flag.ErrHelp):
				return
			case errors.Is(err, errUsage):
				fmt.Fprintln(os.Stderr, "edgeway:", err)
				os.Exit(2)
			default:
				fmt.Fprintln(os.Stderr, "edgeway:", err)
				os.Exit(1)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "edgeway: unknown command %q\n\n", os.Args[1])
	usage(os.Stderr)
	os.Exit(2)
}

// procLevel and sipLevel are the levels of the process logger and of
// sipgo's: LevelVars, so that a configuration reload (SIGHUP, log_level)
// changes them on the running process (setLogLevel).
var procLevel, sipLevel slog.LevelVar

// newLogger builds the process logger on stderr (text or JSON), redacting
// secrets, and sets it as the default for sipgo too. Its level is
// procLevel, which setLogLevel changes later.
func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: log level %q (debug, info, warn, error)", errUsage, level)
	}
	h, err := logx.NewHandler(os.Stderr, &procLevel, format)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	setLogLevel(lv)
	log := slog.New(h)
	slog.SetDefault(log)
	// Once per process: sipgo reads it from its own goroutines without a
	// lock, so it must be set before any of them run. The handler
	// redacts: sipgo dumps unparsable messages, tokens and all.
	sipLoggerOnce.Do(func() {
		sh, _ := logx.NewHandler(os.Stderr, &sipLevel, format)
		sip.SetDefaultLogger(slog.New(sh).With("component", "sipgo"))
	})
	return log, nil
}

// setLogLevel sets the process's log level. sipgo's transport logs
// through a process-wide default logger (set once, in newLogger: see
// STYLE.md) and warns about its own connection bookkeeping; it keeps only
// its errors unless debugging.
func setLogLevel(lv slog.Level) {
	procLevel.Set(lv)
	if lv <= slog.LevelDebug {
		sipLevel.Set(lv)
	} else {
		sipLevel.Set(max(lv, slog.LevelError))
	}
}

var sipLoggerOnce sync.Once

// logFlags adds --log-level and --log-format to fs.
func logFlags(fs *flag.FlagSet) (level, format *string) {
	return fs.String("log-level", "info", "log level: debug, info, warn, error"),
		fs.String("log-format", "text", "log format: text or json")
}
