package testenv

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var cgroupSeq atomic.Int64

// CgroupRoot creates an empty cgroup v2 directory for one test, to be used
// as --cgroup-root, and removes it at cleanup after killing whatever still
// runs in it (cgroup.kill acts on that subtree only). On a hybrid host the
// cgroup2 mount is /sys/fs/cgroup/unified. The test is skipped, with the
// reason, when there is no writable cgroup2 mount.
func CgroupRoot(t testing.TB) string {
	t.Helper()
	mnt, err := cgroup2MountPoint()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	dir := filepath.Join(mnt, fmt.Sprintf("envd-test-%d-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cgroup2 at %s is not writable: %v", mnt, err)
	}
	t.Cleanup(func() { removeCgroupTree(t, dir) })
	return dir
}

func cgroup2MountPoint() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4], nil
		}
	}
	return "", fmt.Errorf("none in /proc/self/mountinfo")
}

// removeCgroupTree kills the subtree's processes, waits until it is empty
// and removes every directory, deepest first.
func removeCgroupTree(t testing.TB, dir string) {
	_ = os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil && !os.IsNotExist(err) {
		t.Logf("cgroup.kill %s: %v", dir, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if err != nil || strings.Contains(string(b), "populated 0") || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := syscall.Rmdir(d); err != nil && !os.IsNotExist(err) {
			t.Errorf("rmdir %s: %v", d, err)
		}
	}
}

// CgroupOf returns the cgroup2 path of pid as /proc/PID/cgroup shows it.
func CgroupOf(t testing.TB, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	t.Fatalf("pid %d has no cgroup2 line: %q", pid, b)
	return ""
}

// CgroupRel returns dir relative to its cgroup2 mount, as /proc/PID/cgroup
// prints it ("/envd-test-1-1/user").
func CgroupRel(t testing.TB, dir string) string {
	t.Helper()
	mnt, err := cgroup2MountPoint()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(mnt, dir)
	if err != nil {
		t.Fatal(err)
	}
	return "/" + rel
}
