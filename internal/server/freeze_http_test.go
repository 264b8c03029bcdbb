package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	pb "github.com/sandboxd/envd/internal/gen/process"
	"github.com/sandboxd/envd/internal/testenv"
)

type freezeJSON struct {
	Mode         string `json:"mode"`
	Visited      *int   `json:"visited"`
	Allowlisted  *int   `json:"allowlisted"`
	Truncated    *bool  `json:"truncated"`
	PreFrozen    *int   `json:"preFrozen"`
	Requested    *int   `json:"requested"`
	Frozen       *int   `json:"frozen"`
	NotFrozen    *int   `json:"notFrozen"`
	Failed       *int   `json:"failed"`
	Unobservable *int   `json:"unobservable"`
	SweepMs      *int64 `json:"sweepMs"`
	WaitMs       *int64 `json:"waitMs"`
}

func freezePost(t *testing.T, e *testenv.Env, path string) (*http.Response, string) {
	t.Helper()
	resp, err := e.HTTP.Post(e.URL+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func freezeEventsFrozen(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), "frozen 1")
}

// freezeEnv runs envd in-process with workload cgroups under a fresh subtree.
func freezeEnv(t *testing.T) (*testenv.Env, string) {
	root := testenv.CgroupRoot(t)
	return testenv.Start(t, testenv.Options{Args: []string{"--no-cgroups=false", "--cgroup-root", root}}), root
}

// TestFreezeHTTPConfirmedThroughCgroupEvents: POST /freeze with maxWaitMs
// answers 200 FreezeResult once cgroup.events says frozen; /unfreeze
// answers 204 and thaws (PROTOCOL.md 4.7, BEHAVIOR.md 10.8).
func TestFreezeHTTPConfirmedThroughCgroupEvents(t *testing.T) {
	e, root := freezeEnv(t)
	resp, body := freezePost(t, e, "/freeze?maxWaitMs=5000")
	var r freezeJSON
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &r) != nil {
		t.Fatalf("freeze: %d %q", resp.StatusCode, body)
	}
	if r.Mode != "legacy" || r.Requested == nil || *r.Requested != 2 || *r.Frozen != 2 || *r.NotFrozen != 0 ||
		*r.Failed != 0 || r.WaitMs == nil || r.SweepMs == nil || r.Truncated == nil {
		t.Fatalf("result %s", body)
	}
	for _, g := range []string{"user", "ptys"} {
		if !freezeEventsFrozen(t, filepath.Join(root, g)) {
			t.Fatalf("%s not frozen", g)
		}
	}
	if resp, body := freezePost(t, e, "/unfreeze"); resp.StatusCode != 204 || body != "" {
		t.Fatalf("unfreeze: %d %q", resp.StatusCode, body)
	}
	for _, g := range []string{"user", "ptys"} {
		if freezeEventsFrozen(t, filepath.Join(root, g)) {
			t.Fatalf("%s still frozen", g)
		}
	}
}

func TestFreezeHTTPWithoutWaitIs204(t *testing.T) {
	e, root := freezeEnv(t)
	resp, body := freezePost(t, e, "/freeze?mode=legacy&maxWaitMs=0")
	if resp.StatusCode != 204 || body != "" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "user", "cgroup.freeze")); strings.TrimSpace(string(b)) != "1" {
		t.Fatal("user not frozen")
	}
	// The thaw at the end of every authorised /init (BEHAVIOR.md 10.8).
	if resp, body := freezePost(t, e, "/init"); resp.StatusCode != 204 {
		t.Fatalf("init: %d %q", resp.StatusCode, body)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "user", "cgroup.freeze")); strings.TrimSpace(string(b)) != "0" {
		t.Fatal("/init did not thaw the workload")
	}
}

