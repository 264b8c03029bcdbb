package daemon

import (
	"log/slog"
	"os"

	"github.com/sandboxd/envd/internal/cgroups"
	"github.com/sandboxd/envd/internal/config"
	"github.com/sandboxd/envd/internal/ports"
	"github.com/sandboxd/envd/internal/process"
)

// newCgroups builds the workload groups. envd protects itself from the
// OOM killer when it runs as root inside a VM; a developer run (--isnotfc)
// leaves the machine's scores alone.
func newCgroups(cfg config.Config, log *slog.Logger) (*cgroups.Manager, error) {
	return cgroups.New(cgroups.Options{
		Log:         log,
		Root:        cfg.CgroupRoot,
		Disabled:    cfg.NoCgroups,
		ProtectSelf: os.Geteuid() == 0 && !cfg.IsNotFC,
	})
}

// cgroupFDs adapts the manager to the process service's placement
// interface. While a group is frozen the child is born in envd's group
// instead of hanging envd in a clone that never reaches exec (E16).
type cgroupFDs struct{ m *cgroups.Manager }

func (a cgroupFDs) Place(k process.CgroupKind, start func(fd int, ok bool) error) error {
	switch k {
	case process.CgroupUser:
		return a.m.Place(cgroups.User, start)
	case process.CgroupPTY:
		return a.m.Place(cgroups.PTY, start)
	}
	return start(-1, false)
}

// newPorts builds the forwarder and starts it.
func newPorts(cfg config.Config, log *slog.Logger) (*ports.Forwarder, error) {
	f, err := ports.New(ports.Options{Log: log, ForwardAddr: cfg.ForwardAddr, Interval: cfg.PortScanInterval})
	if err != nil {
		return nil, err
	}
	f.Start()
	return f, nil
}
