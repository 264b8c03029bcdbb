package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/users"
)

// maxComposeSources bounds one compose request.
const maxComposeSources = 10000

// Compose concatenates sources, in order, into destination for u and then
// deletes the sources (PROTOCOL.md 4.10, BEHAVIOR.md 10.3). The data goes to
// <dest>.e2b-compose.<random>.tmp with copy_file_range where the kernel can,
// and the temporary file is renamed over the destination, so a failure
// leaves the destination and every source as they were.
func (s *Service) Compose(u *users.User, workdir string, sources []string, destination string) (Entry, error) {
	if len(sources) == 0 {
		return Entry{}, errs.New(errs.Invalid, "source_paths must not be empty")
	}
	if destination == "" {
		return Entry{}, errs.New(errs.Invalid, "destination must not be empty")
	}
	if len(sources) > maxComposeSources {
		return Entry{}, errs.New(errs.Invalid, "too many source paths (at most %d)", maxComposeSources)
	}
	dest, err := users.Resolve(destination, u, workdir)
	if err != nil {
		return Entry{}, err
	}
	srcs := make([]string, len(sources))
	for i, src := range sources {
		if srcs[i], err = users.Resolve(src, u, workdir); err != nil {
			return Entry{}, err
		}
		if filepath.Clean(srcs[i]) == filepath.Clean(dest) {
			return Entry{}, errs.New(errs.Invalid, "source path equals the destination: %s", srcs[i])
		}
		fi, err := os.Stat(srcs[i])
		if errors.Is(err, fs.ErrNotExist) {
			return Entry{}, errs.New(errs.NotFound, "source file not found: %s", srcs[i])
		}
		if err != nil {
			return Entry{}, fmt.Errorf("error checking source '%s': %w", srcs[i], err)
		}
		if !fi.Mode().IsRegular() {
			return Entry{}, errs.New(errs.Invalid, "source is not a regular file: %s", srcs[i])
		}
	}
	// The same temporary file, owner, mode and rename path as an upload.
	p, err := s.begin(dest, u, ".e2b-compose")
	if err != nil {
		return Entry{}, err
	}
	for _, src := range srcs {
		if err := p.append(src); err != nil {
			p.abort()
			return Entry{}, err
		}
	}
	if err := p.commit(nil); err != nil {
		return Entry{}, err
	}
	for _, src := range srcs {
		if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("compose: cannot remove source", "err", err)
		}
	}
	return entryFor(dest, nil), nil
}

// append copies src to the end of the temporary file (*os.File to
// *os.File: io.Copy uses copy_file_range, then sendfile).
func (p *pending) append(src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("error opening source '%s': %w", src, err)
	}
	defer in.Close()
	n, err := io.Copy(p.f, in)
	p.copied += n
	if isNoSpace(err) {
		return errs.New(errs.NoSpace, "not enough disk space available")
	}
	if err != nil {
		return fmt.Errorf("error copying '%s': %w", src, err)
	}
	return nil
}
