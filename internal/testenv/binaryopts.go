package testenv

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BinaryOptions change how StartBinaryWith runs the envd binary.
type BinaryOptions struct {
	Args []string // appended to StartBinary's defaults; a later flag wins
	// Cgroup, when set, is a cgroup v2 directory envd is born in
	// (CLONE_INTO_CGROUP), so tests can see what envd does about its own group.
	Cgroup string
}

// StartBinaryWith is StartBinary with options. The process is killed (by
// PID) at cleanup.
func StartBinaryWith(t testing.TB, o BinaryOptions) *Proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := []string{"--isnotfc", "--no-cgroups", "--listen-addr", "127.0.0.1", "--port", fmt.Sprint(port),
		"--run-dir", t.TempDir(), "--mmds-addr", "127.0.0.1:1", "--forward-addr", "127.0.0.1"}
	cmd := exec.Command(Binary(t), append(base, o.Args...)...)
	out := &LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if o.Cgroup != "" {
		fd, err := unix.Open(o.Cgroup, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
	}
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
