package logx

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Pion bridges pion's LoggerFactory (pion/turn, pion/ice) into log. pion
// logs events remote parties cause (failed handshakes, packets without
// permission) at Info to Error: they come down one level, Info to Debug,
// Warn to Info, Error to Warn; Trace is dropped. Each pion scope logs
// with the attribute pion=<scope>.
func Pion(log *slog.Logger) logging.LoggerFactory { return pionLogs{log} }

type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ l *slog.Logger }

func (p pionLogger) logf(level slog.Level, format string, args ...any) {
	if p.l.Enabled(context.Background(), level) {
		p.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (pionLogger) Trace(string)                        {}
func (pionLogger) Tracef(string, ...any)               {}
func (p pionLogger) Debug(msg string)                  { p.l.Debug(msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Info(msg string)                   { p.l.Debug(msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.logf(slog.LevelDebug, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.l.Info(msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.logf(slog.LevelInfo, format, args...) }
func (p pionLogger) Error(msg string)                  { p.l.Warn(msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.logf(slog.LevelWarn, format, args...) }
