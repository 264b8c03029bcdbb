package files

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/envd/internal/errs"
	"github.com/sandboxd/envd/internal/users"
)

func newService(t testing.TB) *Service {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testUser is a user that owns nothing on this machine, so ownership
// assertions cannot pass by accident.
func testUser(t testing.TB) *users.User {
	return &users.User{Name: "tester", UID: 4321, GID: 8765, Home: t.TempDir()}
}

func raw(u *users.User, path string) Upload {
	return Upload{User: u, Path: path, HasPath: true}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func owner(t testing.TB, p string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// dirNames lists a directory, so tests can assert no temporary file is left.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteRawCreatesParentsOwnedByUser(t *testing.T) {
	s, u := newService(t), testUser(t)
	e, err := s.WriteRaw(raw(u, "a/b/c.txt"), strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(u.Home, "a/b/c.txt")
	if e.Path != want || e.Name != "c.txt" || e.Type != "file" || e.Metadata != nil {
		t.Fatalf("entry %+v", e)
	}
	if got := readFile(t, want); got != "hello" {
		t.Fatalf("content %q", got)
	}
	for _, p := range []string{filepath.Join(u.Home, "a"), filepath.Join(u.Home, "a/b"), want} {
		if uid, gid := owner(t, p); uid != u.UID || gid != u.GID {
			t.Errorf("%s owned by %d:%d", p, uid, gid)
		}
	}
	fi, _ := os.Stat(filepath.Join(u.Home, "a"))
	umask := unix.Umask(0)
	unix.Umask(umask)
	if fi.Mode().Perm() != os.FileMode(0o755&^umask) {
		t.Errorf("parent mode %v", fi.Mode().Perm())
	}
	fi, _ = os.Stat(want)
	if fi.Mode().Perm() != os.FileMode(0o666&^umask) {
		t.Errorf("file mode %v", fi.Mode().Perm())
	}
	if names := dirNames(t, filepath.Join(u.Home, "a/b")); len(names) != 1 {
		t.Errorf("leftovers: %v", names)
	}
}

func TestWriteRawPathRequired(t *testing.T) {
	s, u := newService(t), testUser(t)
	_, err := s.WriteRaw(Upload{User: u}, strings.NewReader("x"))
	if !errors.Is(err, errs.Invalid) {
		t.Fatalf("got %v, want invalid", err)
	}
}

func TestOverwriteKeepsModeAndForeignXattrsReplacesMetadata(t *testing.T) {
	s, u := newService(t), testUser(t)
	p := filepath.Join(u.Home, "f.sh")
	if err := os.WriteFile(p, []byte("old old old"), 0o750); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o750)
	if err := unix.Setxattr(p, "user.other", []byte("keep"), 0); err != nil {
		t.Skipf("no user xattrs here: %v", err)
	}
	unix.Setxattr(p, "user.e2b.stale", []byte("gone"), 0)
	up := raw(u, p)
	up.Metadata = Metadata{"k": "v"}
	e, err := s.WriteRaw(up, strings.NewReader("new"))
	if err != nil {
		t.Fatal(err)
	}
	if readFile(t, p) != "new" || e.Metadata["k"] != "v" {
		t.Fatalf("content %q entry %+v", readFile(t, p), e)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o750 {
		t.Errorf("mode %v, want 0750 kept", fi.Mode().Perm())
	}
	if uid, gid := owner(t, p); uid != u.UID || gid != u.GID {
		t.Errorf("owned by %d:%d", uid, gid)
	}
	if v := xattr(p, "user.other"); v != "keep" {
		t.Errorf("user.other = %q", v)
	}
	if v := xattr(p, "user.e2b.k"); v != "v" {
		t.Errorf("user.e2b.k = %q", v)
	}
	if v := xattr(p, "user.e2b.stale"); v != "" {
		t.Errorf("stale metadata survived: %q", v)
	}
}

func xattr(p, name string) string {
	b := make([]byte, 256)
	n, err := unix.Getxattr(p, name, b)
	if err != nil {
		return ""
	}
	return string(b[:n])
}

// BEHAVIOR.md 5.2: uploading through a symlink writes the link's target.
func TestWriteThroughSymlinkReplacesTarget(t *testing.T) {
	s, u := newService(t), testUser(t)
	real := filepath.Join(u.Home, "real.txt")
	os.WriteFile(real, []byte("old"), 0o644)
	link := filepath.Join(u.Home, "link.txt")
	os.Symlink("real.txt", link)
	if _, err := s.WriteRaw(raw(u, link), strings.NewReader("via link")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the link was replaced by a file")
	}
	if got := readFile(t, real); got != "via link" {
		t.Fatalf("target content %q", got)
	}
	// A dangling link creates its destination, as open(O_CREAT) would.
	dangling := filepath.Join(u.Home, "dangling")
	os.Symlink("sub/new.txt", dangling)
	if _, err := s.WriteRaw(raw(u, dangling), strings.NewReader("n")); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(u.Home, "sub/new.txt")); got != "n" {
		t.Fatalf("dangling destination %q", got)
	}
}

func TestWriteRefusesDirectoryAndSpecialFiles(t *testing.T) {
	s, u := newService(t), testUser(t)
	if _, err := s.WriteRaw(raw(u, u.Home), strings.NewReader("x")); !errors.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "path is a directory") {
		t.Fatalf("directory: %v", err)
	}
	fifo := filepath.Join(u.Home, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteRaw(raw(u, fifo), strings.NewReader("x")); !errors.Is(err, errs.Invalid) {
		t.Fatalf("fifo: %v", err)
	}
	if _, err := s.WriteRaw(raw(u, "/dev/null"), strings.NewReader("x")); !errors.Is(err, errs.Invalid) {
		t.Fatalf("device: %v", err)
	}
	// A parent component that is a file is an internal error (500), as E2B.
	os.WriteFile(filepath.Join(u.Home, "file"), nil, 0o644)
	_, err := s.WriteRaw(raw(u, "file/x"), strings.NewReader("x"))
	if err == nil || errs.Kind(err) != nil {
		t.Fatalf("file as parent: %v (kind %v)", err, errs.Kind(err))
	}
}

// failingReader yields n bytes, then an error: a client that went away.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

// An aborted upload never destroys the previous content (the brief's
// replacement for E2B's truncate-first write, BEHAVIOR.md 5.2).
func TestAbortedUploadKeepsOldContentAndLeavesNoTemp(t *testing.T) {
	s, u := newService(t), testUser(t)
	p := filepath.Join(u.Home, "keep.txt")
	os.WriteFile(p, []byte("precious"), 0o644)
	_, err := s.WriteRaw(raw(u, p), &failingReader{n: 3 << 20})
	if err == nil || errs.Kind(err) != nil {
		t.Fatalf("got %v, want an internal error", err)
	}
	if got := readFile(t, p); got != "precious" {
		t.Fatalf("old content destroyed: %q", got[:min(len(got), 20)])
	}
	if names := dirNames(t, u.Home); len(names) != 1 {
		t.Fatalf("leftovers: %v", names)
	}
}

// mountTmpfs mounts a tmpfs of the given size on a fresh directory.
func mountTmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs (need root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// E37: a full disk answers NoSpace (507) and leaves neither a partial file
// nor a temporary one; an existing file keeps its content.
func TestFullDiskIsNoSpaceAndLeavesNoPartialFile(t *testing.T) {
	s, u := newService(t), testUser(t)
	dir := mountTmpfs(t, "1m")
	p := filepath.Join(dir, "big.bin")
	_, err := s.WriteRaw(raw(u, p), bytes.NewReader(make([]byte, 2<<20)))
	if !errors.Is(err, errs.NoSpace) || !strings.Contains(err.Error(), "not enough disk space available") {
		t.Fatalf("got %v, want no space", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("partial files left: %v", names)
	}
	old := filepath.Join(dir, "old.txt")
	os.WriteFile(old, []byte("old content"), 0o644)
	if _, err := s.WriteRaw(raw(u, old), bytes.NewReader(make([]byte, 2<<20))); !errors.Is(err, errs.NoSpace) {
		t.Fatalf("overwrite: got %v", err)
	}
	if got := readFile(t, old); got != "old content" {
		t.Fatalf("old content lost: %q", got)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Fatalf("leftovers: %v", names)
	}
	// The space is really free again: a file that fits succeeds.
	if _, err := s.WriteRaw(raw(u, p), bytes.NewReader(make([]byte, 512<<10))); err != nil {
		t.Fatalf("fitting upload after failure: %v", err)
	}
}

// E35: parallel uploads into one new directory tree must not fail on EEXIST.
func TestParallelUploadsIntoNewDirectory(t *testing.T) {
	s, u := newService(t), testUser(t)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.WriteRaw(raw(u, fmt.Sprintf("new/dir/deep/f%d", i)), strings.NewReader(fmt.Sprint(i)))
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range 8 {
		if got := readFile(t, filepath.Join(u.Home, fmt.Sprintf("new/dir/deep/f%d", i))); got != fmt.Sprint(i) {
			t.Errorf("f%d = %q", i, got)
		}
	}
	if uid, _ := owner(t, filepath.Join(u.Home, "new/dir")); uid != u.UID {
		t.Errorf("new/dir owned by %d", uid)
	}
}

// SDK watchers wait for a WRITE event under the file's own name after
// files.write (E2B SDK watch tests); the temp-and-rename write must still
// produce IN_MODIFY for the target name.
func TestUploadReportsModifyUnderTargetName(t *testing.T) {
	s, u := newService(t), testUser(t)
	p := filepath.Join(u.Home, "watched.txt")
	os.WriteFile(p, []byte("a"), 0o644)
	ifd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ifd)
	if _, err := unix.InotifyAddWatch(ifd, u.Home, unix.IN_MODIFY|unix.IN_MOVED_TO|unix.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteRaw(raw(u, p), strings.NewReader("new content")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	n, err := unix.Read(ifd, buf) // the events are queued before WriteRaw returns
	if err != nil {
		t.Fatal(err)
	}
	modified := false
	for off := 0; off < n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
		if name == "watched.txt" && ev.Mask&unix.IN_MODIFY != 0 {
			modified = true
		}
		off += unix.SizeofInotifyEvent + int(ev.Len)
	}
	if !modified {
		t.Fatal("no IN_MODIFY for watched.txt")
	}
}

func TestParseMetadata(t *testing.T) {
	h := func(kv ...string) map[string][]string {
		m := map[string][]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = append(m[kv[i]], kv[i+1])
		}
		return m
	}
	md, err := ParseMetadata(h("X-Metadata-Content-Type", "text/plain", "X-Metadata-Origin", "a", "X-Metadata-Origin", "b", "Other", "x"))
	if err != nil || len(md) != 2 || md["content-type"] != "text/plain" || md["origin"] != "a" {
		t.Fatalf("got %v %v", md, err)
	}
	if md, err := ParseMetadata(h("Accept", "x")); md != nil || err != nil {
		t.Fatalf("no metadata headers: %v %v", md, err)
	}
	long := strings.Repeat("k", 246)
	if _, err := ParseMetadata(h("X-Metadata-"+long, "v")); err != nil {
		t.Fatalf("246-byte key refused: %v", err)
	}
	// Exactly at the 4096-byte total: 9 + 1 + 4086.
	if _, err := ParseMetadata(h("X-Metadata-K", strings.Repeat("v", 4086))); err != nil {
		t.Fatalf("4096 total refused: %v", err)
	}
	for name, hdr := range map[string]map[string][]string{
		"empty key":       h("X-Metadata-", "v"),
		"key too long":    h("X-Metadata-"+long+"k", "v"),
		"non-ascii value": h("X-Metadata-K", "caf\u00e9"),
		"control value":   h("X-Metadata-K", "a\tb"),
		"total over 4096": h("X-Metadata-K", strings.Repeat("v", 4087)),
	} {
		if _, err := ParseMetadata(hdr); !errors.Is(err, errs.Invalid) {
			t.Errorf("%s: got %v, want invalid", name, err)
		}
	}
}
