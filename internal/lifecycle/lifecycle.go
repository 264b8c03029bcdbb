// Package lifecycle implements the VM lifecycle: /init, MMDS polling,
// snapshot prepare and recovery after restore. Issue: VM lifecycle.
package lifecycle

// Lifecycle owns init state and the snapshot cycle.
type Lifecycle struct{}

// Options configure a Lifecycle.
type Options struct{}

// New returns a Lifecycle.
func New(Options) (*Lifecycle, error) { return &Lifecycle{}, nil }

// Close stops background polling.
func (l *Lifecycle) Close() error { return nil }
