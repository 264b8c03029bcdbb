// Package filesystem implements stat, list, mkdir, move, remove and
// directory watchers (PROTOCOL.md 3.4, BEHAVIOR.md 4). It takes absolute,
// already-resolved paths and the owner for created entries; the server
// resolves users and paths.
//
// Watchers use raw inotify, one instance per watcher, so a slow or
// overflowing watcher never affects another. Bounds:
//   - at most Options.MaxWatchers watchers at once (streams plus polling
//     watchers not yet removed); beyond that creation fails with an
//     internal error (not resource_exhausted: the JS SDK reads that as a
//     rate limit, PROTOCOL.md 3.4);
//   - a polling watcher queues at most Options.MaxQueuedEvents events
//     between two GetWatcherEvents calls; one more fails the watcher: its
//     queued events are dropped and every later GetWatcherEvents returns
//     the overflow error (as for any watcher error, PROTOCOL.md 3.4), so a
//     client never silently misses events;
//   - a kernel queue overflow (IN_Q_OVERFLOW) ends the watch with an error;
//   - ListDir returns at most Options.MaxListEntries entries, else
//     invalid_argument.
package filesystem

import (
	"errors"
	"log/slog"
	"sync"
)

// Defaults for the bounds in Options.
const (
	DefaultMaxWatchers     = 128 // the kernel's default fs.inotify.max_user_instances
	DefaultMaxQueuedEvents = 16384
	DefaultMaxListEntries  = 100_000
)

// Options configure a Service. Zero values take the defaults.
type Options struct {
	Log             *slog.Logger
	Names           Names // uid/gid → name; numeric strings when nil
	MaxWatchers     int
	MaxQueuedEvents int
	MaxListEntries  int
}

// Service owns the watchers.
type Service struct {
	log      *slog.Logger
	names    Names
	maxWatch int
	maxQueue int
	maxList  int

	mu      sync.Mutex // guards the fields below
	closed  bool
	active  int                 // watchers holding a slot: streams + registered polling watchers
	streams map[*Watch]struct{} // live stream watches, closed by Close
	polls   map[string]*poller  // polling watchers by id
}

// New returns a Service.
func New(o Options) (*Service, error) {
	s := &Service{log: o.Log, names: o.Names, maxWatch: o.MaxWatchers,
		maxQueue: o.MaxQueuedEvents, maxList: o.MaxListEntries,
		streams: map[*Watch]struct{}{}, polls: map[string]*poller{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.names == nil {
		s.names = numericNames{}
	}
	if s.maxWatch <= 0 {
		s.maxWatch = DefaultMaxWatchers
	}
	if s.maxQueue <= 0 {
		s.maxQueue = DefaultMaxQueuedEvents
	}
	if s.maxList <= 0 {
		s.maxList = DefaultMaxListEntries
	}
	return s, nil
}

// Close stops every watcher and waits for their goroutines. Later watch
// requests fail.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	streams := make([]*Watch, 0, len(s.streams))
	for w := range s.streams {
		streams = append(streams, w)
	}
	polls := s.polls
	s.polls = map[string]*poller{}
	s.mu.Unlock()
	for _, w := range streams {
		w.Close()
	}
	for _, p := range polls {
		p.stop()
		s.release()
	}
	return nil
}

var errClosed = errors.New("filesystem service is shutting down")

// acquire takes a watcher slot.
func (s *Service) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.active >= s.maxWatch {
		return internalf("too many active watchers (limit %d): stop or remove unused watchers", s.maxWatch)
	}
	s.active++
	return nil
}

func (s *Service) release() {
	s.mu.Lock()
	s.active--
	s.mu.Unlock()
}
