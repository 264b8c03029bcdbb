// Package cgroups places user processes in cgroup v2 groups under
// --cgroup-root (BEHAVIOR.md 3.10), keeps the workload from starving envd,
// and freezes the workload around a pause (10.8).
//
// Groups: "user" (pipe processes) and "ptys" (PTY processes). There is no
// "socats" group: port forwarding is relayed inside envd itself, so it
// shares envd's protection and is never part of a workload freeze (E16).
//
// Children are born inside their group with clone3(CLONE_INTO_CGROUP)
// through Spawn; nothing is moved after start. When cgroup v2 is not
// usable the manager is a no-op: Spawn runs every start in envd's group.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/safe"
)

// Kind selects the group a process is born in.
type Kind int

const (
	User   Kind = iota // every non-PTY user process: group "user"
	PTY                // PTY processes: group "ptys"
	System             // E2B tag "_system": stays in envd's own group, never frozen
)

// groupNames are the directory names under the root, indexed by Kind.
var groupNames = [2]string{"user", "ptys"}

// Options configure a Manager.
type Options struct {
	Log      *slog.Logger
	Root     string // cgroup v2 mount point or a subtree of it (--cgroup-root)
	Disabled bool   // --no-cgroups
	// ProtectSelf sets envd's oom_score_adj to -1000 and memory.min/low on
	// envd's own group when they are unset (BEHAVIOR.md 1.2). Needs root.
	ProtectSelf bool
	// WatchdogAfter thaws a freeze nobody thawed (default 10 min, 10.8).
	WatchdogAfter time.Duration
}

// Manager owns the workload groups. The zero root means no-op.
type Manager struct {
	log   *slog.Logger
	root  string // "" when cgroups are not used
	dirs  [2]string
	self  string          // envd's own group (absolute path) when known
	chain map[string]bool // envd's own group and its ancestors: never frozen
	known bool            // envd's own group was located

	spawnMu sync.RWMutex // guards frozen and fds; read-held across a spawn so a freeze waits for in-flight clones
	frozen  [2]bool      // a freeze of ours covers the group: no spawns into it
	fds     [2]int       // directory fds of user and ptys for CgroupFD; -1 after Close

	lock   chan struct{}   // the one freeze/thaw lock shared by every caller (10.8)
	ours   map[string]bool // cgroups our freezes wrote, ≤ maxThaw; owned by whoever holds lock
	wd     *watchdog
	stop   chan struct{}
	wg     sync.WaitGroup // the watchdog goroutine
	closed sync.Once
}

// New builds the groups. Any failure to use cgroup v2 yields a no-op
// manager and one warning; New itself fails only on missing options.
func New(o Options) (*Manager, error) {
	if o.Log == nil {
		return nil, errors.New("cgroups: missing Log")
	}
	if o.WatchdogAfter <= 0 {
		o.WatchdogAfter = 10 * time.Minute
	}
	m := &Manager{log: o.Log, fds: [2]int{-1, -1}, lock: make(chan struct{}, 1),
		stop: make(chan struct{}), chain: map[string]bool{}, ours: map[string]bool{}}
	if o.ProtectSelf {
		protectOOM(o.Log)
	}
	switch {
	case o.Disabled:
		o.Log.Warn("cgroups disabled (--no-cgroups): user processes run in envd's cgroup")
		return m, nil
	default:
		if err := m.setup(o.Root); err != nil {
			m.closeFDs()
			o.Log.Warn("cgroup v2 not usable: user processes run in envd's cgroup", "root", o.Root, "err", err)
			return m, nil
		}
	}
	if o.ProtectSelf {
		m.protectMemory()
	}
	m.wd = newWatchdog(o.WatchdogAfter)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer safe.Recover(m.log, "cgroup freeze watchdog")
		m.wd.run(m.stop, m.watchdogThaw)
	}()
	return m, nil
}

// Enabled reports whether processes are placed in workload groups.
func (m *Manager) Enabled() bool { return m.root != "" }

// Dir returns the directory of kind's group ("" for System or no-op).
func (m *Manager) Dir(k Kind) string {
	if m.root == "" || k < 0 || int(k) >= len(m.dirs) {
		return ""
	}
	return m.dirs[k]
}

// Close stops the watchdog and releases the group fds. It does not remove
// the groups: processes may still live in them.
func (m *Manager) Close() error {
	m.closed.Do(func() {
		close(m.stop)
		m.wg.Wait()
		m.spawnMu.Lock()
		m.closeFDs()
		m.spawnMu.Unlock()
	})
	return nil
}

func (m *Manager) closeFDs() {
	for i, fd := range m.fds {
		if fd >= 0 {
			_ = unix.Close(fd)
			m.fds[i] = -1
		}
	}
}

