package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/edge"
	"github.com/edgeway/edgeway/internal/reload"
)

// Reloaded is a configuration read again for a reload (SIGHUP): the tiers'
// configs, as their files and the process's flags give them, and the files
// they came from (for the log). A nil config leaves its tier as it is.
type Reloaded struct {
	Core     *core.Config
	CoreFile string
	Edge     *edge.Config
	EdgeFile string
}

// Reload reads the configuration again with load and applies to the live
// node what may change without dropping a connection (core.LiveFields,
// edge.LiveFields: log_level, drain_timeout, the certificate files read
// again). It is all or nothing up to the point of applying: when load
// fails, or a config does not pass the checks the tier makes at start
// (core.New, edge.New), nothing changes, one ERROR names the file and the
// problem, and edgeway_config_reload_total{result="error"} counts it. A
// field that differs but needs a restart (listen addresses, the store,
// ACME, …) keeps its old value and gets one WARN naming it. Reloads are
// serialized; Reload is safe while the node serves.
func (n *Node) Reload(ctx context.Context, load func() (Reloaded, error)) (reload.Changes, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	ch, err := n.reload(ctx, load)
	n.reloadMetrics.Done(err, time.Now())
	if err != nil {
		n.log.Error("config reload failed: the node keeps running with the configuration it had", "err", err)
		return reload.Changes{}, err
	}
	for _, f := range ch.Restart {
		n.log.Warn("config reload: this field changed but needs a restart; the running value is kept", "field", f)
	}
	n.log.Info("config reloaded", "applied", ch.Applied, "restart_required", ch.Restart, "log_level", n.level().String())
	return ch, nil
}

func (n *Node) reload(ctx context.Context, load func() (Reloaded, error)) (reload.Changes, error) {
	r, err := load()
	if err != nil {
		return reload.Changes{}, err
	}
	// Check everything before changing anything.
	var ccfg core.Config
	var ecfg edge.Config
	if n.Core != nil && r.Core != nil {
		if ccfg, err = n.Core.CheckReload(*r.Core); err != nil {
			return reload.Changes{}, fmt.Errorf("%s: %w", fileName(r.CoreFile, "core"), err)
		}
	}
	if n.Edge != nil && r.Edge != nil {
		e := *r.Edge
		if n.Core != nil {
			// As New: an edge assembled with its core follows the MRA
			// port the core serves.
			followMRA(&e, n.mraConfigured, n.mraBound, n.log)
		}
		if ecfg, err = n.Edge.CheckReload(e); err != nil {
			return reload.Changes{}, fmt.Errorf("%s: %w", fileName(r.EdgeFile, "edge"), err)
		}
	}
	var ch reload.Changes
	var errs []error
	level := slog.Level(127)
	if n.Core != nil && r.Core != nil {
		c, err := n.Core.ApplyReload(ccfg)
		ch.Merge("core.", c)
		errs = append(errs, err)
		l, _ := reload.ParseLogLevel(ccfg.LogLevel)
		level = min(level, l)
	}
	if n.Edge != nil && r.Edge != nil {
		c, err := n.Edge.ApplyReload(ecfg)
		ch.Merge("edge.", c)
		errs = append(errs, err)
		l, _ := reload.ParseLogLevel(ecfg.LogLevel)
		level = min(level, l)
	}
	if level != 127 && n.setLevel != nil {
		// Both tiers in one process: the more verbose of their levels.
		n.setLevel(level)
	}
	return ch, errors.Join(errs...)
}

// level is the process's log level as the node last set it, or as its
// logger reports it.
func (n *Node) level() slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if n.log.Enabled(context.Background(), l) {
			return l
		}
	}
	return slog.LevelError + 4
}

func fileName(file, tier string) string {
	if file == "" {
		return tier + " config (flags only)"
	}
	return tier + " config " + file
}
