package filesystem

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/fsutil"
)

// Owner is who created entries belong to (the request user).
type Owner struct {
	UID, GID uint32
}

// Stat returns the entry of path without following a final symlink.
func (s *Service) Stat(path string) (EntryInfo, error) {
	e, err := lstatEntry(path, newNameCache(s.names))
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return EntryInfo{}, errs.New(errs.NotFound, "file not found: %s", path)
		}
		return EntryInfo{}, internalf("error getting file info: %v", err)
	}
	return e, nil
}

// checkDir enforces the directory preconditions ListDir and the watchers
// share: symlinks on the path are followed; missing → not_found; a symlink
// loop → failed_precondition; not a directory → invalid_argument.
func checkDir(path string) error {
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Stat(path, &st) })
	switch {
	case errors.Is(err, unix.ENOENT):
		return errs.New(errs.NotFound, "path not found: %s", path)
	case errors.Is(err, unix.ELOOP):
		return errs.New(errs.Precondition, "cyclic symlink or chain >255 links at %q", path)
	case err != nil:
		return internalf("error getting file info: %s: %v", path, err)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return errs.New(errs.Invalid, "path is not a directory: %s", path)
	}
	return nil
}

// MakeDir creates path and its missing parents (0755, owned by o) and
// returns the new directory's entry. An existing directory is
// already_exists; an existing non-directory is invalid_argument.
func (s *Service) MakeDir(path string, o Owner) (EntryInfo, error) {
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return EntryInfo{}, errs.New(errs.Exists, "directory already exists: %s", path)
	case err == nil:
		return EntryInfo{}, errs.New(errs.Invalid, "path already exists but it is not a directory: %s", path)
	case !errors.Is(err, unix.ENOENT):
		return EntryInfo{}, internalf("error getting file info: %s: %v", path, err)
	}
	if err := ensureDirs(path, o); err != nil {
		return EntryInfo{}, internalf("error creating directory: %v", err)
	}
	return s.Stat(path)
}

// ensureDirs is mkdir -p that chowns every component it creates to o (E35).
func ensureDirs(path string, o Owner) error {
	return fsutil.MkdirAllOwned(path, int(o.UID), int(o.GID))
}

// Move renames src to dst, creating dst's missing parents (owned by o),
// and returns the entry at dst. A missing source is not_found (E34) and
// creates nothing.
func (s *Service) Move(src, dst string, o Owner) (EntryInfo, error) {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return EntryInfo{}, errs.New(errs.NotFound, "source file not found: %s", src)
		}
		return EntryInfo{}, internalf("error getting file info: %s: %v", src, err)
	}
	if err := ensureDirs(filepath.Dir(dst), o); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return EntryInfo{}, errs.New(errs.NotFound, "destination parent not found: %v", err)
		}
		return EntryInfo{}, internalf("error creating destination directory: %v", err)
	}
	if err := os.Rename(src, dst); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return EntryInfo{}, errs.New(errs.NotFound, "source file not found: %v", err)
		}
		return EntryInfo{}, internalf("error renaming: %v", err)
	}
	return s.Stat(dst)
}

// Remove deletes path recursively; a symlink is removed, not followed. A
// missing path succeeds (E2B's remove-all semantics).
func (s *Service) Remove(path string) error {
	if err := os.RemoveAll(path); err != nil {
		return internalf("error removing file or directory: %v", err)
	}
	return nil
}

// internalf builds an error that wraps no kind: the server maps it to
// internal, which is what E2B answers for OS failures (PROTOCOL.md 3.4).
func internalf(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}
