package vm

import (
	"strconv"
	"strings"
	"testing"
)

// TestPID1OnABareKernel checks envd's PID 1 mode where it is meant to run:
// started by the kernel (through the shim's execve) on an initramfs that
// has nothing mounted.
func TestPID1OnABareKernel(t *testing.T) {
	m, snap := golden(t)
	g := dial(t, restore(t, m, snap))

	t.Run("envd is PID 1 and the parent of its processes", func(t *testing.T) {
		g := g.with(t)
		out := g.sh(`echo $$ $PPID; cat /proc/1/cmdline; echo; while read k v; do [ "$k" = PPid: ] && echo $v; done < /proc/1/status; exit 0`)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("output %q", out)
		}
		if f := strings.Fields(lines[0]); len(f) != 2 || f[1] != "1" || f[0] == "1" {
			t.Errorf("shell pid/ppid = %q, want parent 1", lines[0])
		}
		if args := strings.Split(strings.TrimRight(lines[1], "\x00"), "\x00"); args[0] != "/init" ||
			!strings.Contains(lines[1], "--mmds-addr") {
			t.Errorf("PID 1 cmdline = %q, want /init (envd) with the shim's args", args)
		}
		if lines[2] != "0" {
			t.Errorf("PID 1's parent = %q, want 0 (started by the kernel)", lines[2])
		}
	})

	t.Run("mounts a bare kernel lacks", func(t *testing.T) {
		g := g.with(t)
		mounts := map[string]string{}
		for _, l := range strings.Split(g.sh("cat /proc/mounts"), "\n") {
			if f := strings.Fields(l); len(f) >= 3 {
				mounts[f[1]] = f[2]
			}
		}
		want := map[string]string{"/proc": "proc", "/sys": "sysfs", "/dev": "devtmpfs", "/dev/pts": "devpts",
			"/dev/shm": "tmpfs", "/run": "tmpfs", "/sys/fs/cgroup": "cgroup2"}
		for dir, fs := range want {
			if mounts[dir] != fs {
				t.Errorf("%s: mounted %q, want %s (all: %v)", dir, mounts[dir], fs, mounts)
			}
		}
		ctl := g.sh("cat /sys/fs/cgroup/cgroup.subtree_control")
		for _, c := range []string{"cpu", "memory", "io"} {
			if !strings.Contains(ctl, c) {
				t.Errorf("cgroup controller %s not enabled: %q", c, ctl)
			}
		}
	})

	t.Run("loopback is up", func(t *testing.T) {
		g := g.with(t)
		flags, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(g.sh("cat /sys/class/net/lo/flags"), "0x")), 16, 32)
		if err != nil || flags&1 == 0 {
			t.Fatalf("lo flags %#x (%v): IFF_UP not set", flags, err)
		}
	})

	t.Run("sandbox marker says Firecracker mode", func(t *testing.T) {
		g := g.with(t)
		if got := string(g.download("/run/wrenn/.WRENN_SANDBOX")); got != "true" {
			t.Errorf("marker = %q, want true", got)
		}
		if got := strings.TrimSpace(g.sh("echo $WRENN_SANDBOX")); got != "true" {
			t.Errorf("WRENN_SANDBOX = %q, want true", got)
		}
	})

	t.Run("an orphaned grandchild is reaped by envd", func(t *testing.T) {
		g := g.with(t)
		// The shell exits at once; its background sleep is orphaned and
		// reparented to PID 1, which must wait for it when it exits.
		pid := strings.TrimSpace(g.sh("sleep 4 </dev/null >/dev/null 2>&1 & echo $!"))
		status := g.sh("cat /proc/" + pid + "/status")
		if !strings.Contains(status, "\nPPid:\t1\n") {
			t.Fatalf("orphan %s not reparented to PID 1:\n%s", pid, status)
		}
		// Wait in the guest (bounded to 30 s) for /proc/PID to go: a
		// zombie nobody reaps keeps it forever.
		left := g.sh("p=" + pid + "; i=0; while [ -e /proc/$p ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; " +
			"cat /proc/$p/stat 2>/dev/null; exit 0")
		if left != "" {
			t.Fatalf("orphan %s still there after 30 s (state in field 3): %s", pid, left)
		}
	})
}
