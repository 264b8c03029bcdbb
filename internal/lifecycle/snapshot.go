package lifecycle

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// snapshot quiesces envd before a Firecracker snapshot and recovers after
// restore (BEHAVIOR.md 7.5, 7.6). Connections that were open when the VM
// paused are dead on the host side but look alive in the guest; recovery
// closes them. Recovery never depends on /init: the first request of any
// kind, or a timer, runs it (7.6 item 5; 11.3 W7).
type snapshot struct {
	l *Lifecycle

	mu         sync.Mutex // guards conns, srv, prepared, gen, savedProcs
	conns      map[net.Conn]*connInfo
	srv        *http.Server
	prepared   bool
	gen        uint64 // counts prepares; AfterPrepare acts on its own cycle only
	savedProcs int    // GOMAXPROCS before the single-thread guard; 0 = not applied

	needsRestore atomic.Bool   // read on every request: a cheap check
	armed        chan struct{} // one slot: (re)start the restore timer
}

type connInfo struct {
	state http.ConnState
	pre   bool // open at prepare time: closed on recovery
}

type connKey struct{}

func newSnapshot(l *Lifecycle) *snapshot {
	return &snapshot{l: l, conns: map[net.Conn]*connInfo{}, armed: make(chan struct{}, 1)}
}

// Bind installs connection tracking and the restore trigger on hs. Call it
// once, after hs.Handler is set and before serving.
func (l *Lifecycle) Bind(hs *http.Server) {
	s := l.snap
	s.mu.Lock()
	s.srv = hs
	s.mu.Unlock()
	prevState := hs.ConnState
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		s.track(c, st)
		if prevState != nil {
			prevState(c, st)
		}
	}
	prevCtx := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, c)
		}
		return context.WithValue(ctx, connKey{}, c)
	}
	next := hs.Handler
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.needsRestore.Load() {
			s.recover(connOf(r.Context()), "request")
		}
		next.ServeHTTP(w, r)
	})
}

func connOf(ctx context.Context) net.Conn {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	return c
}

func (s *snapshot) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateHijacked, http.StateClosed:
		delete(s.conns, c)
	default:
		if ci := s.conns[c]; ci != nil {
			ci.state = st
		} else {
			s.conns[c] = &connInfo{state: st}
		}
	}
}

// TrackedConns reports how many connections are open and how many of them
// are marked pre-snapshot.
func (l *Lifecycle) TrackedConns() (open, pre int) {
	s := l.snap
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ci := range s.conns {
		if ci.pre {
			pre++
		}
	}
	return len(s.conns), pre
}

// PrepareSnapshot quiesces envd for a snapshot: stop the port subsystem,
// sync, turn keep-alives off, close idle connections, mark every other one
// as pre-snapshot and set needs-restore. ctx is the prepare request's; the
// caller flushes its 204 and then calls AfterPrepare with the result.
func (l *Lifecycle) PrepareSnapshot(ctx context.Context) uint64 {
	s := l.snap
	if l.o.Ports != nil {
		l.o.Ports.Stop()
	}
	unix.Sync()
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		srv.SetKeepAlivesEnabled(false) // also closes idle HTTP/1 connections
	}
	current := connOf(ctx)
	var idle []net.Conn
	s.mu.Lock()
	for c, ci := range s.conns {
		if ci.state == http.StateIdle && c != current {
			idle = append(idle, c) // HTTP/2 ones included
			continue
		}
		ci.pre = true
	}
	s.prepared = true
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
	s.needsRestore.Store(true)
	select {
	case s.armed <- struct{}{}:
	default:
	}
	l.log.Info("snapshot prepared", "closed_idle", len(idle))
	return gen
}

// AfterPrepare runs once the prepare response is flushed: collect garbage
// and return it to the OS so nothing is allocating as the VM pauses, then
// (option) drop to one OS thread until recovery (BEHAVIOR.md 7.6, W15).
func (l *Lifecycle) AfterPrepare(gen uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	if !l.o.SingleThreadWhilePaused {
		return
	}
	s := l.snap
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prepared && s.gen == gen && s.savedProcs == 0 {
		s.savedProcs = runtime.GOMAXPROCS(1)
	}
}

// recover runs once per prepare: restore GOMAXPROCS, close every
// pre-snapshot connection except current (the request that triggered it is
// new and must survive), turn keep-alives on, start the port subsystem.
// No GC here: the collection after restore is what tripped over corrupt
// allocator state in Wrenn's history (7.6, 3deecbf).
func (s *snapshot) recover(current net.Conn, trigger string) {
	if !s.needsRestore.CompareAndSwap(true, false) {
		return
	}
	s.mu.Lock()
	s.prepared = false
	procs := s.savedProcs
	s.savedProcs = 0
	var stale []net.Conn
	for c, ci := range s.conns {
		if ci.pre {
			ci.pre = false
			if c != current {
				stale = append(stale, c)
			}
		}
	}
	srv := s.srv
	s.mu.Unlock()
	if procs > 0 {
		runtime.GOMAXPROCS(procs)
	}
	for _, c := range stale {
		_ = c.Close()
	}
	if srv != nil {
		srv.SetKeepAlivesEnabled(true)
	}
	if p := s.l.o.Ports; p != nil {
		p.Start()
	}
	s.l.log.Info("recovered after snapshot", "trigger", trigger, "closed", len(stale))
}

// runTimer recovers by itself RestoreAfter after the latest prepare when no
// request did (a failed pause, or a host that sends nothing after resume).
func (s *snapshot) runTimer(ctx context.Context) {
	t := newStoppedTimer()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.armed:
			t.Reset(s.l.o.RestoreAfter)
		case <-t.C:
			s.recover(nil, "timer")
		}
	}
}
