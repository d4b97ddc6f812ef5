package logx

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// pion's levels come down one step (remote parties cause them), Trace is
// dropped, and each line names its pion scope.
func TestPionLevels(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := Pion(log).NewLogger("turn")
	l.Trace("trace-line")
	l.Tracef("tracef-%d", 1)
	l.Debugf("debugf-%d", 2)
	l.Info("info-line")
	l.Infof("infof-%d", 3)
	l.Warn("warn-line")
	l.Warnf("warnf-%d", 4)
	l.Error("error-line")
	l.Errorf("errorf-%d", 5)
	want := map[string]string{
		"debugf-2": "DEBUG", "info-line": "DEBUG", "infof-3": "DEBUG",
		"warn-line": "INFO", "warnf-4": "INFO", "error-line": "WARN", "errorf-5": "WARN",
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for _, line := range lines {
		if strings.Contains(line, "trace") {
			t.Errorf("trace logged: %s", line)
		}
		if !strings.Contains(line, "pion=turn") {
			t.Errorf("no pion scope: %s", line)
		}
		found := false
		for msg, level := range want {
			if strings.Contains(line, "msg="+msg) {
				found = true
				if !strings.Contains(line, "level="+level) {
					t.Errorf("%s logged as %s, want level %s", msg, line, level)
				}
			}
		}
		if !found {
			t.Errorf("unexpected line: %s", line)
		}
	}
	// A level the logger does not enable is not even formatted.
	buf.Reset()
	quiet := Pion(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))).NewLogger("ice")
	quiet.Infof("x %d", 1)
	quiet.Warnf("y %d", 2)
	if buf.Len() != 0 {
		t.Errorf("below WARN logged: %s", buf.String())
	}
}
