package client

import (
	"context"
	"fmt"

	"connectrpc.com/connect"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
)

// EventOp is what happened to a watched entry.
type EventOp int

const (
	OpUnknown EventOp = iota
	OpCreate          // created, or moved in
	OpWrite           // written
	OpRemove          // removed
	OpRename          // renamed or moved away (the old name)
	OpChmod           // attributes changed
)

func (o EventOp) String() string {
	switch o {
	case OpCreate:
		return "CREATE"
	case OpWrite:
		return "WRITE"
	case OpRemove:
		return "REMOVE"
	case OpRename:
		return "RENAME"
	case OpChmod:
		return "CHMOD"
	}
	return "UNKNOWN"
}

// Event is one filesystem change under a watched directory.
type Event struct {
	Name  string // relative to the watched directory ("sub/a.txt")
	Op    EventOp
	Entry *EntryInfo // with WatchOptions.IncludeEntry, for create, write and chmod
}

// WatchOptions change what Watch reports.
type WatchOptions struct {
	Recursive    bool // also every subdirectory, including new ones
	IncludeEntry bool // attach the entry's info where it can still be stat-ed
	// AllowNetworkMounts permits watching NFS, CIFS, SMB and FUSE paths.
	AllowNetworkMounts bool
}

// Watcher streams the events of one directory. Events is closed when the
// stream ends; Err then tells why.
type Watcher struct {
	events chan Event
	cancel context.CancelFunc
	done   chan struct{} // closed when the receiving goroutine has finished
	err    error         // valid after done
}

// watchBuffer bounds the events held for a slow reader; beyond it envd is
// held back (nothing is dropped).
const watchBuffer = 64

// Watch watches the directory path. It returns once envd watches, so every
// change made after Watch returns is reported. Close (or cancelling ctx)
// stops it. The stream is not retried.
func (c *Client) Watch(ctx context.Context, path string, o WatchOptions) (*Watcher, error) {
	sctx, cancel := context.WithCancel(ctx)
	s, err := c.fs.WatchDir(sctx, connect.NewRequest(&fspb.WatchDirRequest{Path: path, Recursive: o.Recursive,
		IncludeEntry: o.IncludeEntry, AllowNetworkMounts: o.AllowNetworkMounts}))
	if err != nil {
		cancel()
		return nil, wrapErr("watch "+path, err)
	}
	if !s.Receive() || s.Msg().GetStart() == nil {
		err := s.Err()
		_ = s.Close()
		cancel()
		if err == nil {
			return nil, &Error{Op: "watch " + path, Message: "stream did not begin with the start event", kind: ErrInternal}
		}
		return nil, wrapErr("watch "+path, err)
	}
	w := &Watcher{events: make(chan Event, watchBuffer), cancel: cancel, done: make(chan struct{})}
	go w.run(sctx, "watch "+path, s)
	return w, nil
}

func (w *Watcher) run(ctx context.Context, op string, s *connect.ServerStreamForClient[fspb.WatchDirResponse]) {
	defer func() {
		if r := recover(); r != nil {
			w.err = fmt.Errorf("envd client: watch panic: %v", r)
		}
		_ = s.Close()
		close(w.events)
		close(w.done)
	}()
	for s.Receive() {
		fe := s.Msg().GetFilesystem()
		if fe == nil {
			continue // keepalive
		}
		ev := Event{Name: fe.GetName(), Op: EventOp(fe.GetType()), Entry: entryFrom(fe.GetEntry())}
		if ev.Op > OpChmod {
			ev.Op = OpUnknown
		}
		select {
		case w.events <- ev:
		case <-ctx.Done():
			return
		}
	}
	if err := s.Err(); err != nil && ctx.Err() == nil {
		w.err = wrapErr(op, err)
	}
}

// Events delivers the events in order; it is closed when the watch ends.
func (w *Watcher) Events() <-chan Event { return w.events }

// Err is why the watch ended: nil after Close or a cancelled context.
// Valid once Events is closed.
func (w *Watcher) Err() error {
	<-w.done
	return w.err
}

// Close stops watching and waits for the stream to end.
func (w *Watcher) Close() error {
	w.cancel()
	<-w.done
	return nil
}
