package filesystem

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// FileType is an entry's type. The numbers are the wire enum's.
type FileType int32

// The types E2B reports. A symlink reports its target's type (PROTOCOL.md
// 3.4), so there is no symlink type here.
const (
	TypeUnspecified FileType = 0
	TypeFile        FileType = 1
	TypeDirectory   FileType = 2
)

// EntryInfo describes one filesystem entry as PROTOCOL.md 3.4 defines it.
type EntryInfo struct {
	Name        string
	Type        FileType
	Path        string
	Size        int64
	Mode        uint32 // permission bits only (& 0o777); a symlink's target's
	Permissions string // os.FileMode.String() of the lstat mode
	Owner       string
	Group       string
	ModTime     time.Time // zero when the mtime is 0
	// IsSymlink marks a symlink; SymlinkTarget is then the fully resolved
	// absolute target, or the entry's own path when resolution fails.
	IsSymlink     bool
	SymlinkTarget string
	Metadata      map[string]string // user.e2b.* xattrs; nil when none
}

// Names maps numeric ids to user and group names. users.DB implements it.
// Implementations return the number as a string when the id is unknown.
type Names interface {
	UserName(uid uint32) string
	GroupName(gid uint32) string
}

// numericNames is the fallback when Options.Names is nil.
type numericNames struct{}

func (numericNames) UserName(uid uint32) string  { return strconv.FormatUint(uint64(uid), 10) }
func (numericNames) GroupName(gid uint32) string { return strconv.FormatUint(uint64(gid), 10) }

// nameCache memoises id→name lookups for the length of one call, so a
// listing of 10,000 entries owned by one user does one lookup, not 10,000.
// Not safe for concurrent use; bounded by the number of distinct ids.
type nameCache struct {
	names  Names
	users  map[uint32]string
	groups map[uint32]string
}

func newNameCache(n Names) *nameCache {
	return &nameCache{names: n, users: map[uint32]string{}, groups: map[uint32]string{}}
}

func (c *nameCache) user(uid uint32) string {
	n, ok := c.users[uid]
	if !ok {
		n = c.names.UserName(uid)
		c.users[uid] = n
	}
	return n
}

func (c *nameCache) group(gid uint32) string {
	n, ok := c.groups[gid]
	if !ok {
		n = c.names.GroupName(gid)
		c.groups[gid] = n
	}
	return n
}

// lstatEntry builds the entry of path from lstat. It returns the raw
// lstat error so callers can tell "missing" from other failures.
func lstatEntry(path string, names *nameCache) (EntryInfo, error) {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Lstat(path, &st) }); err != nil {
		return EntryInfo{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return makeEntry(path, baseName(path), &st, names), nil
}

// makeEntry turns an lstat result into an EntryInfo (PROTOCOL.md 3.4 table).
func makeEntry(path, name string, st *unix.Stat_t, names *nameCache) EntryInfo {
	mode := fileMode(st.Mode)
	e := EntryInfo{
		Name:        name,
		Path:        path,
		Size:        st.Size,
		Permissions: mode.String(),
		Owner:       names.user(st.Uid),
		Group:       names.group(st.Gid),
	}
	if st.Mtim.Sec != 0 || st.Mtim.Nsec != 0 {
		e.ModTime = time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	}
	if mode&os.ModeSymlink != 0 {
		e.IsSymlink = true
		e.SymlinkTarget = path
		if t, err := filepath.EvalSymlinks(path); err == nil {
			if abs, err := filepath.Abs(t); err == nil {
				e.SymlinkTarget = abs
			}
		}
		var tst unix.Stat_t
		if unix.Stat(e.SymlinkTarget, &tst) == nil {
			e.Type = typeOf(tst.Mode)
			e.Mode = tst.Mode & 0o777
		}
	} else {
		e.Type = typeOf(st.Mode)
		e.Mode = st.Mode & 0o777
	}
	e.Metadata = readMetadata(path)
	return e
}

func typeOf(m uint32) FileType {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return TypeFile
	case unix.S_IFDIR:
		return TypeDirectory
	}
	return TypeUnspecified
}

// fileMode converts a raw st_mode to os.FileMode exactly as package os does,
// so Permissions matches E2B's FileMode.String() (e.g. "dtrwxrwxrwx").
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// baseName is the name os.Lstat reports: the last element, "/" for the root.
func baseName(path string) string {
	b := filepath.Base(path)
	if b == "." && path == "" {
		return ""
	}
	return b
}

// metadataPrefix names the xattrs that carry user metadata (BEHAVIOR.md 10.2).
const metadataPrefix = "user.e2b."

// readMetadata returns the user.e2b.* xattrs of path (symlinks followed, as
// in E2B), skipping keys or values that are not valid UTF-8. Any error,
// including no xattr support, means no metadata. The kernel bounds both the
// name list and each value at 64 KiB.
func readMetadata(path string) map[string]string {
	var small [1024]byte
	buf := small[:]
	n, err := unix.Listxattr(path, buf)
	if errors.Is(err, unix.ERANGE) {
		size, serr := unix.Listxattr(path, nil)
		if serr != nil || size <= 0 {
			return nil
		}
		buf = make([]byte, size)
		n, err = unix.Listxattr(path, buf)
	}
	if err != nil || n <= 0 {
		return nil
	}
	var md map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		key, ok := strings.CutPrefix(name, metadataPrefix)
		if !ok || key == "" || !utf8.ValidString(key) {
			continue
		}
		v, ok := getxattr(path, name)
		if !ok || !utf8.Valid(v) {
			continue
		}
		if md == nil {
			md = map[string]string{}
		}
		md[key] = string(v)
	}
	return md
}

func getxattr(path, name string) ([]byte, bool) {
	var small [256]byte
	n, err := unix.Getxattr(path, name, small[:])
	if err == nil {
		return append([]byte(nil), small[:n]...), true
	}
	if !errors.Is(err, unix.ERANGE) {
		return nil, false
	}
	size, err := unix.Getxattr(path, name, nil)
	if err != nil || size < 0 {
		return nil, false
	}
	buf := make([]byte, size)
	n, err = unix.Getxattr(path, name, buf)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

// ignoringEINTR retries fn while it fails with EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
