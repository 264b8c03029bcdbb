// Package process runs user processes (pipes and PTYs), fans their output
// out to subscribers, and keeps the process table. Issue: process service.
package process

// Manager owns the process table.
type Manager struct{}

// Options configure a Manager.
type Options struct{}

// New returns an empty process table.
func New(Options) (*Manager, error) { return &Manager{}, nil }

// Close stops the manager's goroutines.
func (m *Manager) Close() error { return nil }
