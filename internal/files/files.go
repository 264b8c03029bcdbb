// Package files implements file transfer: download (GET /files), upload
// (POST /files, raw or multipart) and compose (POST /files/compose). It
// works on plain values (users, paths, readers); internal/server does the
// HTTP parsing and the status mapping.
//
// Writes never destroy the previous content of a file: data goes to a
// temporary file in the target's directory, which is renamed over the target
// only once it is complete, owned and labelled. A failed or aborted transfer
// leaves the old file (or nothing) behind.
package files

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/sandboxd/envd/internal/errs"
)

// copyBufSize is the size of one transfer buffer. Reads this large go
// straight from the socket into it, and writes leave it in one syscall: a
// fraction of the syscalls of io.Copy's 32 KiB.
const copyBufSize = 1 << 20

// Service streams files to and from disk. It is safe for concurrent use.
type Service struct {
	log *slog.Logger
	// readers recycles transfer buffers (*bufio.Reader); one or two are held
	// per transfer in flight, so memory is bounded by concurrent requests.
	readers sync.Pool
	// gzips recycles gzip writers (*gzipper): a flate compressor is about
	// 1 MB of state, too much to allocate per compressed download.
	gzips sync.Pool
}

// Options configure a Service.
type Options struct {
	Log *slog.Logger // nil: discard
}

// New returns a Service.
func New(o Options) (*Service, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{log: log}
	s.readers.New = func() any { return bufio.NewReaderSize(nil, copyBufSize) }
	s.gzips.New = func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level: no error
		return &gzipper{zw: zw, buf: make([]byte, gzipCopyBuf)}
	}
	return s, nil
}

// Close releases nothing today; it exists so the daemon treats every
// subsystem alike.
func (s *Service) Close() error { return nil }

// Entry describes one written file (the upload and compose answers).
type Entry struct {
	Path     string            // resolved target path
	Name     string            // base name
	Type     string            // always "file"
	Metadata map[string]string // user metadata set on it; nil when none
}

func entryFor(path string, md Metadata) Entry {
	e := Entry{Path: path, Name: filepath.Base(path), Type: "file"}
	if len(md) > 0 {
		e.Metadata = map[string]string(md)
	}
	return e
}

func (s *Service) getReader(r io.Reader) *bufio.Reader {
	br := s.readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func (s *Service) putReader(br *bufio.Reader) {
	br.Reset(nil) // drop the reference to the request body
	s.readers.Put(br)
}

// isNoSpace reports a full disk or exhausted quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// statErr maps a stat failure of a requested path.
func statErr(path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return errs.New(errs.NotFound, "path '%s' does not exist", path)
	}
	return fmt.Errorf("error checking path '%s': %w", path, err)
}
