package process

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/reaper"
	"github.com/sandboxd/envd/internal/safe"
	"github.com/sandboxd/envd/internal/users"
)

// Child priorities (BEHAVIOR.md 3.9, E11).
const (
	childNice    = 0
	childOOM     = 100
	ioprioBE4    = 2<<13 | 4 // IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 4)
	ioprioWhoPID = 1         // IOPRIO_WHO_PROCESS; who=0 is the calling thread
)

// spawner forks every child from one goroutine locked to an OS thread whose
// nice and IO priority are the children's: both are per-thread on Linux and
// copied to a child at fork. The thread is never unlocked, so it dies with
// the goroutine instead of going back to the Go scheduler's pool.
type spawner struct {
	log *slog.Logger
	// direct forks from the caller's thread: envd already runs at the
	// children's nice and IO priority, so no thread can hand out others,
	// and the hop to the spawn thread (tens of µs per Start) is saved.
	direct bool
	reqs   chan func()
	done   chan struct{}
	oom    *os.File // envd's /proc/self/oom_score_adj, nil when unavailable

	mu     sync.Mutex // guards closed and serialises sends on reqs with close
	closed bool
}

func newSpawner(log *slog.Logger) (*spawner, error) {
	s := &spawner{log: log, reqs: make(chan func()), done: make(chan struct{})}
	if f, err := os.OpenFile("/proc/self/oom_score_adj", os.O_RDWR, 0); err == nil {
		s.oom = f
	} else {
		log.Warn("cannot open oom_score_adj; children inherit envd's", "err", err)
	}
	if samePriorities() {
		s.direct = true
		close(s.done)
		return s, nil
	}
	ready := make(chan struct{})
	go s.run(ready)
	<-ready
	return s, nil
}

// samePriorities reports whether envd (every thread starts from the main
// thread's values) runs at nice 0 with the default or best-effort/4 IO
// priority, which is what children must get.
func samePriorities() bool {
	// getpriority returns 20-nice for the raw syscall.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil || 20-prio != childNice {
		return false
	}
	const ioprioGet = 0 // IOPRIO_WHO_PROCESS-relative get of this thread
	v, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoPID, ioprioGet, 0)
	return e == 0 && (v == 0 || v == ioprioBE4)
}

func (s *spawner) run(ready chan<- struct{}) {
	defer close(s.done)
	defer safe.Recover(s.log, "process spawner")
	runtime.LockOSThread()
	if err := unix.Setpriority(unix.PRIO_PROCESS, 0, childNice); err != nil {
		s.log.Warn("cannot set the spawn thread's nice", "err", err)
	}
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoPID, 0, ioprioBE4); e != 0 {
		s.log.Warn("cannot set the spawn thread's IO priority", "err", e)
	}
	close(ready)
	for fn := range s.reqs {
		func() {
			defer safe.Recover(s.log, "process spawn")
			fn()
		}()
	}
}

// do runs fn on the spawn thread (or inline when direct) and waits for it.
func (s *spawner) do(fn func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errs.New(errs.Unavailable, "envd is shutting down")
	}
	if s.direct {
		fn()
		return nil
	}
	finished := make(chan struct{})
	s.reqs <- func() { defer close(finished); fn() }
	<-finished
	return nil
}

func (s *spawner) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		if !s.direct {
			close(s.reqs)
		}
	}
	s.mu.Unlock()
	<-s.done
	if s.oom != nil {
		s.oom.Close()
	}
}

// withChildOOM runs fork with envd's oom_score_adj at the children's value
// and restores envd's afterwards. Restoring never needs CAP_SYS_RESOURCE:
// the kernel lets a process go back down to oom_score_adj_min, which only a
// privileged write moves, so envd's current value is always at or above it.
func (s *spawner) withChildOOM(fork func()) {
	if s.oom == nil {
		fork()
		return
	}
	var b [16]byte
	n, err := s.oom.ReadAt(b[:], 0)
	if n == 0 && err != nil {
		fork()
		return
	}
	cur := strings.TrimSpace(string(b[:n]))
	want := strconv.Itoa(childOOM)
	if cur == want {
		fork()
		return
	}
	if _, err := s.oom.WriteAt([]byte(want), 0); err != nil {
		s.log.Warn("cannot set oom_score_adj for a child", "err", err)
	}
	defer func() {
		if _, err := s.oom.WriteAt([]byte(cur), 0); err != nil {
			s.log.Error("cannot restore envd's oom_score_adj", "err", err)
		}
	}()
	fork()
}

