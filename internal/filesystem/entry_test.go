package filesystem

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/users"
)

// testNames maps ids through a private passwd/group pair.
func testNames(t testing.TB) Names {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:4242:4343::/home/alice:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "group"), []byte("root:x:0:\nstaff:x:4343:alice\n"), 0o644))
	return users.New(filepath.Join(dir, "passwd"), filepath.Join(dir, "group"))
}

func TestStatEntryOfRegularFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "file.txt")
	must(t, os.WriteFile(f, []byte("hello"), 0o640))
	must(t, os.Chown(f, 4242, 4343))
	mt := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	must(t, os.Chtimes(f, mt, mt))
	s := newService(t, Options{Names: testNames(t)})
	e, err := s.Stat(f)
	must(t, err)
	want := EntryInfo{Name: "file.txt", Type: TypeFile, Path: f, Size: 5, Mode: 0o640,
		Permissions: "-rw-r-----", Owner: "alice", Group: "staff"}
	if e.Name != want.Name || e.Type != want.Type || e.Path != want.Path || e.Size != want.Size ||
		e.Mode != want.Mode || e.Permissions != want.Permissions || e.Owner != want.Owner || e.Group != want.Group {
		t.Fatalf("entry %+v\nwant  %+v", e, want)
	}
	if !e.ModTime.Equal(mt) || e.IsSymlink || e.Metadata != nil {
		t.Fatalf("mtime %v symlink %v metadata %v", e.ModTime, e.IsSymlink, e.Metadata)
	}
}

func TestEntryUnknownIDsAreNumeric(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(f, nil, 0o644))
	must(t, os.Chown(f, 31337, 31338))
	s := newService(t, Options{Names: testNames(t)})
	e, err := s.Stat(f)
	must(t, err)
	if e.Owner != "31337" || e.Group != "31338" {
		t.Fatalf("owner %q group %q", e.Owner, e.Group)
	}
}

func TestEntryModeAndPermissionsStrings(t *testing.T) {
	dir := t.TempDir()
	sticky := filepath.Join(dir, "sticky")
	must(t, os.Mkdir(sticky, 0o777))
	must(t, os.Chmod(sticky, 0o777|os.ModeSticky))
	setuid := filepath.Join(dir, "setuid")
	must(t, os.WriteFile(setuid, nil, 0o755))
	must(t, os.Chmod(setuid, 0o755|os.ModeSetuid))
	fifo := filepath.Join(dir, "fifo")
	must(t, unix.Mkfifo(fifo, 0o600))
	s := newService(t, Options{})
	for path, want := range map[string]struct {
		perm string
		mode uint32
		typ  FileType
	}{
		sticky: {"dtrwxrwxrwx", 0o777, TypeDirectory},
		setuid: {"urwxr-xr-x", 0o755, TypeFile},
		fifo:   {"prw-------", 0o600, TypeUnspecified},
		"/":    {"", 0, TypeDirectory},
	} {
		e, err := s.Stat(path)
		must(t, err)
		if path == "/" {
			if e.Name != "/" || e.Type != TypeDirectory {
				t.Errorf("root entry %+v", e)
			}
			continue
		}
		if e.Permissions != want.perm || e.Mode != want.mode || e.Type != want.typ {
			t.Errorf("%s: permissions %q mode %o type %d, want %q %o %d", path, e.Permissions, e.Mode, e.Type, want.perm, want.mode, want.typ)
		}
	}
}

// A symlink reports its target's type and permission bits, its own size
// and "L" permissions, and the fully resolved target.
func TestEntryOfSymlinks(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	must(t, err)
	target := filepath.Join(dir, "target.txt")
	must(t, os.WriteFile(target, []byte("12345678"), 0o600))
	must(t, os.Symlink("target.txt", filepath.Join(dir, "l1")))
	must(t, os.Symlink(filepath.Join(dir, "l1"), filepath.Join(dir, "l2"))) // chain
	must(t, os.Symlink(dir, filepath.Join(dir, "dirlink")))
	must(t, os.Symlink("nowhere", filepath.Join(dir, "broken")))
	s := newService(t, Options{})

	e, err := s.Stat(filepath.Join(dir, "l2"))
	must(t, err)
	if !e.IsSymlink || e.SymlinkTarget != target || e.Type != TypeFile || e.Mode != 0o600 ||
		e.Permissions != "Lrwxrwxrwx" || e.Size != int64(len(filepath.Join(dir, "l1"))) {
		t.Errorf("chained link: %+v", e)
	}
	e, err = s.Stat(filepath.Join(dir, "dirlink"))
	must(t, err)
	if e.Type != TypeDirectory || e.SymlinkTarget != dir {
		t.Errorf("dir link: %+v", e)
	}
	broken := filepath.Join(dir, "broken")
	e, err = s.Stat(broken)
	must(t, err)
	if !e.IsSymlink || e.Type != TypeUnspecified || e.Mode != 0 || e.SymlinkTarget != broken {
		t.Errorf("broken link: %+v", e)
	}
}

// Metadata comes from user.e2b.* xattrs; other xattrs and non-UTF-8 keys
// or values are skipped (BEHAVIOR.md 10.2).
func TestEntryMetadataFromXattrs(t *testing.T) {
	f := filepath.Join(t.TempDir(), "m")
	must(t, os.WriteFile(f, nil, 0o644))
	for name, value := range map[string]string{
		"user.e2b.content-type": "text/plain",
		"user.e2b.origin":       "",
		"user.e2b.bad":          "\xff\xfe",
		"user.e2b.\xffkey":      "v",
		"user.other":            "ignored",
	} {
		if err := unix.Setxattr(f, name, []byte(value), 0); err != nil {
			t.Skip("no user xattrs here:", err)
		}
	}
	big := make([]byte, 3000) // larger than the first read buffer
	for i := range big {
		big[i] = 'a'
	}
	must(t, unix.Setxattr(f, "user.e2b.big", big, 0))
	s := newService(t, Options{})
	e, err := s.Stat(f)
	must(t, err)
	want := map[string]string{"content-type": "text/plain", "origin": "", "big": string(big)}
	if len(e.Metadata) != len(want) {
		t.Fatalf("metadata %v", e.Metadata)
	}
	for k, v := range want {
		if got, ok := e.Metadata[k]; !ok || got != v {
			t.Errorf("metadata[%q] = %q, %v", k, got, ok)
		}
	}
}

func TestEntryZeroMtimeIsUnset(t *testing.T) {
	f := filepath.Join(t.TempDir(), "old")
	must(t, os.WriteFile(f, nil, 0o644))
	must(t, os.Chtimes(f, time.Unix(0, 0), time.Unix(0, 0)))
	s := newService(t, Options{})
	e, err := s.Stat(f)
	must(t, err)
	if !e.ModTime.IsZero() {
		t.Fatalf("mtime %v, want unset", e.ModTime)
	}
}
