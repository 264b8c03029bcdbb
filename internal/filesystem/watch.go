package filesystem

import (
	"crypto/rand"
	"errors"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/safe"
)

// WatchOptions describe a watch. Path is absolute and resolved.
type WatchOptions struct {
	Path               string
	Recursive          bool
	IncludeEntry       bool
	AllowNetworkMounts bool
}

// Network filesystems by statfs magic (PROTOCOL.md 3.4): inotify does not
// see changes made by other clients of the share.
var networkMagics = map[uint32]string{
	0x6969:     "nfs",
	0xFF534D42: "cifs",
	0x517B:     "smb",
	0xFE534D42: "smb2",
	0x65735546: "fuse",
}

// checkWatchable applies WatchDir's preconditions in the spec's order.
func checkWatchable(o WatchOptions) error {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Stat(o.Path, &st) }); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return errs.New(errs.NotFound, "path %s not found: %v", o.Path, err)
		}
		return internalf("error statting path %s: %v", o.Path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errs.New(errs.Invalid, "path %s not a directory", o.Path)
	}
	if o.AllowNetworkMounts {
		return nil
	}
	var fs unix.Statfs_t
	if err := ignoringEINTR(func() error { return unix.Statfs(o.Path, &fs) }); err != nil {
		return internalf("error checking mount status: %v", err)
	}
	if _, network := networkMagics[uint32(fs.Type)]; network {
		return errs.New(errs.Invalid, "cannot watch path on network filesystem: %s", o.Path)
	}
	return nil
}

// Watch is a streaming watcher (WatchDir). Its owner reads Events until
// the channel closes, then Err, and must call Close.
type Watch struct {
	s      *Service
	t      *tree
	events chan Event    // closed when the watch ends
	stop   chan struct{} // closed by Close: unblocks a pending send
	done   chan struct{} // closed when the reader goroutine has ended
	err    error         // why the watch ended; written before events closes
	once   sync.Once
}

// streamBuffer bounds events waiting for the stream sender. When it is full
// the reader stops reading, the kernel queue fills, and an overflow ends
// the watch with an error rather than growing memory.
const streamBuffer = 64

var (
	errStopped  = errors.New("watch stopped")
	errPanicked = errors.New("watcher error: watcher stopped unexpectedly")
)

// Watch starts a streaming watch after checking its preconditions.
func (s *Service) Watch(o WatchOptions) (*Watch, error) {
	if err := checkWatchable(o); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	w := &Watch{s: s, events: make(chan Event, streamBuffer),
		stop: make(chan struct{}), done: make(chan struct{})}
	t, err := newTree(o.Path, o.Recursive, o.IncludeEntry, s.names, w.send)
	if err != nil {
		s.release()
		return nil, err
	}
	w.t = t
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		t.close()
		s.release()
		return nil, errClosed
	}
	s.streams[w] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer close(w.done)
		defer close(w.events)
		defer t.close()
		defer safe.Recover(s.log, "filesystem watch")
		w.err = errPanicked
		w.err = t.run()
	}()
	return w, nil
}

func (w *Watch) send(ev Event) error {
	select {
	case w.events <- ev:
		return nil
	case <-w.stop:
		return errStopped
	}
}

// Events delivers the watch's events; it is closed when the watch ends.
func (w *Watch) Events() <-chan Event { return w.events }

// Err says why the watch ended: nil when the watched directory went away
// or the watch was closed. Valid once Events is closed.
func (w *Watch) Err() error {
	if w.err == errStopped {
		return nil
	}
	return w.err
}

// Close stops the watch, waits for its goroutine and frees its slot and
// inotify descriptor. Safe to call more than once.
func (w *Watch) Close() {
	w.once.Do(func() {
		close(w.stop)
		w.t.close()
		<-w.done
		w.s.mu.Lock()
		delete(w.s.streams, w)
		w.s.mu.Unlock()
		w.s.release()
	})
}

// poller is a polling watcher (CreateWatcher). It lives until
// RemoveWatcher or Close, independent of the creating request (E30).
type poller struct {
	t    *tree
	max  int
	done chan struct{} // closed when the reader goroutine has ended

	mu     sync.Mutex // guards events and err
	events []Event
	err    error // set once the watcher failed; events are then dropped
}

func (p *poller) push(ev Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.events) >= p.max {
		return internalf("watcher error: more than %d events queued since the last GetWatcherEvents, events were lost", p.max)
	}
	p.events = append(p.events, ev)
	return nil
}

func (p *poller) stop() {
	p.t.close()
	<-p.done
}

// CreateWatcher starts a polling watcher and returns its id.
func (s *Service) CreateWatcher(o WatchOptions) (string, error) {
	if err := checkWatchable(o); err != nil {
		return "", err
	}
	if err := s.acquire(); err != nil {
		return "", err
	}
	p := &poller{max: s.maxQueue, done: make(chan struct{})}
	t, err := newTree(o.Path, o.Recursive, o.IncludeEntry, s.names, p.push)
	if err != nil {
		s.release()
		return "", err
	}
	p.t = t
	id := watcherID()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		t.close()
		s.release()
		return "", errClosed
	}
	s.polls[id] = p
	s.mu.Unlock()
	go func() {
		defer close(p.done)
		defer t.close()
		defer safe.Recover(s.log, "filesystem polling watcher")
		err := errPanicked
		defer func() {
			if err != nil {
				p.mu.Lock()
				p.err, p.events = err, nil
				p.mu.Unlock()
			}
		}()
		err = t.run()
	}()
	return id, nil
}

// WatcherEvents returns and drains the events queued since the last call,
// or the error that ended the watcher.
func (s *Service) WatcherEvents(id string) ([]Event, error) {
	s.mu.Lock()
	p, ok := s.polls[id]
	s.mu.Unlock()
	if !ok {
		return nil, errs.New(errs.NotFound, "watcher with id %s not found", id)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	ev := p.events
	p.events = nil
	return ev, nil
}

// RemoveWatcher stops a polling watcher and forgets it.
func (s *Service) RemoveWatcher(id string) error {
	s.mu.Lock()
	p, ok := s.polls[id]
	delete(s.polls, id)
	s.mu.Unlock()
	if !ok {
		return errs.New(errs.NotFound, "watcher with id %s not found", id)
	}
	p.stop()
	s.release()
	return nil
}

// watcherID is E2B's shape: "w" and 20 characters from [a-z0-9].
func watcherID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [20]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	out := make([]byte, 1, 21)
	out[0] = 'w'
	for _, c := range b {
		out = append(out, alphabet[int(c)%len(alphabet)])
	}
	return string(out)
}
