package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/fsutil"
	"github.com/sandboxd/envd/internal/safe"
)

// Limits of one /init volumeMounts run (BEHAVIOR.md 7.4, 10.6).
const (
	volumeBudget   = 10 * time.Second
	unmountBudget  = 2 * time.Second
	maxVolumes     = 64
	maxMountOutput = 4 << 10
	maxMountinfo   = 4 << 20
)

// nfsOptions disable attribute and lookup caching and write synchronously,
// so a pause/resume cannot leave stale cached state (PROTOCOL.md 7.3).
const nfsOptions = "fg,hard,sync,rsize=1048576,wsize=1048576,mountproto=tcp,mountport=2049,proto=tcp,port=2049,nfsvers=3,noacl,noac,lookupcache=none"

// volumes mounts NFS volumes synchronously, all in parallel within one
// budget, one run at a time. A ledger of path → lifecycle id keeps a mount
// across resumes of the same lifecycle and forces a remount when it changes.
type volumes struct {
	mountCmd, umountCmd string
	run                 func(ctx context.Context, name string, args ...string) (string, error)
	log                 *slog.Logger
	lock                chan struct{}     // one run at a time
	ledger              map[string]string // guarded by lock
}

func newVolumes(mountCmd, umountCmd string, run func(context.Context, string, ...string) (string, error), log *slog.Logger) *volumes {
	return &volumes{mountCmd: mountCmd, umountCmd: umountCmd, run: run, log: log,
		lock: make(chan struct{}, 1), ledger: map[string]string{}}
}

func (v *volumes) mount(ctx context.Context, lifecycleID string, vms []VolumeMount) error {
	if len(vms) > maxVolumes {
		return errs.New(errs.Invalid, "too many volume mounts (%d, at most %d)", len(vms), maxVolumes)
	}
	for _, m := range vms {
		if m.Target == "" || !filepath.IsAbs(m.Path) {
			return errs.New(errs.Invalid, "invalid volume mount: nfs_target must be set and path absolute (got %q on %q)", m.Target, m.Path)
		}
	}
	select {
	case v.lock <- struct{}{}:
	case <-ctx.Done():
		return errs.New(errs.Unavailable, "volume mount in progress")
	}
	defer func() { <-v.lock }()

	// The budget, not the caller, bounds the run: a mount killed halfway
	// because a retrying host timed out would only be redone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), volumeBudget)
	defer cancel()
	mounted := mountPoints()
	results := make([]error, len(vms))
	var wg sync.WaitGroup
	for i, m := range vms {
		keep := v.ledger[m.Path] == lifecycleID && mounted[m.Path]
		if keep {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer safe.Recover(v.log, "volume mount")
			results[i] = v.one(ctx, m, mounted[m.Path])
		}()
	}
	wg.Wait()
	var failed []error
	for i, m := range vms {
		if results[i] != nil {
			failed = append(failed, results[i])
			delete(v.ledger, m.Path)
			continue
		}
		v.ledger[m.Path] = lifecycleID
	}
	if len(failed) > 0 {
		return errs.New(errs.Invalid, "%v", errors.Join(failed...))
	}
	return nil
}

// one replaces a stale mount (force, then lazy: an open customer file keeps
// a forced unmount busy, 11.3 E29) and mounts the volume.
func (v *volumes) one(ctx context.Context, m VolumeMount, stale bool) error {
	if stale {
		uctx, cancel := context.WithTimeout(ctx, unmountBudget)
		_, err := v.run(uctx, v.umountCmd, "--force", m.Path)
		cancel()
		if err != nil {
			uctx, cancel := context.WithTimeout(ctx, unmountBudget)
			_, err = v.run(uctx, v.umountCmd, "--lazy", m.Path)
			cancel()
		}
		if err != nil {
			return fmt.Errorf("cannot unmount stale volume on %s: %v", m.Path, err)
		}
	}
	if err := os.MkdirAll(m.Path, 0o755); err != nil {
		return fmt.Errorf("cannot create volume mount point %s: %v", m.Path, err)
	}
	out, err := v.run(ctx, v.mountCmd, "-v", "-t", "nfs", "-o", nfsOptions, m.Target, m.Path)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %s", volumeBudget)
		}
		msg := fmt.Sprintf("cannot mount volume %s on %s: %v", m.Target, m.Path, err)
		if out != "" {
			msg += ": " + strings.Join(strings.Fields(out), " ")
		}
		return errors.New(msg)
	}
	return nil
}

// noRunner is the RunCommand of Options that set none: envd runs helpers
// only through the runner the daemon passes (it forks through the reaper).
func noRunner(_ context.Context, name string, _ ...string) (string, error) {
	return "", errs.New(errs.Unavailable, "cannot run %s: no helper runner configured", name)
}

// mountPoints returns the mount points of this mount namespace.
func mountPoints() map[string]bool {
	b, err := readBounded("/proc/self/mountinfo", maxMountinfo)
	out := map[string]bool{}
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out[fsutil.UnescapeMountinfo(f[4])] = true
		}
	}
	return out
}
