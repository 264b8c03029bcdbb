// Package process runs user processes (pipes and PTYs), fans their output
// out to subscribers and keeps the process table (PROTOCOL.md 3.1–3.3,
// BEHAVIOR.md 3).
//
// Spawning: one fork+exec of exactly what the client asked for, through
// the reaper (the one owner of child waiting), from a dedicated goroutine
// locked to an OS thread whose nice is 0 and IO priority best-effort/4
// (both per-thread on Linux and inherited by the child). oom_score_adj is
// per-process, so envd's own value is set to 100 just around the fork and
// restored right after (spawns are serialised): for that window of a few
// hundred microseconds envd itself is at 100. Each child gets its own
// process group (PTY: its own session with the PTY as controlling
// terminal). A command that cannot be executed is handed to /bin/sh, which
// reports it the way the peers' wrapper shell does (stderr text, exit 127
// or 126), so the client still sees start, stderr and end.
//
// Output: one reader per stream. PTY reads are up to 16 KiB (as E2B).
// Pipe reads are up to 256 KiB from a 1 MiB pipe, where E2B reads 32 KiB:
// chunk boundaries are no part of the contract (clients concatenate), and
// fewer, larger events cut the per-GiB syscalls, messages and wakeups
// about eightfold. A read with no subscriber is dropped, so a process
// nobody watches never blocks. Otherwise the bytes go into one event that
// every subscriber's queue (queueLen events) shares: small reads are
// copied once into an exact-size slice, large ones hand over their pooled
// buffer, which the last subscriber to send it returns to the pool.
// Delivery is lossless with backpressure: while a subscriber's queue is
// full the reader waits, the pipe fills and the process blocks, as in E2B.
// A subscriber that makes no progress for Options.StallTimeout is
// disconnected with resource_exhausted (BEHAVIOR.md 12.2), never silently
// skipped; one that goes away is skipped at once. Memory per process is
// therefore bounded by queueLen events per stream (4 MiB), whatever it
// prints and however many subscribers share it.
//
// End comes after all output was delivered and the child was reaped;
// SendSignal(KILL/TERM) and the Start timeout stop waiting for output EOF
// (E10). Ended processes are retained for Retention so a late Connect still
// gets the end (bounded by maxRetained).
package process

import (
	"cmp"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/reaper"
)

// Tuning constants. Each bounds a queue or a table.
const (
	pipeChunk   = 256 << 10 // read size of stdout/stderr (see the package doc)
	ptyChunk    = 16 << 10  // read size of a PTY master
	queueLen    = 16        // events per subscriber queue
	pipeSize    = 1 << 20   // kernel capacity of stdout/stderr pipes
	maxSubs     = 256       // subscribers per process
	maxRetained = 4096      // retained exits
	// Retention is how long an exit stays visible to Connect (E2B: 30 s).
	Retention = 30 * time.Second
	// DefaultStallTimeout is how long a full subscriber may block output.
	DefaultStallTimeout = 60 * time.Second
)

// Cgroup kinds a process is placed in (BEHAVIOR.md 3.10).
type CgroupKind int

const (
	CgroupUser   CgroupKind = iota // ordinary processes
	CgroupPTY                      // PTY processes
	CgroupSystem                   // tag "_system": envd's own group
)

// Cgroups places children for CLONE_INTO_CGROUP: Place runs start with
// the group's directory fd, holding off a freeze of that group until start
// returns, so no clone lands in a group frozen meanwhile (E16). ok=false
// leaves the child in envd's cgroup. A nil Cgroups is the no-op manager.
type Cgroups interface {
	Place(kind CgroupKind, start func(fd int, ok bool) error) error
}

// Options configure a Manager.
type Options struct {
	Log    *slog.Logger
	Reaper *reaper.Reaper // required
	// Cgroups is optional (nil: no cgroup placement).
	Cgroups Cgroups
	// StallTimeout overrides DefaultStallTimeout (tests).
	StallTimeout time.Duration
	// Path is the PATH children get before any global or request env;
	// "" takes envd's own, or DefaultPath when that is empty too (W8).
	Path string
}

