package daemon

import (
	"errors"
	"log/slog"
	"time"

	"github.com/sandboxd/envd/internal/auth"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/execctx"
	"github.com/sandboxd/envd/internal/lifecycle"
	"github.com/sandboxd/envd/internal/reaper"
)

// lifecycleOptions wires the VM lifecycle from the configuration.
// /fsfreeze acts on "/" and /init sets the clock only inside a VM: on a
// developer machine (--isnotfc) either would hit the host itself.
func lifecycleOptions(cfg config.Config, log *slog.Logger, d *execctx.Defaults, t *auth.Token, rp *reaper.Reaper) lifecycle.Options {
	o := lifecycle.Options{
		Log:      log,
		Flavor:   cfg.Flavor,
		RunDir:   cfg.RunDir,
		IsNotFC:  cfg.IsNotFC,
		MMDSAddr: cfg.MMDSAddr,
		Defaults: d,
		Token:    t,
		// mount/umount fork through the reaper, the one waiter for children.
		RunCommand: helperRunner(rp, log),
		// Wrenn-Go's guard, kept for parity in the Wrenn flavour (BEHAVIOR.md 7.6).
		SingleThreadWhilePaused: cfg.Flavor.Name == config.Wrenn.Name,
	}
	if !cfg.IsNotFC {
		o.FreezeRoot = "/"
	} else {
		// Outside a VM the machine keeps its own time (and tests must
		// never move the test machine's clock).
		o.SetClock = func(time.Time) error { return errors.New("not in a VM: the clock is left alone") }
	}
	return o
}
