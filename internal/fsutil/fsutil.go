// Package fsutil holds the small filesystem helpers several subsystems
// need (a leaf: subsystems may not import each other).
package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MkdirAllOwned is mkdir -p (mode 0755) that chowns every component it
// creates to uid:gid. EEXIST from a concurrent creator counts as success
// and the directory is still chowned (BEHAVIOR.md E35). Pre-existing
// components are left alone. Errors are *os.PathError.
func MkdirAllOwned(path string, uid, gid int) error {
	path = filepath.Clean(path)
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err == nil {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return &os.PathError{Op: "mkdir", Path: path, Err: unix.ENOTDIR}
		}
		return nil
	}
	if parent := filepath.Dir(path); parent != path {
		if err := MkdirAllOwned(parent, uid, gid); err != nil {
			return err
		}
	}
	err := unix.Mkdir(path, 0o755)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	if err != nil { // EEXIST: fine only if a directory won the race
		if serr := unix.Stat(path, &st); serr != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return &os.PathError{Op: "mkdir", Path: path, Err: unix.EEXIST}
		}
	}
	if err := unix.Lchown(path, uid, gid); err != nil {
		return &os.PathError{Op: "chown", Path: path, Err: err}
	}
	return nil
}

// UnescapeMountinfo undoes the kernel's octal escapes in /proc/*/mountinfo
// fields (\040 for a space, \011, \012, \134).
func UnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
