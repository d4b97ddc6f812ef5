// Package logx sets up Edgeway's slog output and keeps secrets out of it:
// every handler it builds drops raw message dumps and masks bearer tokens
// and activation codes wherever they appear in an attribute (STYLE: "log
// with slog, never secrets").
package logx

import (
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
)

// NewHandler returns a text or JSON handler on w at level that redacts.
func NewHandler(w io.Writer, level slog.Leveler, format string) (slog.Handler, error) {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: ReplaceAttr}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.NewTextHandler(w, opts), nil
	case "json":
		return slog.NewJSONHandler(w, opts), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

// dumpKeys are attributes third-party code fills with whole messages
// (sipgo logs unparsable SIP under "data"): only their size is kept.
var dumpKeys = map[string]bool{"data": true, "msg_data": true, "body": true}

var secrets = regexp.MustCompile(`(?i)(bearer\s+|authorization:\s*bearer\s+|refresh_token=|access_token=|activation_code=|inline:)[A-Za-z0-9._~+/=%-]+`)

// Redact masks bearer tokens and token/code form values in s.
func Redact(s string) string {
	if !strings.ContainsAny(s, "=:") && !strings.Contains(strings.ToLower(s), "bearer") {
		return s
	}
	return secrets.ReplaceAllString(s, "${1}[redacted]")
}

// ReplaceAttr is the slog hook that applies the redaction.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if dumpKeys[a.Key] {
		return slog.String(a.Key, fmt.Sprintf("[%d bytes not logged]", len(a.Value.String())))
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if r := Redact(a.Value.String()); r != a.Value.String() {
			return slog.String(a.Key, r)
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if r := Redact(err.Error()); r != err.Error() {
				return slog.String(a.Key, r)
			}
		}
	}
	return a
}
