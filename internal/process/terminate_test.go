package process

import (
	"context"
	"strings"
	"testing"
	"time"
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
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
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
	if n := len(m.List()); n != 0 {
		t.Fatalf("%d processes left in the table", n)
	}
}
