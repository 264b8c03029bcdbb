package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := []string{"--isnotfc", "--no-cgroups", "--listen-addr", "127.0.0.1", "--port", fmt.Sprint(port),
		"--run-dir", t.TempDir(), "--mmds-addr", "127.0.0.1:1", "--forward-addr", "127.0.0.1"}
	cmd := exec.Command(Binary(t), append(base, args...)...)
	out := &LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	p := &Proc{Env: newEnv(t, fmt.Sprintf("127.0.0.1:%d", port)), Cmd: cmd, Output: out}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := p.HTTP.Get(p.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("testenv: envd exited early:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: envd not healthy after 10s:\n%s", out.String())
		}
	}
}
