package process

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Shutdown contract (issue 6): envd's SIGTERM signals every process group,
// waits a bounded time, then kills what ignores it; children die too.
func TestTerminateSignalsGroupsThenKills(t *testing.T) {
	m := newManager(t, Options{})
	polite := start(t, m, "sleep 100 & echo ready; wait")
	stubborn := start(t, m, "trap '' TERM; echo ready; sleep 100")
	for _, s := range []*Sub{polite, stubborn} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ev, err := s.Next(ctx) // the trap is installed once "ready" is out
		cancel()
		if err != nil || !strings.Contains(string(ev.Data), "ready") {
			t.Fatalf("pid %d: %v %q", s.Pid(), err, ev.Data)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if killed := m.Terminate(ctx); killed != 1 {
		t.Fatalf("killed %d processes, want 1 (the one that ignores TERM)", killed)
	}
	for _, s := range []*Sub{polite, stubborn} {
		_, end, err := drain(t, s)
		if err != nil || end == nil || end.Exited {
			t.Fatalf("pid %d ended %+v (%v), want a signal death", s.Pid(), end, err)
		}
	}
	for _, s := range []*Sub{polite, stubborn} {
		// The whole group goes, the background sleeps included. They are
		// reparented to init and reaped there: no event tells when, so
		// poll the kernel for a bounded time.
		deadline := time.Now().Add(10 * time.Second)
		for unix.Kill(-s.Pid(), 0) != unix.ESRCH {
			if time.Now().After(deadline) {
				t.Fatalf("process group %d still exists", s.Pid())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
