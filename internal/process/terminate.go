package process

import (
	"context"
	"syscall"
)

// Terminate ends the workload on shutdown (SIGTERM/SIGINT to envd): it sends
// SIGTERM to every process group in the table, waits until they have all
// exited or ctx ends, then sends SIGKILL to what is left. It returns how
// many processes had to be killed.
func (m *Manager) Terminate(ctx context.Context) int {
	m.mu.Lock()
	ps := make([]*Proc, 0, len(m.procs))
	for _, p := range m.procs {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	for _, p := range ps {
		_ = p.kill(syscall.SIGTERM)
	}
	killed := 0
	for _, p := range ps {
		select {
		case <-p.done:
			continue // ended already: once ctx is done too, select would pick at random
		default:
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			if p.kill(syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	return killed
}
