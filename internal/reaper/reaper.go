// Package reaper is envd's one owner of child waiting. Every child envd
// starts is forked through Reaper.Start and its exit status arrives on the
// returned Child; nothing else in the daemon may wait for children (an
// os/exec Cmd.Wait would race the blanket wait of the orphan mode).
//
// Two modes:
//
//   - ReapOrphans (the real binary): envd becomes a child subreaper unless
//     it is PID 1 already, and a SIGCHLD-driven loop reaps every child,
//     orphans included. A status for a pid that is not registered belongs to
//     an orphan and is dropped, so the table holds only live registered
//     children. Start holds the lock across fork and registration, and the
//     loop reaps under the same lock, so a child that exits before it is
//     registered is never mistaken for an orphan.
//   - otherwise (in-process tests, where the test binary has other
//     children): on SIGCHLD the loop polls only the registered pids with
//     wait4(pid, WNOHANG); it never waits for -1.
//
// Because reaping happens under the lock, Signal can check that a child is
// not yet reaped and signal it under that lock: its pid cannot have been
// reused.
package reaper

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/safe"
)

// Options configure a Reaper.
type Options struct {
	Log *slog.Logger
	// ReapOrphans enables the blanket wait (and the subreaper flag). Only
	// the real binary sets it.
	ReapOrphans bool
}

// Reaper forks children and collects their exit statuses.
type Reaper struct {
	log    *slog.Logger
	orphan bool
	sigs   chan os.Signal
	quit   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex // guards children, closed and every Child.reaped
	children map[int]*Child
	closed   bool
}

// Child is one started child. Its status is valid once Done is closed.
type Child struct {
	Pid    int
	done   chan struct{}
	status unix.WaitStatus
	reaped bool
}

// Done is closed when the child has been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Status is the wait status; valid only after Done is closed.
func (c *Child) Status() unix.WaitStatus { return c.status }

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("reaper: closed")

// New starts the reaping loop.
func New(o Options) (*Reaper, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	r := &Reaper{
		log:      log,
		orphan:   o.ReapOrphans,
		sigs:     make(chan os.Signal, 1),
		quit:     make(chan struct{}),
		children: map[int]*Child{},
	}
	if r.orphan && os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			log.Warn("cannot become child subreaper; orphans go to PID 1", "err", err)
		}
	}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

// Close stops the loop. Children still registered never report.
func (r *Reaper) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	signal.Stop(r.sigs)
	close(r.quit)
	r.wg.Wait()
	return nil
}

// Start calls fork (which must start exactly one child and return its pid)
// with the lock held, and registers the pid before the lock is released.
func (r *Reaper) Start(fork func() (int, error)) (*Child, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	pid, err := fork()
	if err != nil {
		return nil, err
	}
	c := &Child{Pid: pid, done: make(chan struct{})}
	r.children[pid] = c
	// The child may have exited before it was registered and its SIGCHLD
	// been handled already: poll once now that it is in the table.
	r.pollLocked(c)
	return c, nil
}

// Signal sends sig to the child's process group (group) or to the child
// only. It does nothing once the child has been reaped. When the group is
// gone but the child is not reaped yet, the child itself is signalled.
func (r *Reaper) Signal(c *Child, sig unix.Signal, group bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.reaped {
		return nil
	}
	if group {
		if err := unix.Kill(-c.Pid, sig); err == nil || !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	err := unix.Kill(c.Pid, sig)
	if errors.Is(err, unix.ESRCH) {
		return nil // a zombie that is about to be reaped
	}
	return err
}

// Live reports how many registered children are not reaped yet.
func (r *Reaper) Live() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.children)
}

func (r *Reaper) loop() {
	defer r.wg.Done()
	defer safe.Recover(r.log, "reaper loop")
	r.sweep()
	for {
		select {
		case <-r.quit:
			return
		case <-r.sigs:
			r.sweep()
		}
	}
}

// maxSweep bounds the work of one sweep under one lock hold pattern; a
// sweep that hits it queues another sweep itself, because SIGCHLDs that
// arrived meanwhile were coalesced into at most one.
const maxSweep = 4096

func (r *Reaper) sweep() {
	if !r.orphan {
		r.mu.Lock()
		for _, c := range r.children {
			r.pollLocked(c)
		}
		r.mu.Unlock()
		return
	}
	for range maxSweep {
		// Peek without reaping, then reap that pid under the lock, so
		// the lock always covers the moment a pid becomes reusable.
		pid, err := peekExited()
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err == nil && got == pid {
			if c, ok := r.children[pid]; ok {
				r.finishLocked(c, ws)
			}
		}
		r.mu.Unlock()
	}
	select {
	case r.sigs <- syscall.SIGCHLD:
	default:
	}
}

// pollLocked reaps c if it has exited. Only for registered children.
func (r *Reaper) pollLocked(c *Child) {
	if c.reaped {
		return
	}
	var ws unix.WaitStatus
	for {
		got, err := unix.Wait4(c.Pid, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err == nil && got == c.Pid {
			r.finishLocked(c, ws)
		} else if errors.Is(err, unix.ECHILD) && !r.orphan {
			// Someone else reaped it (cannot happen in envd); report it
			// as killed rather than hang its waiter forever.
			r.finishLocked(c, unix.WaitStatus(unix.SIGKILL))
		}
		return
	}
}

func (r *Reaper) finishLocked(c *Child, ws unix.WaitStatus) {
	c.status = ws
	c.reaped = true
	delete(r.children, c.Pid)
	close(c.done)
}

// siginfo is the part of the kernel's siginfo_t that SIGCHLD fills.
type siginfo struct {
	signo, errno, code, _ int32
	pid                   int32
	uid                   uint32
	status                int32
	_                     [100]byte
}

// peekExited returns the pid of some exited child without reaping it, 0
// when no child has exited.
func peekExited() (int, error) {
	var info siginfo
	for {
		_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_ALL, 0, uintptr(unsafe.Pointer(&info)),
			unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(info.pid), nil
	}
}
