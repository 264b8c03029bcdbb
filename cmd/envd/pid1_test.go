package main_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/gen/process/processconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

// pid1 is the built envd running as PID 1 of new PID and mount namespaces
// (unshare --pid --fork --mount-proc --mount), started and ended by PID.
type pid1 struct {
	cmd    *exec.Cmd
	out    *testenv.LogBuffer
	url    string
	exited chan struct{}
	proc   processconnect.ProcessClient
}

func needUnshare(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("PID 1 tests need root (unshare --pid --mount)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not installed (util-linux)")
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startPID1 runs `unshare <nsArgs> -- <bin> <envd args>` and, when url is
// reachable from here, waits for /health.
func startPID1(t *testing.T, nsArgs []string, bin string, envdArgs []string, wait bool) *pid1 {
	t.Helper()
	argv := append(append(append([]string{}, nsArgs...), "--", bin), envdArgs...)
	cmd := exec.Command("unshare", argv...)
	out := &testenv.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = []string{} // as the kernel starts init: no PATH
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pid1{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL) // unshare by PID; the namespace dies with its init
		<-p.exited
		if t.Failed() {
			t.Logf("envd output:\n%s", out.String())
		}
	})
	if !wait {
		return p
	}
	for _, a := range envdArgs {
		if strings.HasPrefix(a, "--port=") {
			p.url = "http://127.0.0.1:" + strings.TrimPrefix(a, "--port=")
		}
	}
	h2 := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, n, a)
	}}
	t.Cleanup(h2.CloseIdleConnections)
	p.proc = processconnect.NewProcessClient(&http.Client{Transport: h2}, p.url)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(p.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("envd exited early:\n%s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("envd not healthy:\n%s", out.String())
		}
	}
}

func hostEnvdArgs(t *testing.T) []string {
	return []string{"--isnotfc", "--no-cgroups", "--listen-addr=127.0.0.1", fmt.Sprintf("--port=%d", freePort(t)),
		"--run-dir=" + t.TempDir(), "--mmds-addr=127.0.0.1:1"}
}

var hostNS = []string{"--pid", "--fork", "--kill-child", "--mount-proc", "--mount"}

// run starts a command through the Start RPC and returns its stdout and
// exit code.
func (p *pid1) run(ctx context.Context, cmd string, args ...string) (string, int32, error) {
	stream, err := p.proc.Start(ctx, connect.NewRequest(&pb.StartRequest{Process: &pb.ProcessConfig{Cmd: cmd, Args: args}}))
	if err != nil {
		return "", 0, err
	}
	defer stream.Close()
	var out strings.Builder
	for stream.Receive() {
		ev := stream.Msg().GetEvent()
		out.Write(ev.GetData().GetStdout())
		if end := ev.GetEnd(); end != nil {
			return out.String(), end.GetExitCode(), nil
		}
	}
	if err := stream.Err(); err != nil {
		return out.String(), 0, err
	}
	return out.String(), 0, errors.New("stream ended without an end event")
}

// zombiesAndProcs counts, inside envd's PID namespace, zombie processes and
// all processes (the counting shell included).
const countScript = `z=0; n=0; for s in /proc/[0-9]*/stat; do read -r l < "$s" 2>/dev/null || continue; n=$((n+1)); case "${l##*) }" in Z*) z=$((z+1));; esac; done; echo "$z $n"`

func (p *pid1) counts(t *testing.T) (zombies, procs int) {
	t.Helper()
	out, code, err := p.run(context.Background(), "/bin/sh", "-c", countScript)
	if err != nil || code != 0 {
		t.Fatalf("count: %q %d %v", out, code, err)
	}
	if _, err := fmt.Sscan(out, &zombies, &procs); err != nil {
		t.Fatalf("count output %q: %v", out, err)
	}
	return zombies, procs
}