// TestFreezeHTTPBadParametersAre400PlainText (PROTOCOL.md 4.0).
func TestFreezeHTTPBadParametersAre400PlainText(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for _, q := range []string{"maxWaitMs=abc", "maxCgroups=1.5", "maxWaitMs=99999999999999999999", "mode=bogus"} {
		resp, body := freezePost(t, e, "/freeze?"+q)
		param, _, _ := strings.Cut(q, "=")
		if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
			!strings.HasPrefix(body, "Invalid format for parameter "+param) {
			t.Errorf("%s: %d %q %q", q, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	// Without cgroups there is nothing to freeze, and that is not an error.
	if resp, body := freezePost(t, e, "/freeze?maxWaitMs=10"); resp.StatusCode != 200 || !strings.Contains(body, `"requested":0`) {
		t.Fatalf("no-op freeze: %d %q", resp.StatusCode, body)
	}
}

// TestFreezeHierarchyNeverFreezesEnvdsOwnGroup runs the binary inside
// root/envd: a hierarchy freeze stops every other subtree but envd's own
// group (envd still answers) and the allow-listed ones (10.8).
func TestFreezeHierarchyNeverFreezesEnvdsOwnGroup(t *testing.T) {
	root := testenv.CgroupRoot(t)
	for _, d := range []string{"envd", "other", "socats"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sleeper := exec.Command("sleep", "60")
	fd, err := unix.Open(filepath.Join(root, "other"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sleeper.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	err = sleeper.Start()
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })

	p := testenv.StartBinaryWith(t, testenv.BinaryOptions{Cgroup: filepath.Join(root, "envd"),
		Args: []string{"--no-cgroups=false", "--cgroup-root", root}})
	resp, body := freezePost(t, p.Env, "/freeze?mode=hierarchy&maxWaitMs=5000")
	var r freezeJSON
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Mode != "hierarchy" {
		t.Fatalf("freeze: %d %q\n%s", resp.StatusCode, body, p.Output)
	}
	// user, ptys, other; envd's group is on its chain, socats allow-listed.
	if *r.Requested != 3 || *r.Frozen != 3 || *r.Allowlisted != 1 {
		t.Fatalf("result %s", body)
	}
	if !freezeEventsFrozen(t, filepath.Join(root, "other")) || freezeEventsFrozen(t, filepath.Join(root, "envd")) ||
		freezeEventsFrozen(t, filepath.Join(root, "socats")) {
		t.Fatal("wrong cgroups frozen")
	}
	if resp, _ := freezePost(t, p.Env, "/unfreeze"); resp.StatusCode != 204 {
		t.Fatalf("unfreeze: %d (envd frozen itself?)", resp.StatusCode)
	}
	if freezeEventsFrozen(t, filepath.Join(root, "other")) {
		t.Fatal("other still frozen")
	}
}

// TestProcessesBornInWorkloadCgroups: Start places pipe processes in
// user, PTY processes in ptys and tag _system in envd's group (3.10).
func TestProcessesBornInWorkloadCgroups(t *testing.T) {
	e, root := freezeEnv(t)
	c := e.Process(testenv.Codecs[0])
	rel := testenv.CgroupRel(t, root)
	self := testenv.CgroupOf(t, os.Getpid())
	system := "_system"
	cases := []struct {
		req  *pb.StartRequest
		want string
	}{
		{procCmd("cat", "/proc/self/cgroup"), "0::" + rel + "/user"},
		{&pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "cat", Args: []string{"/proc/self/cgroup"}},
			Pty: &pb.PTY{Size: &pb.PTY_Size{Cols: 80, Rows: 24}}}, "0::" + rel + "/ptys"},
		{&pb.StartRequest{Process: &pb.ProcessConfig{Cmd: "cat", Args: []string{"/proc/self/cgroup"}}, Tag: &system},
			"0::" + self},
	}
	for _, tc := range cases {
		r := procRun(t, c, tc.req)
		out := r.stdout.String() + r.pty.String()
		if !strings.Contains(out, tc.want+"\n") && !strings.Contains(out, tc.want+"\r\n") {
			t.Errorf("want %q in %q", tc.want, out)
		}
	}
}

// TestStartWhileFrozenAnswersWithoutHanging: a Start while the workload is
// frozen must not clone into the frozen group, where the child never
// reaches exec and the vfork-style clone blocks envd for good (E16). It
// runs, in envd's group. The binary is used so that a regression fails on
// the client's deadline instead of wedging the test process.
func TestStartWhileFrozenAnswersWithoutHanging(t *testing.T) {
	root := testenv.CgroupRoot(t)
	p := testenv.StartBinaryWith(t, testenv.BinaryOptions{Args: []string{"--no-cgroups=false", "--cgroup-root", root}})
	if resp, body := freezePost(t, p.Env, "/freeze?maxWaitMs=5000"); resp.StatusCode != 200 {
		t.Fatalf("freeze: %d %q", resp.StatusCode, body)
	}
	s, err := p.Process(testenv.Codecs[0]).Start(procCtx(t, 15*time.Second), connect.NewRequest(procCmd("cat", "/proc/self/cgroup")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := procCollect(t, s)
	if r.err != nil || r.end == nil {
		t.Fatalf("Start while frozen: %v (hung?)\n%s", r.err, p.Output)
	}
	if strings.Contains(r.stdout.String(), testenv.CgroupRel(t, root)) {
		t.Fatalf("process placed into a frozen group: %q", r.stdout.String())
	}
	if resp, err := p.HTTP.Get(p.URL + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("envd unhealthy: %v", err)
	} else {
		resp.Body.Close()
	}
}

// TestStartWorksWhenCgroupRootIsNotCgroup2: on a cgroup v1 host the root
// is tmpfs, where mkdir succeeds and every clone into the fd fails with
// EBADF; envd must fall back to no placement and keep starting (E15).
func TestStartWorksWhenCgroupRootIsNotCgroup2(t *testing.T) {
	root := t.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		root, _ = os.MkdirTemp("/dev/shm", "envd-e15-") // tmpfs, like a v1 host's /sys/fs/cgroup
		t.Cleanup(func() { os.RemoveAll(root) })
	}
	e := testenv.Start(t, testenv.Options{Args: []string{"--no-cgroups=false", "--cgroup-root", root}})
	r := procRun(t, e.Process(testenv.Codecs[0]), procCmd("echo", "spawned"))
	if r.stdout.String() != "spawned\n" || r.end.GetExitCode() != 0 {
		t.Fatalf("%q %v", r.stdout.String(), r.end)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("groups created on a non-cgroup2 root: %v", ents)
	}
	if !strings.Contains(e.Log.String(), "not a cgroup2 filesystem") {
		t.Fatalf("no warning:\n%s", e.Log)
	}
}