// spawnSpec is one fork+exec.
type spawnSpec struct {
	path     string   // resolved executable, "" when the lookup failed
	argv     []string // argv[0] is the command as requested
	attr     *syscall.ProcAttr
	fallback []string // /bin/sh argv reporting why argv cannot run
}

// start forks the child on the spawn thread through the reaper.
func (s *spawner) start(r *reaper.Reaper, sp spawnSpec) (*reaper.Child, error) {
	var child *reaper.Child
	var err error
	derr := s.do(func() {
		child, err = r.Start(func() (pid int, ferr error) {
			s.withChildOOM(func() { pid, ferr = forkExec(sp) })
			return pid, ferr
		})
	})
	if derr != nil {
		return nil, derr
	}
	return child, err
}

// forkExec execs the command, or /bin/sh when the command cannot be
// executed, so that the client gets the shell's message and exit code.
func forkExec(sp spawnSpec) (int, error) {
	var err error
	if sp.path != "" {
		var pid int
		pid, err = syscall.ForkExec(sp.path, sp.argv, sp.attr)
		if err == nil || !execFailure(err) {
			return pid, err
		}
	}
	pid, ferr := syscall.ForkExec("/bin/sh", sp.fallback, sp.attr)
	if ferr != nil {
		if err == nil {
			err = errs.New(errs.Invalid, "%s: command not found (and /bin/sh cannot report it: %v)", sp.argv[0], ferr)
		}
		return 0, err
	}
	return pid, nil
}

// execFailure tells errors of execve itself from setup failures (chdir,
// credentials), which the shell would hit too.
func execFailure(err error) bool {
	for _, e := range []error{unix.ENOENT, unix.EACCES, unix.ENOEXEC, unix.ENOTDIR,
		unix.ELOOP, unix.ENAMETOOLONG, unix.EISDIR, unix.ETXTBSY, unix.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// lookPath finds cmd on the child's PATH (relative entries are resolved by
// the kernel against the child's cwd). "" means not found.
func lookPath(cmd, path string) string {
	if cmd == "" {
		return ""
	}
	if strings.Contains(cmd, "/") {
		return cmd
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, cmd)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			if !filepath.IsAbs(p) {
				p = "./" + p
			}
			return p
		}
	}
	return ""
}

// buildEnv merges the child environment in the spec's order, later entries
// winning (PROTOCOL.md 3.1): PATH, HOME, USER, LOGNAME (and TERM for a PTY),
// then the global env, then the request's envs.
func buildEnv(u *users.User, path string, pty bool, global, req map[string]string) (out []string, childPath string) {
	env := map[string]string{"PATH": path, "HOME": u.Home, "USER": u.Name, "LOGNAME": u.Name}
	if pty {
		env["TERM"] = "xterm-256color"
	}
	for k, v := range global {
		env[k] = v
	}
	for k, v := range req {
		env[k] = v
	}
	out = make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out, env["PATH"]
}

// sysAttr is the kernel-level spawn configuration: credentials and own
// process group (or session + controlling tty); place adds the cgroup.
func (m *Manager) sysAttr(u *users.User, pty bool) *syscall.SysProcAttr {
	sys := &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups},
	}
	if pty {
		sys.Setsid, sys.Setctty, sys.Ctty = true, true, 0
	} else {
		sys.Setpgid = true
	}
	return sys
}

// place starts the child in the cgroup its kind calls for, under the
// cgroup manager's freeze guard (see Cgroups).
func (m *Manager) place(sys *syscall.SysProcAttr, pty bool, tag *string, start func() (*reaper.Child, error)) (*reaper.Child, error) {
	if m.cgroups == nil {
		return start()
	}
	kind := CgroupUser
	switch {
	case tag != nil && *tag == "_system":
		kind = CgroupSystem
	case pty:
		kind = CgroupPTY
	}
	var child *reaper.Child
	err := m.cgroups.Place(kind, func(fd int, ok bool) error {
		sys.UseCgroupFD, sys.CgroupFD = ok, fd
		var err error
		child, err = start()
		return err
	})
	return child, err
}
