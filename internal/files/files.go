// Package files implements file upload and download (GET/POST /files) and
// compose. Issue: file transfer and security.
package files

// Service streams files to and from disk.
type Service struct{}

// Options configure a Service.
type Options struct{}

// New returns a Service.
func New(Options) (*Service, error) { return &Service{}, nil }