// setup checks the filesystem, enables controllers, creates the groups,
// writes their properties and opens their fds.
func (m *Manager) setup(root string) error {
	root = filepath.Clean(root)
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return err
	}
	// A cgroup v1 host has tmpfs here: mkdir and writes succeed, and then
	// every clone into the fd fails with EBADF (E15).
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("%s is not a cgroup2 filesystem (magic %#x)", root, st.Type)
	}
	m.locateSelf(root)
	m.enableControllers(root)
	limit, err := workloadMemory()
	if err != nil {
		m.log.Warn("cannot read MemTotal; workload memory limits skipped", "err", err)
	}
	props := [2][]prop{
		{{"cpu.weight", "50"}, {"io.weight", "default 10"}},
		{{"cpu.weight", "200"}, {"io.weight", "default 50"}},
	}
	for k, name := range groupNames {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		ps := props[k]
		if limit > 0 {
			v := strconv.FormatUint(limit, 10)
			ps = append(ps, prop{"memory.high", v}, prop{"memory.max", v})
		}
		for _, p := range ps {
			if err := m.writeProp(dir, p); err != nil {
				return err
			}
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", dir, err)
		}
		m.fds[k], m.dirs[k] = fd, dir
	}
	m.root = root
	return nil
}

type prop struct{ name, value string }

// writeProp writes one property file. A file that is absent or refused
// means its controller is not enabled: skipped with a log line (3.10).
func (m *Manager) writeProp(dir string, p prop) error {
	f, err := os.OpenFile(filepath.Join(dir, p.name), os.O_WRONLY, 0)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		m.log.Info("cgroup property skipped: controller not enabled", "group", filepath.Base(dir), "property", p.name)
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(p.value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s to %s: %w", p.value, filepath.Join(dir, p.name), err)
	}
	return nil
}

// enableControllers turns on cpu, memory and io for the groups, each on
// its own so one missing controller does not block the others.
func (m *Manager) enableControllers(root string) {
	avail, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		m.log.Info("cannot read cgroup.controllers", "err", err)
		return
	}
	have := strings.Fields(string(avail))
	for _, c := range []string{"cpu", "memory", "io"} {
		if !contains(have, c) {
			m.log.Info("cgroup controller not available", "controller", c, "root", root)
			continue
		}
		if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+"+c), 0); err != nil {
			m.log.Info("cannot enable cgroup controller", "controller", c, "err", err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// workloadMemory is M = MemTotal − min(MemTotal/8, 128 MiB) (3.10, E17):
// the workload hits its own OOM killer before the global one can reach envd.
func workloadMemory() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0, err
			}
			return memLimit(kb * 1024), nil
		}
	}
	return 0, errors.New("MemTotal not found in /proc/meminfo")
}

func memLimit(total uint64) uint64 {
	return total - min(total/8, 128<<20)
}

// Spawn calls start with the directory fd of kind's group for
// SysProcAttr{UseCgroupFD: ok, CgroupFD: fd}; ok=false means "stay in
// envd's group" (System, or no cgroups). While the group is frozen it
// returns errs.Unavailable without calling start: a child cloned into a
// frozen group never reaches exec, and Go's vfork-style clone would block
// envd until it did (E16). A freeze waits for a running start to return,
// so no clone races a freeze of ours. A freeze the guest writes itself is
// checked on disk (best effort: it can still race a spawn).
func (m *Manager) Spawn(k Kind, start func(fd int, ok bool) error) error {
	return m.place(k, true, start)
}

// Place runs start with kind's group fd for SysProcAttr{UseCgroupFD,
// CgroupFD}, holding the spawn gate for reading so a freeze waits for the
// clone. ok=false keeps the child in envd's group: for System, without
// cgroups, after Close, and while the group is frozen (a clone into a
// frozen group never reaches exec and would block envd, E16); the child
// then runs outside the workload limits instead of being refused.
func (m *Manager) Place(k Kind, start func(fd int, ok bool) error) error {
	return m.place(k, false, start)
}

// FD is Place without the guard across the clone: what Place would hand
// out right now.
func (m *Manager) FD(k Kind) (fd int, ok bool) {
	_ = m.Place(k, func(f int, o bool) error { fd, ok = f, o; return nil })
	return fd, ok
}

// place is Spawn (refuse while frozen) and Place (fall back while frozen).
func (m *Manager) place(k Kind, refuse bool, start func(fd int, ok bool) error) error {
	if k != User && k != PTY {
		return start(-1, false)
	}
	m.spawnMu.RLock()
	defer m.spawnMu.RUnlock()
	if m.fds[k] < 0 {
		return start(-1, false)
	}
	if m.frozen[k] || frozenOnDisk(m.dirs[k]) {
		if refuse {
			return errs.New(errs.Unavailable, "the %s cgroup is frozen (sandbox pausing); retry after resume", groupNames[k])
		}
		m.log.Info("workload cgroup frozen: process starts in envd's cgroup", "group", groupNames[k])
		return start(-1, false)
	}
	return start(m.fds[k], true)
}

// frozenOnDisk reports a freeze requested on dir or already in effect.
func frozenOnDisk(dir string) bool {
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.freeze")); err == nil && strings.TrimSpace(string(b)) == "1" {
		return true
	}
	frozen, err := eventsFrozen(dir)
	return err == nil && frozen
}

// eventsFrozen reads the settled state from cgroup.events ("frozen 1").
func eventsFrozen(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "frozen "); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	return false, errors.New("no frozen field in cgroup.events")
}
