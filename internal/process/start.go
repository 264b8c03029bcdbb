package process

import (
	"os"
	"syscall"
	"time"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/reaper"
	"github.com/sandboxd/envd/internal/safe"
	"github.com/sandboxd/envd/internal/users"
)

// StartOptions describe one Start. Dir is the resolved cwd; Config keeps
// the request as sent (List reports it unchanged).
type StartOptions struct {
	Config    Config
	User      *users.User
	Dir       string
	GlobalEnv map[string]string
	PTY       *Size   // nil: pipes
	Tag       *string // nil: untagged
	Stdin     bool    // pipe stdin (ignored for a PTY)
	// Timeout kills the process group this long after Start (0: never).
	Timeout time.Duration
	// Keepalive is the idle interval of the returned subscription.
	Keepalive time.Duration
}

// shellFallback runs a command envd could not execute, so the shell
// reports it as the peers' wrapper does: "not found" and 127 (also for an
// empty command), "Permission denied" and 126, or runs a script without
// a #! line.
const shellFallback = `command -v "$1" >/dev/null 2>&1 || { echo "sh: 1: $1: not found" >&2; exit 127; }; exec "$@"`

// Start spawns the process and returns a subscription that was attached
// before the process could write anything.
func (m *Manager) Start(o StartOptions) (*Sub, error) {
	if o.User == nil {
		return nil, errs.New(errs.Unauthenticated, "no user for the process")
	}
	if st, err := os.Stat(o.Dir); err != nil {
		return nil, errs.New(errs.Invalid, "cwd '%s' does not exist", o.Dir)
	} else if !st.IsDir() {
		return nil, errs.New(errs.Invalid, "cwd '%s' is not a directory", o.Dir)
	}
	isPTY := o.PTY != nil
	env, childPath := buildEnv(o.User, m.path, isPTY, o.GlobalEnv, o.Config.Envs)
	argv := append([]string{o.Config.Cmd}, o.Config.Args...)
	sp := spawnSpec{
		path:     lookPath(o.Config.Cmd, childPath),
		argv:     argv,
		fallback: append([]string{"sh", "-c", shellFallback, "sh"}, argv...),
	}

	p := &Proc{m: m, cfg: o.Config, tag: o.Tag, done: make(chan struct{}),
		stop: make(chan struct{}), reaped: make(chan struct{})}
	var childFiles []*os.File
	defer func() {
		for _, f := range childFiles {
			f.Close()
		}
	}()
	files, err := p.openIO(o, &childFiles)
	if err != nil {
		p.closeIO()
		return nil, errs.New(errs.Invalid, "cannot set up the process's I/O: %v", err)
	}
	sp.attr = &syscall.ProcAttr{Dir: o.Dir, Env: env, Files: files, Sys: m.sysAttr(o.User, isPTY)}

	// Subscribe before the process exists: nothing it writes is lost.
	sub := newSub(m, 0, p.done, &p.end, o.Keepalive)
	sub.p = p
	p.subs = []*Sub{sub}

	child, err := m.place(sp.attr.Sys, isPTY, o.Tag, func() (*reaper.Child, error) { return m.sp.start(m.reaper, sp) })
	if err != nil {
		p.closeIO()
		if errs.Kind(err) != nil {
			return nil, err
		}
		return nil, errs.New(errs.Invalid, "cannot start %q: %v", o.Config.Cmd, err)
	}
	p.child, p.pid, sub.pid = child, child.Pid, child.Pid

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = m.reaper.Signal(child, syscall.SIGKILL, true)
		p.closeIO()
		return nil, errs.New(errs.Unavailable, "envd is shutting down")
	}
	m.registerLocked(p)
	readers := p.readers()
	m.wg.Add(len(readers) + 1)
	m.mu.Unlock()

	p.eof = make(chan struct{}, len(readers))
	for _, r := range readers {
		go r()
	}
	go p.waitExit()
	m.log.Debug("process started", "pid", p.pid, "pty", isPTY)
	if o.Timeout > 0 {
		p.setTimer(time.AfterFunc(o.Timeout, func() {
			defer safe.Recover(m.log, "process timeout")
			_ = p.kill(syscall.SIGKILL)
		}))
	}
	return sub, nil
}

// openIO creates the pipes or the PTY. It returns the child's fds 0, 1, 2
// and appends the child's ends to childFiles (closed after the fork).
func (p *Proc) openIO(o StartOptions, childFiles *[]*os.File) ([]uintptr, error) {
	if o.PTY != nil {
		master, slave, err := openPTY(*o.PTY)
		if err != nil {
			return nil, err
		}
		p.pty = master
		*childFiles = append(*childFiles, slave)
		fd := slave.Fd()
		return []uintptr{fd, fd, fd}, nil
	}
	fds := make([]uintptr, 3)
	if o.Stdin {
		w, r, err := newPipe(false)
		if err != nil {
			return nil, err
		}
		p.stdin = w
		*childFiles = append(*childFiles, r)
		fds[0] = r.Fd()
	} else {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		*childFiles = append(*childFiles, null)
		fds[0] = null.Fd()
	}
	for i := 1; i <= 2; i++ {
		r, w, err := newPipe(true)
		if err != nil {
			return nil, err
		}
		p.out[i-1] = r
		*childFiles = append(*childFiles, w)
		fds[i] = w.Fd()
	}
	return fds, nil
}
