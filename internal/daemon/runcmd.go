package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/reaper"
	"github.com/sandboxd/envd/internal/safe"
)

// maxHelperOutput bounds what a helper command may print back.
const maxHelperOutput = 4 << 10

// helperRunner runs envd's own helper commands (mount, umount) through the
// reaper, the one owner of child waiting: an os/exec Wait would race its
// blanket wait in the binary. Output (stdout and stderr) is returned
// bounded; a context that ends kills the helper's process group.
func helperRunner(rp *reaper.Reaper, log *slog.Logger) func(ctx context.Context, name string, args ...string) (string, error) {
	return func(ctx context.Context, name string, args ...string) (string, error) {
		path, err := lookPath(name)
		if err != nil {
			return "", err
		}
		r, w, err := os.Pipe()
		if err != nil {
			return "", err
		}
		defer r.Close()
		null, err := os.Open(os.DevNull)
		if err != nil {
			w.Close()
			return "", err
		}
		child, err := rp.Start(func() (int, error) {
			return syscall.ForkExec(path, append([]string{name}, args...), &syscall.ProcAttr{
				Env:   os.Environ(),
				Files: []uintptr{null.Fd(), w.Fd(), w.Fd()},
				Sys:   &syscall.SysProcAttr{Setpgid: true},
			})
		})
		null.Close()
		w.Close()
		if err != nil {
			return "", err
		}
		var out []byte
		read := make(chan struct{})
		go func() { // owned here: waited for below
			defer close(read)
			defer safe.Recover(log, "helper output")
			out, _ = io.ReadAll(io.LimitReader(r, maxHelperOutput))
			_, _ = io.Copy(io.Discard, r)
		}()
		select {
		case <-child.Done():
		case <-ctx.Done():
			_ = rp.Signal(child, unix.SIGKILL, true)
			<-child.Done()
		}
		// A grandchild may hold the pipe open: bound the wait for EOF.
		_ = r.SetReadDeadline(time.Now().Add(time.Second))
		<-read
		text := strings.TrimSpace(string(out))
		ws := child.Status()
		switch {
		case ws.Signaled():
			return text, fmt.Errorf("signal: %v", ws.Signal())
		case ws.ExitStatus() != 0:
			return text, fmt.Errorf("exit status %d", ws.ExitStatus())
		}
		return text, nil
	}
}

// lookPath finds an executable as a shell does: a name with a slash as is,
// otherwise the first executable regular file of that name on $PATH.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, executable(name)
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		if p := filepath.Join(dir, name); executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH", name)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || unix.Access(p, unix.X_OK) != nil {
		return fmt.Errorf("%s: not an executable file", p)
	}
	return nil
}
