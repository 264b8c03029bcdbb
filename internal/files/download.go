package files

import (
	"cmp"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/users"
)

// Download is an open regular file ready to be served. The caller closes
// File.
type Download struct {
	File    *os.File
	Path    string // resolved path
	Name    string // base name, for Content-Disposition
	Size    int64
	ModTime time.Time
}

// Open resolves path for u and opens it for reading. Only regular files are
// served: a directory or a device, FIFO or socket is refused (W18), and is
// never opened, so reading /dev/zero or a FIFO cannot hang a request.
func (s *Service) Open(u *users.User, workdir, path string) (*Download, error) {
	resolved, err := users.Resolve(path, u, workdir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, statErr(resolved, err)
	}
	if fi.IsDir() {
		return nil, errs.New(errs.Invalid, "path '%s' is a directory", resolved)
	}
	if !fi.Mode().IsRegular() {
		return nil, errs.New(errs.Invalid, "path '%s' is not a regular file", resolved)
	}
	// O_NONBLOCK: should the path be swapped for a FIFO after the stat, the
	// open still returns at once, and the fstat below refuses it.
	f, err := os.OpenFile(resolved, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, statErr(resolved, err)
	}
	fi, err = f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, errs.New(errs.Invalid, "path '%s' is not a regular file", resolved)
	}
	return &Download{File: f, Path: resolved, Name: filepath.Base(resolved), Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// gzipCopyBuf is the read size of the gzip branch: the compressor's own
// state dominates its memory, this keeps the copy itself small.
const gzipCopyBuf = 64 << 10

// WriteGzip streams f into w through a gzip writer with bounded buffers. An
// error after the first bytes truncates the stream (the status is out).
func (s *Service) WriteGzip(w io.Writer, f *os.File) error {
	g := s.gzips.Get().(*gzipper)
	defer s.gzips.Put(g)
	g.zw.Reset(w)
	defer g.zw.Reset(nil) // drop w: a pooled writer must not keep the response alive
	if _, err := io.CopyBuffer(g.zw, onlyReader{f}, g.buf); err != nil {
		return err
	}
	return g.zw.Close()
}

// gzipper is one pooled compressor with its copy buffer.
type gzipper struct {
	zw  *gzip.Writer
	buf []byte
}

// onlyReader hides WriterTo/ReaderFrom so CopyBuffer uses the given buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// ErrNotAcceptable is returned by NegotiateEncoding when neither gzip nor
// identity is acceptable (HTTP 406).
var ErrNotAcceptable = errors.New("no acceptable encoding found, supported: [gzip]")

// NegotiateEncoding picks the response encoding from Accept-Encoding exactly
// as BEHAVIOR.md 5.3: q-values honoured, names case-insensitive, only gzip
// and identity supported, "*" means gzip only when identity is refused.
// identityOnly (a Range or conditional request) forces identity. It returns
// true for gzip.
func NegotiateEncoding(accept string, identityOnly bool) (bool, error) {
	type choice struct {
		name string
		q    float64
	}
	var list []choice
	identityRefused, identityListed, starZero := false, false, false
	for item := range strings.SplitSeq(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(item), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch name {
		case "identity":
			identityListed = q > 0
			identityRefused = q == 0
		case "*":
			starZero = starZero || q == 0
		}
		list = append(list, choice{name, q})
	}
	if starZero && !identityListed {
		identityRefused = true
	}
	if identityOnly {
		if identityRefused {
			return false, ErrNotAcceptable
		}
		return false, nil
	}
	slices.SortStableFunc(list, func(a, b choice) int { return cmp.Compare(b.q, a.q) })
	for _, c := range list {
		if c.q <= 0 {
			continue
		}
		switch c.name {
		case "identity":
			return false, nil
		case "gzip":
			return true, nil
		case "*":
			return identityRefused, nil
		}
	}
	if identityRefused {
		return false, ErrNotAcceptable
	}
	return false, nil
}