// Orphaned grandchildren are reparented to envd as PID 1 and reaped: after
// 1,000 of them no zombie is left (BEHAVIOR.md 1.1: PID 1 must reap).
func TestPID1ReapsOrphanedGrandchildren(t *testing.T) {
	needUnshare(t)
	p := startPID1(t, hostNS, testenv.Binary(t), hostEnvdArgs(t), true)
	ctx := context.Background()
	out, code, err := p.run(ctx, "/bin/sh", "-c", `i=0; while [ $i -lt 1000 ]; do (sleep 0.01 &); i=$((i+1)); done; echo spawned`)
	if err != nil || code != 0 || out != "spawned\n" {
		t.Fatalf("orphan spawner: %q %d %v", out, code, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		z, n := p.counts(t)
		// Left: envd (1), the counting sh (1).
		if z == 0 && n <= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 1000 orphans: %d zombies, %d processes", z, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The reaper's blanket wait must not steal exit statuses: 1,000 concurrent
// short commands each report their own exit code and output while orphans
// are reaped at the same time.
func TestPID1ExitCodesSurviveOrphanReaping(t *testing.T) {
	needUnshare(t)
	p := startPID1(t, hostNS, testenv.Binary(t), hostEnvdArgs(t), true)
	ctx := context.Background()
	orphans := make(chan error, 1)
	go func() {
		_, code, err := p.run(ctx, "/bin/sh", "-c", `i=0; while [ $i -lt 2000 ]; do (true &); i=$((i+1)); done`)
		if err == nil && code != 0 {
			err = fmt.Errorf("orphan generator exit %d", code)
		}
		orphans <- err
	}()
	var wg sync.WaitGroup
	errc := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := int32(i % 256)
			out, code, err := p.run(ctx, "/bin/sh", "-c", fmt.Sprintf("echo %d; exit %d", i, want))
			if err != nil || code != want || out != strconv.Itoa(i)+"\n" {
				errc <- fmt.Errorf("command %d: out %q code %d (want %d) err %v", i, out, code, want, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	n := 0
	for err := range errc {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Fatalf("%d of 1000 commands lost their exit status", n)
	}
	if err := <-orphans; err != nil {
		t.Fatal(err)
	}
	if z, _ := p.counts(t); z != 0 {
		t.Fatalf("%d zombies left", z)
	}
}

// envdHostPid is the host PID of envd: the only child of unshare.
func envdHostPid(t *testing.T, p *pid1) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.cmd.Process.Pid, p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("children of unshare: %q", b)
	}
	return pid
}

// pidNSMembers counts host processes in the PID namespace with inode ns.
func pidNSMembers(ns string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			n++
		}
	}
	return n
}

// SIGTERM to envd as PID 1: every process gets SIGTERM, one that ignores it
// is killed after the grace period, then envd syncs and powers off with
// reboot(POWER_OFF), which in a PID namespace ends its init by SIGINT. The
// whole shutdown stays within the bound (5 s grace + 2 s kill + slack).
func TestPID1SIGTERMPowersOffWithinBound(t *testing.T) {
	needUnshare(t)
	p := startPID1(t, hostNS, testenv.Binary(t), hostEnvdArgs(t), true)
	dir := t.TempDir()
	termFile := filepath.Join(dir, "term")
	ready := func(script string) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		stream, err := p.proc.Start(ctx, connect.NewRequest(&pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", script}}}))
		if err != nil {
			t.Fatal(err)
		}
		for stream.Receive() {
			if strings.Contains(string(stream.Msg().GetEvent().GetData().GetStdout()), "ready") {
				return
			}
		}
		t.Fatalf("process not ready: %v", stream.Err())
	}
	ready(`trap 'echo term > ` + termFile + `; exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
	ready(`trap '' TERM; echo ready; exec sleep 1000`)
	ready(`(sleep 1000 &); echo ready; exec sleep 1000`)
	pid := envdHostPid(t, p)
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("envd as PID 1 did not power off within 20s:\n%s", p.out.String())
	}
	took := time.Since(start)
	if took > 10*time.Second {
		t.Errorf("shutdown took %v, bound is 7s + slack", took)
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("init did not end through reboot(POWER_OFF): %v", p.cmd.ProcessState)
	}
	if b, _ := os.ReadFile(termFile); string(b) != "term\n" {
		t.Errorf("process did not get SIGTERM before power-off: %q", b)
	}
	logs := p.out.String()
	if !strings.Contains(logs, "pid1: powering off") || !strings.Contains(logs, "all_processes_ended=true") {
		t.Errorf("power-off not logged as clean:\n%s", logs)
	}
	if n := pidNSMembers(ns); n != 0 {
		t.Errorf("%d processes left in the namespace", n)
	}
	t.Logf("SIGTERM to power-off: %v", took)
}

// On a bare root (nothing mounted, lo down, no PATH) envd as PID 1 mounts
// proc, sysfs, devtmpfs, devpts, /dev/shm, /run and cgroup2, brings up
// loopback and serves on it (BEHAVIOR.md 1.3, 11.2 W4).
func TestPID1BootsBareRoot(t *testing.T) {
	needUnshare(t)
	for _, tool := range []string{"nsenter", "curl", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	root := t.TempDir()
	for _, d := range []string{"proc", "sys", "dev", "run", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(testenv.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "envd"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := []string{"--pid", "--fork", "--kill-child", "--mount", "--net", "--cgroup", "--ipc", "--uts", "--root=" + root}
	p := startPID1(t, ns, "/envd", []string{"--isnotfc", "--no-cgroups", "--port=49983"}, false)
	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(p.out.String(), what) {
			select {
			case <-p.exited:
				t.Fatalf("envd exited:\n%s", p.out.String())
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s", what, p.out.String())
			}
		}
	}
	waitLog("envd serving")
	if testing.Verbose() {
		defer func() { t.Logf("envd output:\n%s", p.out.String()) }()
	}
	pid := envdHostPid(t, p)
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && len(f) > 4 {
				got[f[4]] = f[i+1]
			}
		}
	}
	for path, fstype := range map[string]string{"/proc": "proc", "/sys": "sysfs", "/dev": "devtmpfs",
		"/dev/pts": "devpts", "/dev/shm": "tmpfs", "/run": "tmpfs", "/sys/fs/cgroup": "cgroup2"} {
		if got[path] != fstype {
			t.Errorf("%s: mounted %q, want %s", path, got[path], fstype)
		}
	}
	link, err := exec.Command("nsenter", "--target", strconv.Itoa(pid), "--net", "ip", "-o", "link", "show", "lo").CombinedOutput()
	if err != nil || !strings.Contains(string(link), ",UP") {
		t.Errorf("lo in envd's namespace: %s %v", link, err)
	}
	health, err := exec.Command("nsenter", "--target", strconv.Itoa(pid), "--net", "curl", "-s", "-m", "5", "http://127.0.0.1:49983/health").CombinedOutput()
	if err != nil || !strings.Contains(string(health), `"version"`) {
		t.Errorf("health over envd's loopback: %s %v", health, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("no power-off after SIGTERM")
	}
	if ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("init did not end through reboot(POWER_OFF): %v", p.cmd.ProcessState)
	}
}
