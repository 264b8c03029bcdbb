package files

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/fsutil"
	"github.com/sandboxd/envd/internal/users"
)

// maxLinkHops bounds symlink resolution of an upload target (Linux's own
// limit is 40).
const maxLinkHops = 40

// pending is one write in progress: a temporary file next to the target.
// Exactly one of commit or abort must be called.
type pending struct {
	path   string   // the target as requested (resolved per PROTOCOL.md 3.0)
	real   string   // the target after following symlinks: what gets replaced
	tmp    string   // the temporary file's path
	f      *os.File // open on tmp
	old    os.FileInfo
	uid    int
	gid    int
	copied int64
}

// begin prepares a write to path for u: it follows a symlink at the target
// (uploading through a link replaces the link's target, as open(2) would),
// refuses directories and non-regular files, creates missing parents owned
// by u and opens the temporary file.
func (s *Service) begin(path string, u *users.User, tag string) (*pending, error) {
	real, old, err := followTarget(path)
	if err != nil {
		return nil, err
	}
	if old != nil && old.IsDir() {
		return nil, errs.New(errs.Invalid, "path is a directory: %s", path)
	}
	if old != nil && !old.Mode().IsRegular() {
		// Replacing a device or FIFO with a regular file would be worse than
		// refusing; writing into one could block forever.
		return nil, errs.New(errs.Invalid, "path is not a regular file: %s", path)
	}
	p := &pending{path: path, real: real, old: old, uid: int(u.UID), gid: int(u.GID)}
	if err := makeParents(filepath.Dir(real), p.uid, p.gid); err != nil {
		return nil, err
	}
	for range 8 {
		p.tmp = tempName(real, tag)
		p.f, err = os.OpenFile(p.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o666)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	switch {
	case isNoSpace(err):
		return nil, errs.New(errs.NoSpace, "not enough inodes available: %v", err)
	case err != nil:
		return nil, fmt.Errorf("error opening file '%s': %w", path, err)
	}
	return p, nil
}

// commit gives the temporary file its owner, mode, preserved extended
// attributes and md, then renames it over the target.
func (p *pending) commit(md Metadata) error {
	fd := int(p.f.Fd())
	if err := unix.Fchown(fd, p.uid, p.gid); err != nil {
		p.abort()
		return fmt.Errorf("error changing ownership of '%s': %w", p.path, err)
	}
	if p.old != nil {
		// Keep the existing mode, minus set-id bits (a chown of the old file
		// would have cleared them too).
		if err := unix.Fchmod(fd, uint32(p.old.Mode().Perm()|modeSticky(p.old))); err != nil {
			p.abort()
			return fmt.Errorf("error setting mode of '%s': %w", p.path, err)
		}
		copyXattrs(p.real, fd)
	}
	if err := setMetadata(fd, md); err != nil {
		p.abort()
		return err
	}
	if err := os.Rename(p.tmp, p.real); err != nil {
		p.abort()
		return fmt.Errorf("error replacing '%s': %w", p.path, err)
	}
	// Watchers (the SDK's watchDir) expect a write event under the target's
	// own name, as an in-place write gives. The fd's name followed the
	// rename, so a same-size truncate reports IN_MODIFY for the target.
	_ = unix.Ftruncate(fd, p.copied)
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("error closing '%s': %w", p.path, err)
	}
	return nil
}

// abort discards the temporary file; the target is untouched.
func (p *pending) abort() {
	_ = p.f.Close()
	_ = os.Remove(p.tmp)
}

func modeSticky(fi os.FileInfo) os.FileMode {
	if fi.Mode()&os.ModeSticky != 0 {
		return unix.S_ISVTX
	}
	return 0
}

// followTarget resolves symlinks at the final component of path and stats
// what it names. A missing target yields a nil FileInfo and the path the
// new file will get (a dangling link's destination).
func followTarget(path string) (string, os.FileInfo, error) {
	cur := path
	for range maxLinkHops {
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return cur, nil, nil
		}
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) {
				return "", nil, fmt.Errorf("error creating parent directories of '%s': a parent is not a directory", path)
			}
			return "", nil, fmt.Errorf("error checking path '%s': %w", path, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return cur, fi, nil
		}
		dest, err := os.Readlink(cur)
		if err != nil {
			return "", nil, fmt.Errorf("error reading link '%s': %w", cur, err)
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(cur), dest)
		}
		cur = dest
	}
	return "", nil, errs.New(errs.Invalid, "too many levels of symbolic links: %s", path)
}

// makeParents creates missing parents (0755) owned by uid:gid (E35).
func makeParents(dir string, uid, gid int) error {
	err := fsutil.MkdirAllOwned(dir, uid, gid)
	switch {
	case err == nil:
		return nil
	case isNoSpace(err):
		return errs.New(errs.NoSpace, "not enough disk space to create parent directories: %v", err)
	}
	return fmt.Errorf("error creating parent directories: %w", err)
}

// tempName returns a hidden, unique sibling of target. Long names are cut
// so the result stays within NAME_MAX.
func tempName(target, tag string) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	base := filepath.Base(target)
	if len(base) > 160 {
		base = strings.ToValidUTF8(base[:160], "")
	}
	return filepath.Join(filepath.Dir(target), "."+base+tag+"."+hex.EncodeToString(rnd[:])+".tmp")
}
