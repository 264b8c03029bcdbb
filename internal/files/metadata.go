package files

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
)

// Metadata is user metadata for uploaded files: lower-case key → value,
// stored as xattrs user.e2b.<key> (BEHAVIOR.md 10.2).
type Metadata map[string]string

const (
	metadataHeaderPrefix = "x-metadata-"
	xattrPrefix          = "user.e2b."
	maxMetadataKey       = 255 - len(xattrPrefix) // 246
	maxMetadataTotal     = 4096                   // one ext4 block
	xattrMax             = 64 << 10               // XATTR_SIZE_MAX and XATTR_LIST_MAX
)

// ParseMetadata collects X-Metadata-<Key> headers (key lower-cased, the
// first value of a repeated header wins) and validates them before anything
// is written: printable ASCII keys and values, keys 1..246 bytes, and
// Σ(9 + len(key) + len(value)) ≤ 4096. Violations wrap errs.Invalid.
func ParseMetadata(h http.Header) (Metadata, error) {
	names := make([]string, 0, len(h))
	for name := range h {
		if len(name) >= len(metadataHeaderPrefix) && strings.EqualFold(name[:len(metadataHeaderPrefix)], metadataHeaderPrefix) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names) // deterministic "first wins" across spellings
	md := Metadata{}
	total := 0
	for _, name := range names {
		key := strings.ToLower(name[len(metadataHeaderPrefix):])
		if _, dup := md[key]; dup || len(h[name]) == 0 {
			continue
		}
		value := h[name][0]
		switch {
		case key == "":
			return nil, errs.New(errs.Invalid, "invalid metadata header %q: empty key", name)
		case len(key) > maxMetadataKey:
			return nil, errs.New(errs.Invalid, "invalid metadata key %q: longer than %d bytes", key, maxMetadataKey)
		case !printable(key):
			return nil, errs.New(errs.Invalid, "invalid metadata key %q: only printable ASCII is allowed", key)
		case !printable(value):
			return nil, errs.New(errs.Invalid, "invalid metadata value for key %q: only printable ASCII is allowed", key)
		}
		total += len(xattrPrefix) + len(key) + len(value)
		if total > maxMetadataTotal {
			return nil, errs.New(errs.Invalid, "metadata too large: more than %d bytes in total", maxMetadataTotal)
		}
		md[key] = value
	}
	return md, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// setMetadata writes md through the open fd (never by path: E36). A file
// system without xattr support skips it silently, as E2B does.
func setMetadata(fd int, md Metadata) error {
	for k, v := range md {
		err := unix.Fsetxattr(fd, xattrPrefix+k, []byte(v), 0)
		switch {
		case err == nil:
		case errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP):
			return nil
		case isNoSpace(err):
			return errs.New(errs.NoSpace, "not enough disk space to store metadata")
		default:
			return fmt.Errorf("error setting metadata %q: %w", k, err)
		}
	}
	return nil
}

// copyXattrs carries the old file's extended attributes (ACLs, other tools'
// labels) over to its replacement, as an in-place write would keep them.
// The user.e2b.* set is replaced by the upload's own metadata, and file
// capabilities are dropped, as a write would drop them. Best effort.
func copyXattrs(from string, toFD int) {
	size, err := unix.Listxattr(from, nil)
	if err != nil || size <= 0 {
		return
	}
	list := make([]byte, min(size, xattrMax))
	n, err := unix.Listxattr(from, list)
	if err != nil {
		return
	}
	val := make([]byte, xattrMax)
	for name := range strings.SplitSeq(string(list[:n]), "\x00") {
		if name == "" || strings.HasPrefix(name, xattrPrefix) || name == "security.capability" {
			continue
		}
		vn, err := unix.Getxattr(from, name, val)
		if err != nil {
			continue
		}
		_ = unix.Fsetxattr(toFD, name, val[:vn], 0)
	}
}
