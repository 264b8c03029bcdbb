package lifecycle

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
)

// loopExt4 mounts a fresh ext4 image on a loop device in a temp dir, or
// skips with the reason when the machine cannot.
func loopExt4(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a loop device")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed (e2fsprogs)")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount an ext4 image here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if d, err := os.Open(mnt); err == nil {
			_ = unix.IoctlSetInt(int(d.Fd()), ioctlFITHAW, 0)
			d.Close()
		}
		_ = exec.Command("umount", mnt).Run()
	})
	return mnt
}

func rawIoctl(t *testing.T, dir string, req uint) error {
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return unix.IoctlSetInt(int(d.Fd()), req, 0)
}

// BEHAVIOR.md 10.10: FIFREEZE/FITHAW on the configured mount point, both
// idempotent; a write during the freeze completes only after the thaw.
func TestFSFreezeThawLoopExt4(t *testing.T) {
	mnt := loopExt4(t)
	l, _ := newLC(t, func(o *Options) { o.FreezeRoot = mnt })
	ctx := context.Background()
	if err := l.FSFreeze(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rawIoctl(t, mnt, ioctlFIFREEZE); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("filesystem not frozen: second FIFREEZE gave %v", err)
	}
	if err := l.FSFreeze(ctx); err != nil {
		t.Fatalf("freeze of a frozen filesystem: %v", err)
	}
	wrote := make(chan error, 1)
	go func() { wrote <- os.WriteFile(filepath.Join(mnt, "f"), []byte("data"), 0o644) }()
	if err := l.FSThaw(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write blocked after thaw")
	}
	if err := l.FSThaw(ctx); err != nil {
		t.Fatalf("thaw of a thawed filesystem: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(mnt, "f")); string(b) != "data" {
		t.Fatalf("file after thaw: %q", b)
	}
}

// A freeze whose caller gives up while another holds the lock is 503;
// without a configured root (--isnotfc) the hooks refuse.
func TestFSFreezeLockAndDisabled(t *testing.T) {
	l, _ := newLC(t, func(o *Options) { o.FreezeRoot = t.TempDir() })
	l.fs.lock <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := l.FSFreeze(ctx)
	<-l.fs.lock
	if errs.Kind(err) != errs.Unavailable {
		t.Fatalf("busy freeze: %v", err)
	}
	off, _ := newLC(t, nil)
	if err := off.FSFreeze(context.Background()); errs.Kind(err) != errs.Unsupported {
		t.Fatalf("disabled freeze: %v", err)
	}
	if err := off.FSThaw(context.Background()); errs.Kind(err) != errs.Unsupported {
		t.Fatalf("disabled thaw: %v", err)
	}
}

// BEHAVIOR.md 10.9: counts add up; a caller that is gone stops the walk.
func TestCollapseCounts(t *testing.T) {
	l, _ := newLC(t, nil)
	keep := make([]byte, 8<<20) // some heap to walk
	for i := range keep {
		keep[i] = byte(i)
	}
	r, err := l.Collapse(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Regions == 0 || r.Chunks == 0 || r.Collapsed+r.AlreadyHuge+r.Skipped != r.Chunks || r.ElapsedMs < 0 {
		t.Fatalf("inconsistent result %+v", r)
	}
	t.Logf("collapse: %+v", r)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r, err := l.Collapse(ctx); err != nil || r.Chunks != 0 {
		t.Fatalf("cancelled collapse: %+v %v", r, err)
	}
	_ = keep[len(keep)-1]
}
