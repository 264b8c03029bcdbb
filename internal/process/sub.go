package process

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/sandboxd/envd/internal/errs"
)

// Stream names where a data event came from.
type Stream uint8

const (
	Stdout Stream = iota + 1
	Stderr
	PTY
)

// Event is one thing a subscriber receives: data, a keepalive or the end.
// Data is valid until the next call to Next or Close on the same Sub.
type Event struct {
	Stream    Stream // set for data
	Data      []byte // shared by every subscriber: read only
	Keepalive bool
	End       *End
	c         *chunk // pooled buffer behind Data, if any
}

// Sub is one output subscription (a Start or Connect stream). Next must be
// called from one goroutine; Close may be called once it is done.
type Sub struct {
	m    *Manager
	p    *Proc // nil when the process had ended before subscribing
	pid  int
	q    chan Event
	done <-chan struct{} // the process's end was published
	end  *End            // valid once done is closed

	gone      chan struct{} // closed by Close: deliveries skip this sub
	closeOnce sync.Once
	kicked    chan struct{} // closed when disconnected for stalling
	kickOnce  sync.Once

	every    time.Duration
	idle     *time.Timer // keepalive timer, reset after every data event
	finished bool
	held     *chunk // buffer of the last returned event, released by Next/Close
}

func newSub(m *Manager, pid int, done <-chan struct{}, end *End, keepalive time.Duration) *Sub {
	if keepalive <= 0 {
		keepalive = 90 * time.Second
	}
	return &Sub{m: m, pid: pid, q: make(chan Event, queueLen), done: done, end: end,
		gone: make(chan struct{}), kicked: make(chan struct{}),
		every: keepalive, idle: time.NewTimer(keepalive)}
}

// Pid is the subscribed process.
func (s *Sub) Pid() int { return s.pid }

// Next returns the next event: data in order, keepalives when idle for the
// interval, then the end once everything was delivered; io.EOF after that.
func (s *Sub) Next(ctx context.Context) (Event, error) {
	s.m.chunks.release(s.held)
	s.held = nil
	if s.finished {
		return Event{}, io.EOF
	}
	select {
	case ev := <-s.q:
		return s.data(ev), nil
	default:
	}
	select {
	case <-s.kicked: // checked first: a disconnected subscriber never gets the end
		return Event{}, s.kickErr()
	default:
	}
	select {
	case ev := <-s.q:
		return s.data(ev), nil
	case <-s.done:
		// Every data event was queued before done was closed.
		select {
		case ev := <-s.q:
			return s.data(ev), nil
		case <-s.kicked:
			return Event{}, s.kickErr()
		default:
		}
		s.finished = true
		s.idle.Stop()
		return Event{End: s.end}, nil
	case <-s.kicked:
		return Event{}, s.kickErr()
	case <-s.idle.C:
		s.idle.Reset(s.every)
		return Event{Keepalive: true}, nil
	case <-s.m.closing:
		return Event{}, errs.New(errs.Unavailable, "envd is shutting down")
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}

func (s *Sub) kickErr() error {
	return errs.New(errs.Exhausted,
		"output subscriber disconnected: it made no progress for %s while the process kept writing", s.m.stall)
}

func (s *Sub) data(ev Event) Event {
	s.idle.Reset(s.every)
	s.held = ev.c
	return ev
}

// Close detaches the subscriber. The process keeps running.
func (s *Sub) Close() {
	s.closeOnce.Do(func() {
		s.m.chunks.release(s.held)
		s.held = nil
		close(s.gone)
		s.idle.Stop()
		if s.p != nil {
			s.p.unsubscribe(s)
		}
	})
}