// DefaultPath is used when envd itself has no PATH (W8).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Manager owns the process table.
type Manager struct {
	log     *slog.Logger
	reaper  *reaper.Reaper
	cgroups Cgroups
	stall   time.Duration
	path    string
	sp      *spawner
	chunks  chunkPool // pooled read buffers (output.go)
	closing chan struct{}
	wg      sync.WaitGroup // waiters and readers

	mu       sync.Mutex // guards procs, retained, seq, closed
	procs    map[int]*Proc
	retained retention
	seq      uint64
	closed   bool
}

// New starts the spawner thread.
func New(o Options) (*Manager, error) {
	if o.Reaper == nil {
		return nil, errs.New(errs.Invalid, "process: a reaper is required")
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{log: log, reaper: o.Reaper, cgroups: o.Cgroups, stall: o.StallTimeout,
		path: o.Path, closing: make(chan struct{}), procs: map[int]*Proc{}, retained: newRetention()}
	if m.stall <= 0 {
		m.stall = DefaultStallTimeout
	}
	if m.path == "" {
		m.path = os.Getenv("PATH")
	}
	if m.path == "" {
		m.path = DefaultPath
	}
	sp, err := newSpawner(log)
	if err != nil {
		return nil, err
	}
	m.sp = sp
	return m, nil
}

// Close stops every goroutine of the manager. User processes keep running
// (the host decides their fate, BEHAVIOR.md 1.8); their pipes are closed.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.closing)
	m.mu.Unlock()
	m.wg.Wait()
	m.sp.close()
	return nil
}

// Config is the process configuration exactly as the client sent it.
type Config struct {
	Cmd  string
	Args []string
	Envs map[string]string
	Cwd  *string
}

// Info is one List entry.
type Info struct {
	Pid    int
	Tag    *string
	Config Config
}

// Selector picks a process by pid, or by tag when ByTag is set.
type Selector struct {
	Pid   uint32
	Tag   string
	ByTag bool
}

func (s Selector) notFound() error {
	if s.ByTag {
		return errs.New(errs.NotFound, "process with tag %s not found", s.Tag)
	}
	return errs.New(errs.NotFound, "process with pid %d not found", s.Pid)
}

// List returns every live process, oldest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]*Proc, 0, len(m.procs))
	for _, p := range m.procs {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *Proc) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Info, len(ps))
	for i, p := range ps {
		out[i] = Info{Pid: p.pid, Tag: p.tag, Config: p.cfg}
	}
	return out
}

// Find returns the live process the selector names. With several processes
// under one tag the newest wins (E6: every tagged process is reachable).
func (m *Manager) Find(sel Selector) (*Proc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.findLocked(sel); p != nil {
		return p, nil
	}
	return nil, sel.notFound()
}

func (m *Manager) findLocked(sel Selector) *Proc {
	if !sel.ByTag {
		return m.procs[int(sel.Pid)]
	}
	var best *Proc
	for _, p := range m.procs {
		if p.tag != nil && *p.tag == sel.Tag && (best == nil || p.seq > best.seq) {
			best = p
		}
	}
	return best
}

// Connect subscribes to a live process, or replays a retained exit as
// start+end (PROTOCOL.md 3.2).
func (m *Manager) Connect(sel Selector, keepalive time.Duration) (*Sub, error) {
	m.mu.Lock()
	p := m.findLocked(sel)
	if p == nil {
		r := m.retained.find(sel, time.Now())
		m.mu.Unlock()
		if r == nil {
			return nil, sel.notFound()
		}
		end := r.end
		return newSub(m, r.pid, r.done, &end, keepalive), nil
	}
	m.mu.Unlock()
	return p.subscribe(keepalive)
}

// registerLocked adds a started process, dropping retained exits with the
// same pid or tag (PROTOCOL.md 3.2).
func (m *Manager) registerLocked(p *Proc) {
	m.retained.drop(p.pid, p.tag)
	m.seq++
	p.seq = m.seq
	m.procs[p.pid] = p
}

// retire moves an ended process from the table to the retention list.
func (m *Manager) retire(p *Proc, end End) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.procs[p.pid] == p {
		delete(m.procs, p.pid)
	}
	m.retained.add(&retainedExit{pid: p.pid, tag: p.tag, at: time.Now(), end: end, done: p.done})
}
