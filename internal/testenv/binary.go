package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// LogBuffer collects log output safely across goroutines.
type LogBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
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
