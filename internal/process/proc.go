package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/reaper"
	"github.com/sandboxd/envd/internal/safe"
)

// Proc is one process in the table.
type Proc struct {
	m     *Manager
	pid   int
	seq   uint64
	tag   *string
	cfg   Config
	child *reaper.Child

	pty *os.File    // PTY master, nil in pipe mode
	out [2]*os.File // stdout, stderr read ends (pipe mode)
	eof chan struct{}

	inMu  sync.Mutex // guards stdin (held briefly; Close may race a Write)
	stdin *os.File   // pipe write end; nil when disabled or closed
	wrMu  sync.Mutex // guards nothing but order: serialises input writes

	stop     chan struct{} // closed by KILL/TERM/timeout: stop waiting for output EOF (E10)
	stopOnce sync.Once
	reaped   chan struct{} // closed after the reap: readers stop delivering

	mu    sync.Mutex // guards subs, ended, end, timer
	subs  []*Sub     // copy-on-write: readers iterate a snapshot (E2)
	ended bool
	end   End
	timer *time.Timer
	done  chan struct{} // closed once end is set
}

// End is how a process ended, in Go's os/exec terms (PROTOCOL.md 3.3.1).
type End struct {
	ExitCode int
	Exited   bool
	Status   string
	Error    string // "" when the process exited with 0
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.pid }

// IsPTY reports whether the process runs on a PTY.
func (p *Proc) IsPTY() bool { return p.pty != nil }

func (p *Proc) setTimer(t *time.Timer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		t.Stop()
		return
	}
	p.timer = t
}

// subscribe attaches a new subscriber; after the end it gets the end only.
func (p *Proc) subscribe(keepalive time.Duration) (*Sub, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := newSub(p.m, p.pid, p.done, &p.end, keepalive)
	if p.ended {
		return s, nil
	}
	if len(p.subs) >= maxSubs {
		return nil, errs.New(errs.Exhausted, "process %d already has %d subscribers", p.pid, maxSubs)
	}
	s.p = p
	p.subs = append(p.subs[:len(p.subs):len(p.subs)], s)
	return s, nil
}

func (p *Proc) unsubscribe(s *Sub) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.subs {
		if x == s {
			next := make([]*Sub, 0, len(p.subs)-1)
			next = append(next, p.subs[:i]...)
			p.subs = append(next, p.subs[i+1:]...)
			return
		}
	}
}

// kick disconnects a subscriber that made no progress for the stall timeout.
func (p *Proc) kick(s *Sub) {
	p.unsubscribe(s)
	s.kickOnce.Do(func() { close(s.kicked) })
	p.m.log.Warn("disconnected a stalled output subscriber", "pid", p.pid, "after", p.m.stall)
}

// waitExit waits for output EOF (or a stop), then the reap, then publishes
// the end (BEHAVIOR.md 3.5).
func (p *Proc) waitExit() {
	defer p.m.wg.Done()
	defer safe.Recover(p.m.log, "process waiter")
	n := cap(p.eof)
	got := 0
	for got < n {
		select {
		case <-p.eof:
			got++
			continue
		case <-p.stop:
		case <-p.m.closing:
			p.closeIO()
			return
		}
		break
	}
	select {
	case <-p.child.Done():
	case <-p.m.closing:
		p.closeIO()
		return
	}
	close(p.reaped)
	p.closeIO()
	for ; got < n; got++ {
		<-p.eof
	}
	end := endOf(p.child.Status())
	// Leave the table before anyone sees the end: a client that got End
	// and then calls List must not find the process (a Connect meanwhile
	// finds the retained exit and waits for done).
	p.m.retire(p, end)
	p.mu.Lock()
	p.ended, p.end = true, end
	if p.timer != nil {
		p.timer.Stop()
	}
	p.subs = nil
	close(p.done)
	p.mu.Unlock()
	p.m.log.Debug("process ended", "pid", p.pid, "status", end.Status)
}

func (p *Proc) stopOutput() { p.stopOnce.Do(func() { close(p.stop) }) }

// closeIO closes every parent-side fd; readers blocked in Read return.
func (p *Proc) closeIO() {
	for _, f := range p.out {
		if f != nil {
			f.Close()
		}
	}
	if p.pty != nil {
		p.pty.Close()
	}
	p.inMu.Lock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
	p.inMu.Unlock()
}

// endOf formats a wait status the way Go's os/exec does.
func endOf(ws unix.WaitStatus) End {
	var e End
	switch {
	case ws.Exited():
		e.ExitCode, e.Exited = ws.ExitStatus(), true
		e.Status = "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		e.ExitCode = -1
		e.Status = "signal: " + ws.Signal().String()
		if ws.CoreDump() {
			e.Status += " (core dumped)"
		}
	default:
		e.ExitCode, e.Status = -1, "exit status unknown"
	}
	if !(e.Exited && e.ExitCode == 0) {
		e.Error = e.Status
	}
	return e
}

// Signal sends SIGKILL or SIGTERM to the process group (so children die
// with their parent) and stops waiting for output EOF (E10).
func (p *Proc) Signal(sig syscall.Signal) error {
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return errs.New(errs.Unsupported, "invalid signal: %v", sig)
	}
	return p.kill(sig)
}

func (p *Proc) kill(sig syscall.Signal) error {
	if err := p.m.reaper.Signal(p.child, sig, true); err != nil {
		return fmt.Errorf("error sending signal: %w", err)
	}
	p.stopOutput()
	return nil
}

// Write sends input to the stdin pipe (pty=false) or the PTY (pty=true).
// It returns when the write completed or ctx ended.
func (p *Proc) Write(ctx context.Context, pty bool, data []byte) error {
	if pty {
		if p.pty == nil {
			return errors.New("tty not assigned to process")
		}
		return p.writeAll(ctx, p.pty, data)
	}
	if p.pty != nil {
		return errors.New("tty assigned to process, send input as pty")
	}
	p.inMu.Lock()
	f := p.stdin
	p.inMu.Unlock()
	if f == nil {
		return errors.New("stdin not enabled or closed")
	}
	return p.writeAll(ctx, f, data)
}

// CloseStdin closes the stdin pipe; idempotent.
func (p *Proc) CloseStdin() error {
	if p.pty != nil {
		return errs.New(errs.Unknown, "error closing stdin: cannot close stdin for PTY process, send Ctrl+D (0x04) instead")
	}
	p.inMu.Lock()
	defer p.inMu.Unlock()
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
	return nil
}

// Resize changes the PTY size.
func (p *Proc) Resize(sz Size) error {
	if p.pty == nil {
		return errors.New("tty not assigned to process")
	}
	return resize(p.pty, sz)
}

// writeAll writes data in order (one writer at a time). When ctx ends a
// past write deadline is set, so a process that never reads cannot hold
// the caller forever. No goroutine per write: context.AfterFunc runs the
// deadline only if ctx ends first, and stop() waits it out otherwise.
func (p *Proc) writeAll(ctx context.Context, f *os.File, data []byte) error {
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	_ = f.SetWriteDeadline(time.Time{})
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = f.SetWriteDeadline(time.Unix(1, 0))
	})
	defer func() {
		if !stop() {
			<-fired // the deadline is set before the next write clears it
		}
	}()
	if _, err := f.Write(data); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errs.New(errs.Unavailable, "input write cancelled")
		}
		if errors.Is(err, os.ErrClosed) {
			return errors.New("stdin not enabled or closed")
		}
		return fmt.Errorf("error writing input: %w", err)
	}
	return nil
}
