package cgroups_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/cgroups"
	"github.com/sandboxd/envd/internal/testenv"
)

// events returns the "frozen" field of dir/cgroup.events.
func frozen(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), "frozen 1")
}

func requested(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.freeze"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func mkdirs(t *testing.T, root string, rels ...string) {
	t.Helper()
	for _, r := range rels {
		if err := os.MkdirAll(filepath.Join(root, r), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFreezeLegacyObservedInEvents freezes user and ptys with a running
// process inside, confirms through cgroup.events (BEHAVIOR.md 10.8) and
// thaws them again.
func TestFreezeLegacyObservedInEvents(t *testing.T) {
	root := testenv.CgroupRoot(t)
	m, _ := newManager(t, cgroups.Options{Root: root})
	if _, err := spawn(t, m, cgroups.User); err != nil {
		t.Fatal(err)
	}
	res, err := m.Freeze(t.Context(), cgroups.FreezeRequest{MaxWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != "legacy" || res.Requested != 2 || res.Frozen != 2 || res.NotFrozen != 0 || res.Failed != 0 {
		t.Fatalf("result %+v", res)
	}
	for _, g := range []string{"user", "ptys"} {
		if !frozen(t, filepath.Join(root, g)) {
			t.Fatalf("%s not frozen per cgroup.events", g)
		}
	}
	th, err := m.Thaw()
	if err != nil || th.Thawed != 2 {
		t.Fatalf("thaw %+v %v", th, err)
	}
	for _, g := range []string{"user", "ptys"} {
		if frozen(t, filepath.Join(root, g)) || requested(t, filepath.Join(root, g)) != "0" {
			t.Fatalf("%s still frozen after thaw", g)
		}
	}
}

func TestFreezeWithoutWaitDoesNotConfirm(t *testing.T) {
	root := testenv.CgroupRoot(t)
	m, _ := newManager(t, cgroups.Options{Root: root})
	res, err := m.Freeze(t.Context(), cgroups.FreezeRequest{})
	if err != nil || res.Requested != 2 || res.Frozen != 0 || res.Wait != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if requested(t, filepath.Join(root, "user")) != "1" {
		t.Fatal("user not frozen")
	}
	if _, err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
}

// TestHierarchyFreezeSkipsAllowlistAndGuestFreezes: every subtree off
// envd's chain is frozen at its top; allow-listed cgroups and their
// parents keep running; a cgroup the guest froze itself is left frozen on
// thaw (BEHAVIOR.md 10.8).
func TestHierarchyFreezeSkipsAllowlistAndGuestFreezes(t *testing.T) {
	root := testenv.CgroupRoot(t)
	mkdirs(t, root, "other", "socats", "system.slice/systemd-journald.service", "system.slice/foo.service",
		"guest", "deep/a/b")
	if err := os.WriteFile(filepath.Join(root, "guest", "cgroup.freeze"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	m, _ := newManager(t, cgroups.Options{Root: root})
	res, err := m.Freeze(t.Context(), cgroups.FreezeRequest{Mode: "hierarchy", MaxWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// user, ptys, other, deep, system.slice/foo.service
	if res.Requested != 5 || res.Frozen != 5 || res.Allowlisted != 2 || res.PreFrozen != 1 || res.Truncated || res.Visited != 9 {
		t.Fatalf("result %+v", res)
	}
	for rel, want := range map[string]bool{
		"other": true, "deep": true, "deep/a/b": true, "system.slice/foo.service": true, "user": true,
		"socats": false, "system.slice/systemd-journald.service": false, "system.slice": false,
	} {
		if got := frozen(t, filepath.Join(root, rel)); got != want {
			t.Errorf("%s frozen=%v, want %v", rel, got, want)
		}
	}
	if requested(t, filepath.Join(root, "deep/a")) != "0" {
		t.Error("hierarchy freeze wrote below the top of a subtree")
	}
	if _, err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"other", "deep/a/b", "system.slice/foo.service", "user"} {
		if frozen(t, filepath.Join(root, rel)) {
			t.Errorf("%s still frozen after thaw", rel)
		}
	}
	if requested(t, filepath.Join(root, "guest")) != "1" {
		t.Error("thaw woke a cgroup the guest had frozen itself")
	}
}

func TestHierarchyWalkIsBounded(t *testing.T) {
	root := testenv.CgroupRoot(t)
	mkdirs(t, root, "a", "b", "c", "d", "e", "f")
	m, _ := newManager(t, cgroups.Options{Root: root})
	res, err := m.Freeze(t.Context(), cgroups.FreezeRequest{Mode: "hierarchy", MaxCgroups: 3})
	if err != nil || !res.Truncated || res.Visited != 3 || res.Requested != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"a", "b", "c", "d", "e", "f", "user", "ptys"} {
		if requested(t, filepath.Join(root, g)) != "0" {
			t.Errorf("%s left frozen", g)
		}
	}
}

// TestThawClearsStaleFreeze: the /init thaw also wakes user and ptys that
// an earlier envd froze and never thawed (BEHAVIOR.md 10.8).
func TestThawClearsStaleFreeze(t *testing.T) {
	root := testenv.CgroupRoot(t)
	mkdirs(t, root, "user")
	if err := os.WriteFile(filepath.Join(root, "user", "cgroup.freeze"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	m, _ := newManager(t, cgroups.Options{Root: root})
	m.ThawWorkload()
	if requested(t, filepath.Join(root, "user")) != "0" {
		t.Fatal("stale freeze not thawed")
	}
}

// TestWatchdogThawsForgottenFreeze: a freeze nobody thaws is undone by the
// watchdog (10 minutes in production).
func TestWatchdogThawsForgottenFreeze(t *testing.T) {
	root := testenv.CgroupRoot(t)
	m, logs := newManager(t, cgroups.Options{Root: root, WatchdogAfter: 50 * time.Millisecond})
	if _, err := m.Freeze(t.Context(), cgroups.FreezeRequest{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for requested(t, filepath.Join(root, "user")) != "0" {
		if time.Now().After(deadline) {
			t.Fatal("watchdog did not thaw")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "watchdog") {
		t.Fatalf("no watchdog log line:\n%s", logs)
	}
	if _, err := spawn(t, m, cgroups.User); err != nil {
		t.Fatalf("spawn after watchdog thaw: %v", err)
	}
}

func TestNoopFreezeAndThaw(t *testing.T) {
	m, _ := newManager(t, cgroups.Options{Root: t.TempDir()})
	res, err := m.Freeze(t.Context(), cgroups.FreezeRequest{Mode: "hierarchy", MaxWait: time.Second})
	if err != nil || res.Requested != 0 || res.Mode != "hierarchy" {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Freeze(t.Context(), cgroups.FreezeRequest{Mode: "bogus"}); err == nil {
		t.Fatal("unknown mode accepted")
	}
}
