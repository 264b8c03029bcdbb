package ports

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// The forward address tests use. It lives on a veth inside the private
// network namespace every test of this package runs in.
const fwdAddr = "10.213.0.1"

var netnsReady bool

// TestMain re-runs the test binary in a network namespace of its own
// (CLONE_NEWNET: it disappears with the process, nothing to clean up) with
// lo up and fwdAddr on a veth pair, so scans see only this package's
// listeners and no traffic can leave. Without root the netns tests skip.
func TestMain(m *testing.M) {
	switch os.Getenv("ENVD_PORTS_NETNS") {
	case "":
		if os.Geteuid() == 0 {
			if code, ok := reexecInNetns(); ok {
				os.Exit(code)
			}
		}
	case "1":
		if err := setupNetns(); err != nil {
			fmt.Fprintln(os.Stderr, "ports tests: netns setup failed:", err)
		} else {
			netnsReady = true
		}
	}
	os.Exit(m.Run())
}

func reexecInNetns() (int, bool) {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), "ENVD_PORTS_NETNS=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "ports tests: cannot create a network namespace:", err)
		return 0, false
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), true
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ports tests:", err)
		return 1, true
	}
	return 0, true
}

func setupNetns() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "fwd0", "type", "veth", "peer", "name", "fwd1"},
		{"addr", "add", fwdAddr + "/24", "dev", "fwd0"},
		{"link", "set", "fwd0", "up"},
		{"link", "set", "fwd1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	return nil
}

func needNetns(t testing.TB) {
	t.Helper()
	if !netnsReady {
		t.Skip("needs root and a private network namespace (CLONE_NEWNET)")
	}
}
