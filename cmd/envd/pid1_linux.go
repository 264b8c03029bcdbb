package main

import (
	"bufio"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// PID 1 mode (BEHAVIOR.md 1.1 design note, 1.3): when the kernel starts envd
// as init, envd mounts what a bare kernel lacks, brings up loopback, serves,
// and never exits: a returning init panics the kernel, so every way out of
// run() ends in powerOff. Child reaping is internal/reaper's (the blanket
// wait is on because cmd/envd sets ReapOrphans).

// defaultPath is given to envd (and so to every child) when the kernel
// started it without PATH (BEHAVIOR.md 11.3 W8).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Shutdown bounds as PID 1: processes get SIGTERM and termGrace to end,
// then SIGKILL and killGrace to be reaped.
const (
	termGrace = 5 * time.Second
	killGrace = 2 * time.Second
)

type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	mode                   os.FileMode
}

// bootMounts is wrenn-init's list (BEHAVIOR.md 1.3 step 1-2) without /tmp:
// the root filesystem's /tmp may be meant to persist. Order matters: /proc
// first (mountinfo is read from it), /dev before /dev/pts and /dev/shm.
func bootMounts(cgroupRoot string) []mountSpec {
	const nsd = unix.MS_NOSUID | unix.MS_NODEV
	return []mountSpec{
		{"proc", "/proc", "proc", nsd | unix.MS_NOEXEC, "", 0o555},
		{"sysfs", "/sys", "sysfs", nsd | unix.MS_NOEXEC, "", 0o555},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", 0o755},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666", 0o755},
		{"shm", "/dev/shm", "tmpfs", nsd, "mode=1777", 0o1777},
		{"tmpfs", "/run", "tmpfs", nsd, "mode=0755", 0o755},
		{"cgroup2", cgroupRoot, "cgroup2", nsd | unix.MS_NOEXEC, "", 0o555},
	}
}

// bootPID1 prepares a bare kernel for envd. Every step is best effort and
// logged: a missing mount degrades one feature, it must not stop init.
func bootPID1(log *slog.Logger, cgroupRoot string) {
	if os.Getenv("PATH") == "" {
		_ = os.Setenv("PATH", defaultPath)
	}
	mounted := mountPoints() // empty until /proc is there
	for _, m := range bootMounts(cgroupRoot) {
		if mounted[m.target] {
			continue // already there (devtmpfs auto-mount, a test namespace)
		}
		if err := os.MkdirAll(m.target, m.mode); err != nil && !errors.Is(err, os.ErrExist) {
			log.Warn("pid1: cannot create mount point", "path", m.target, "err", err)
			continue
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			log.Warn("pid1: mount failed", "path", m.target, "type", m.fstype, "err", err)
			continue
		}
		log.Info("pid1: mounted", "path", m.target, "type", m.fstype)
		if m.target == "/proc" {
			mounted = mountPoints()
		}
		if m.fstype == "cgroup2" {
			enableControllers(log, m.target)
		}
	}
	ensurePtmx(log)
	if err := loopbackUp(); err != nil {
		log.Warn("pid1: cannot bring up lo", "err", err)
	} else {
		log.Info("pid1: loopback up")
	}
}

// enableControllers writes +cpu +memory +io one by one, so a controller the
// kernel lacks does not keep the others off (BEHAVIOR.md 11.2 W4).
func enableControllers(log *slog.Logger, root string) {
	p := filepath.Join(root, "cgroup.subtree_control")
	for _, c := range []string{"+cpu", "+memory", "+io"} {
		if err := os.WriteFile(p, []byte(c), 0); err != nil {
			log.Warn("pid1: cannot enable cgroup controller", "controller", c, "err", err)
		}
	}
}

// ensurePtmx makes /dev/ptmx point at the devpts instance when devtmpfs
// did not provide it.
func ensurePtmx(log *slog.Logger) {
	if _, err := os.Lstat("/dev/ptmx"); err == nil {
		return
	}
	if err := os.Symlink("pts/ptmx", "/dev/ptmx"); err != nil {
		log.Warn("pid1: cannot create /dev/ptmx", "err", err)
	}
}

// loopbackUp sets IFF_UP on lo with SIOCSIFFLAGS.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	if ifr.Uint16()&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// mountPoints lists this namespace's mount points from /proc/self/mountinfo.
func mountPoints() map[string]bool {
	out := map[string]bool{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			out[fields[4]] = true
		}
	}
	return out
}

// signalAll sends sig to every process but envd (kill(-1) as PID 1).
func signalAll(sig unix.Signal) { _ = unix.Kill(-1, sig) }

// reapAllUntil reaps children until none is left or the deadline passes.
// Only called once the reaper is closed, so nothing else waits for them.
// It reports whether every process is gone (ECHILD: as init, every
// process in the namespace is a descendant, orphans reparent to it).
func reapAllUntil(deadline time.Time) bool {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.ECHILD):
			return true
		case pid > 0:
			continue
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exitPID1 is deferred by run() as PID 1: whatever ends run (a return, a
// panic), init powers off instead of exiting. termBy is when processes
// were first sent SIGTERM (zero: not yet).
func exitPID1(log *slog.Logger, panicked any, termBy time.Time) {
	if panicked != nil {
		log.Error("pid1: panic in main", "panic", panicked)
	}
	if termBy.IsZero() {
		termBy = time.Now().Add(termGrace)
	}
	powerOff(log, termBy)
}

// powerOff ends PID 1: SIGTERM to every process, a wait until termBy,
// SIGKILL, sync, then reboot(POWER_OFF), which in a VM stops it cleanly
// (and in a PID namespace ends the namespace). It never returns.
func powerOff(log *slog.Logger, termBy time.Time) {
	signalAll(unix.SIGTERM)
	clean := reapAllUntil(termBy)
	if !clean {
		signalAll(unix.SIGKILL)
		clean = reapAllUntil(time.Now().Add(killGrace))
	}
	log.Info("pid1: powering off", "all_processes_ended", clean)
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	log.Error("pid1: power off failed; halting here", "err", err)
	select {}
}
