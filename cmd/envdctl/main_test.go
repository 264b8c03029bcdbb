package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/testenv"
)

// Built envdctl binaries, shared by the tests of this package.
var (
	binOnce  sync.Map // flavour ("race", "plain") -> *builtBin
	buildDir string
)

type builtBin struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "envdctl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary builds envdctl once per flavour: with the race detector when the
// tests run under it, and plain when race is false (for memory figures).
func binary(t testing.TB, race bool) string {
	t.Helper()
	name := "plain"
	if race {
		name = "race"
	}
	v, _ := binOnce.LoadOrStore(name, &builtBin{})
	b := v.(*builtBin)
	b.once.Do(func() {
		b.path = filepath.Join(buildDir, "envdctl-"+name)
		args := []string{"build", "-o", b.path}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		if !race {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// result is one envdctl run.
type result struct {
	stdout, stderr string
	code           int
}

// ctl runs envdctl against e with stdin and args; ENVD_ADDR points at e.
func ctl(t testing.TB, e *testenv.Env, stdin string, args ...string) result {
	t.Helper()
	return ctlEnv(t, e, nil, stdin, args...)
}

func ctlEnv(t testing.TB, e *testenv.Env, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t, raceEnabled), args...)
	cmd.Env = append(cleanEnv(), append([]string{"ENVD_ADDR=" + e.Addr}, env...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("envdctl %v: %v", args, err)
	}
	return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
}

// cleanEnv is the test's environment without any ENVD_* variable. A race
// build would otherwise sleep 1 s at every exit (atexit_sleep_ms).
func cleanEnv() []string {
	env := []string{"GORACE=atexit_sleep_ms=0 halt_on_error=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ENVD_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return env
}

// ok fails the test unless the run exited 0.
func (r result) ok(t testing.TB) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

// fails checks a failing run: the exit code and one stderr line holding want.
func (r result) fails(t testing.TB, code int, want string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("exit %d (want %d), stderr %q (want one line with %q)", r.code, code, r.stderr, want)
	}
}

// openPTY allocates a pseudo-terminal pair of the given size.
func openPTY(t testing.TB, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	setSize(t, m, rows, cols)
	return m, s
}

func setSize(t testing.TB, f *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}
