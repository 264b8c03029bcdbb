package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
)

// ioctl numbers from linux/fs.h: _IOWR('X', 119|120, int).
const (
	ioctlFIFREEZE = 0xC0045877
	ioctlFITHAW   = 0xC0045878
)

// fsFreezer runs FIFREEZE/FITHAW on one mount point (BEHAVIOR.md 10.10).
// Both are idempotent: already frozen (EBUSY) and not frozen (EINVAL)
// count as success. Calls are serialised. A freeze whose caller gives up
// while waiting gets Unavailable (503); a thaw waits regardless, so a
// frozen live VM can always be thawed.
type fsFreezer struct {
	root string
	lock chan struct{} // serialises freeze and thaw
}

func newFSFreezer(root string) *fsFreezer {
	return &fsFreezer{root: root, lock: make(chan struct{}, 1)}
}

// FSFreeze freezes the root filesystem.
func (l *Lifecycle) FSFreeze(ctx context.Context) error {
	f := l.fs
	if f.root == "" {
		return errs.New(errs.Unsupported, "filesystem freeze is disabled (not running in a VM)")
	}
	select {
	case f.lock <- struct{}{}:
	case <-ctx.Done():
		return errs.New(errs.Unavailable, "filesystem freeze in progress")
	}
	defer func() { <-f.lock }()
	return f.ioctl(ioctlFIFREEZE, unix.EBUSY, "freeze")
}

// FSThaw thaws the root filesystem.
func (l *Lifecycle) FSThaw(context.Context) error {
	f := l.fs
	if f.root == "" {
		return errs.New(errs.Unsupported, "filesystem freeze is disabled (not running in a VM)")
	}
	f.lock <- struct{}{}
	defer func() { <-f.lock }()
	return f.ioctl(ioctlFITHAW, unix.EINVAL, "thaw")
}

func (f *fsFreezer) ioctl(req uint, benign unix.Errno, what string) error {
	d, err := os.Open(f.root)
	if err != nil {
		return fmt.Errorf("cannot open %s to %s it: %w", f.root, what, err)
	}
	defer d.Close()
	err = unix.IoctlSetInt(int(d.Fd()), req, 0)
	if err == nil || errors.Is(err, benign) {
		return nil
	}
	return fmt.Errorf("cannot %s %s: %w", what, f.root, err)
}

// newStoppedTimer returns a timer that has not been started.
func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}
