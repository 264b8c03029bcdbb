package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

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
	old, err := os.Stat(dest)
	switch {
	case err == nil && old.IsDir():
		return Entry{}, errs.New(errs.Invalid, "path is a directory: %s", dest)
	case err == nil && !old.Mode().IsRegular():
		return Entry{}, errs.New(errs.Invalid, "path is not a regular file: %s", dest)
	case err != nil:
		old = nil
	}
	uid, gid := int(u.UID), int(u.GID)
	if err := makeParents(filepath.Dir(dest), uid, gid); err != nil {
		return Entry{}, err
	}
	tmp := tempName(dest, ".e2b-compose")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o666)
	if err != nil {
		if isNoSpace(err) {
			return Entry{}, errs.New(errs.NoSpace, "not enough inodes available: %v", err)
		}
		return Entry{}, fmt.Errorf("error creating temporary file: %w", err)
	}
	if err := fillCompose(f, srcs, uid, gid, old); err != nil {
		f.Close()
		os.Remove(tmp)
		return Entry{}, err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("error closing temporary file: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Remove(tmp)
		return Entry{}, fmt.Errorf("error replacing '%s': %w", dest, err)
	}
	for _, src := range srcs {
		if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("compose: cannot remove source", "err", err)
		}
	}
	return entryFor(dest, nil), nil
}

func fillCompose(f *os.File, srcs []string, uid, gid int, old os.FileInfo) error {
	for _, src := range srcs {
		in, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("error opening source '%s': %w", src, err)
		}
		// *os.File to *os.File: io.Copy uses copy_file_range, then sendfile.
		_, err = io.Copy(f, in)
		in.Close()
		if isNoSpace(err) {
			return errs.New(errs.NoSpace, "not enough disk space available")
		}
		if err != nil {
			return fmt.Errorf("error copying '%s': %w", src, err)
		}
	}
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("error changing ownership: %w", err)
	}
	if old != nil {
		if err := f.Chmod(old.Mode().Perm() | old.Mode()&os.ModeSticky); err != nil {
			return fmt.Errorf("error setting mode: %w", err)
		}
	}
	return nil
}
