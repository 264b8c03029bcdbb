package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogBuffer collects output safely across goroutines and lets a test
// wait for a substring to be written.
type LogBuffer struct {
	mu   sync.Mutex // guards buf and wake
	buf  bytes.Buffer
	wake chan struct{} // closed by the next Write, when a waiter is waiting
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// WaitFor returns once s has been written at or after byte offset from,
// with the offset just past it, or fails the test after 30 s.
func (l *LogBuffer) WaitFor(t testing.TB, s string, from int) int {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		if i := strings.Index(l.buf.String()[min(from, l.buf.Len()):], s); i >= 0 {
			l.mu.Unlock()
			return from + i + len(s)
		}
		if l.wake == nil {
			l.wake = make(chan struct{})
		}
		ch := l.wake
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %q in output:\n%s", s, l.String())
		}
	}
}

// Binary returns the path of an envd binary: $ENVD_BIN when set (the
// Makefile builds one), else one built once into a temp dir.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ENVD_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "envd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "envd")
		cmd := exec.Command("go", "build", "-o", builtPath, "./cmd/envd")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("testenv: %v", buildErr)
	}
	return builtPath
}

// Build state shared by all tests of one test binary.
var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Proc is envd running as a child process.
type Proc struct {
	*Env
	Cmd    *exec.Cmd
	Output *LogBuffer // stdout and stderr
}

// StartBinary runs the envd binary with args on a free loopback port and
// waits until /health answers. The process is killed (by PID) at cleanup.
func StartBinary(t testing.TB, args ...string) *Proc {
	t.Helper()
	return StartBinaryWith(t, BinaryOptions{Args: args})
}
