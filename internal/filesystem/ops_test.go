package filesystem

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestStatMissingIsNotFound(t *testing.T) {
	s := newService(t, Options{})
	p := filepath.Join(t.TempDir(), "nope")
	_, err := s.Stat(p)
	if kindName(err) != "not found" || err.Error() != "file not found: "+p {
		t.Fatalf("stat missing: %v", err)
	}
	// A file used as a directory is an "other stat error": internal.
	f := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(f, nil, 0o644))
	if _, err := s.Stat(f + "/x"); kindName(err) != "internal" {
		t.Fatalf("stat through a file: %v", err)
	}
}

// tree builds: a/, a/x, a/y/, a/y/z, b, c -> a (symlink)
func makeTree(t testing.TB) string {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "a/y/deeper"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "a/x"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "a/y/z"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "b"), nil, 0o644))
	must(t, os.Symlink("a", filepath.Join(dir, "c")))
	return dir
}

func names(dir string, es []EntryInfo) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = strings.TrimPrefix(e.Path, dir+"/")
	}
	return out
}

func TestListDirDepthsInLexicalPreOrder(t *testing.T) {
	dir := makeTree(t)
	s := newService(t, Options{})
	for depth, want := range map[int][]string{
		0: {"a", "b", "c"},
		1: {"a", "b", "c"},
		2: {"a", "a/x", "a/y", "b", "c"},
		3: {"a", "a/x", "a/y", "a/y/deeper", "a/y/z", "b", "c"},
		9: {"a", "a/x", "a/y", "a/y/deeper", "a/y/z", "b", "c"},
	} {
		es, err := s.ListDir(dir, depth)
		must(t, err)
		// The symlink c is listed, not descended.
		if got := names(dir, es); !slices.Equal(got, want) {
			t.Errorf("depth %d: %v, want %v", depth, got, want)
		}
	}
	es, err := s.ListDir(dir, 1)
	must(t, err)
	if es[2].Name != "c" || !es[2].IsSymlink || es[2].Type != TypeDirectory || es[0].Type != TypeDirectory || es[1].Type != TypeFile {
		t.Errorf("entries %+v", es)
	}
}

// E33: a symlinked directory is listed, and paths are re-based on the
// requested path, not the resolved one.
func TestListDirOfSymlinkedDirRebasesPaths(t *testing.T) {
	dir := makeTree(t)
	s := newService(t, Options{})
	es, err := s.ListDir(filepath.Join(dir, "c"), 2)
	must(t, err)
	got := names(dir, es)
	want := []string{"c/x", "c/y", "c/y/deeper", "c/y/z"}
	if !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if es[0].Name != "x" {
		t.Errorf("name %q", es[0].Name)
	}
}

func TestListDirErrors(t *testing.T) {
	dir := makeTree(t)
	must(t, os.Symlink("loop2", filepath.Join(dir, "loop1")))
	must(t, os.Symlink("loop1", filepath.Join(dir, "loop2")))
	s := newService(t, Options{})
	for path, want := range map[string]string{
		filepath.Join(dir, "missing"): "not found",
		filepath.Join(dir, "b"):       "invalid argument",
		filepath.Join(dir, "loop1"):   "failed precondition",
	} {
		_, err := s.ListDir(path, 1)
		if kindName(err) != want {
			t.Errorf("%s: %v, want %s", path, err, want)
		}
	}
	_, err := s.ListDir(filepath.Join(dir, "b"), 1)
	if err.Error() != "path is not a directory: "+filepath.Join(dir, "b") {
		t.Errorf("message %q", err)
	}
}

// The entry cap: exactly MaxListEntries entries list; one more is refused.
func TestListDirEntryCap(t *testing.T) {
	dir := t.TempDir()
	for i := range 10 {
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644))
	}
	s := newService(t, Options{MaxListEntries: 10})
	es, err := s.ListDir(dir, 1)
	if err != nil || len(es) != 10 {
		t.Fatalf("at the cap: %d entries, %v", len(es), err)
	}
	must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	_, err = s.ListDir(dir, 1)
	if kindName(err) != "invalid argument" || !strings.Contains(err.Error(), "exceeds 10 entries") {
		t.Fatalf("over the cap: %v", err)
	}
	must(t, os.Remove(filepath.Join(dir, "0")))
	_, err = s.ListDir(dir, 2) // 10 at depth 1, then 0 in sub: fine
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "sub/deep"), nil, 0o644))
	if _, err = s.ListDir(dir, 2); kindName(err) != "invalid argument" {
		t.Fatalf("over the cap at depth 2: %v", err)
	}
}

// E32: entries vanishing during a deep walk are skipped, never fatal.
func TestListDirSkipsEntriesVanishingMidWalk(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := filepath.Join(dir, fmt.Sprintf("t%d", i%4))
			_ = os.MkdirAll(filepath.Join(p, "a/b/c/d"), 0o755)
			_ = os.WriteFile(filepath.Join(p, "a/b/c/d/f"), nil, 0o644)
			_ = os.RemoveAll(p)
		}
	}()
	for range 300 {
		if _, err := s.ListDir(dir, 6); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("walk failed while entries vanish: %v", err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestMakeDirCreatesParentsOwnedByUser(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{Names: testNames(t)})
	p := filepath.Join(dir, "x/y/z")
	e, err := s.MakeDir(p, Owner{UID: 4242, GID: 4343})
	must(t, err)
	if e.Path != p || e.Name != "z" || e.Type != TypeDirectory || e.Owner != "alice" || e.Group != "staff" || e.Mode != 0o755 {
		t.Fatalf("entry %+v", e)
	}
	for _, q := range []string{"x", "x/y", "x/y/z"} {
		var st unix.Stat_t
		must(t, unix.Stat(filepath.Join(dir, q), &st))
		if st.Uid != 4242 || st.Gid != 4343 {
			t.Errorf("%s owned by %d:%d", q, st.Uid, st.Gid)
		}
	}
	var st unix.Stat_t
	must(t, unix.Stat(dir, &st))
	if st.Uid != 0 {
		t.Errorf("pre-existing parent chowned to %d", st.Uid)
	}
	if _, err := s.MakeDir(p, Owner{}); kindName(err) != "already exists" {
		t.Errorf("existing dir: %v", err)
	}
	f := filepath.Join(dir, "file")
	must(t, os.WriteFile(f, nil, 0o644))
	if _, err := s.MakeDir(f, Owner{}); kindName(err) != "invalid argument" {
		t.Errorf("existing file: %v", err)
	}
	if _, err := s.MakeDir(filepath.Join(f, "sub"), Owner{}); kindName(err) != "internal" {
		t.Errorf("parent is a file: %v", err)
	}
}

// E35: concurrent creators of the same new tree all succeed.
func TestEnsureDirsToleratesConcurrentCreators(t *testing.T) {
	for range 20 {
		dir := t.TempDir()
		var wg sync.WaitGroup
		errc := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- ensureDirs(filepath.Join(dir, "new/dir/leaf"), Owner{UID: 4242, GID: 4242})
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			must(t, err)
		}
		var st unix.Stat_t
		must(t, unix.Stat(filepath.Join(dir, "new/dir/leaf"), &st))
		if st.Uid != 4242 {
			t.Fatalf("leaf owned by %d", st.Uid)
		}
	}
}

func TestMove(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{})
	src := filepath.Join(dir, "src.txt")
	must(t, os.WriteFile(src, []byte("data"), 0o644))
	dst := filepath.Join(dir, "new/parent/dst.txt")
	e, err := s.Move(src, dst, Owner{UID: 4242, GID: 4242})
	must(t, err)
	if e.Path != dst || e.Name != "dst.txt" || e.Size != 4 {
		t.Fatalf("entry %+v", e)
	}
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(dir, "new/parent"), &st))
	if st.Uid != 4242 {
		t.Errorf("created parent owned by %d", st.Uid)
	}
	must(t, unix.Stat(dst, &st))
	if st.Uid != 0 {
		t.Errorf("moved file's owner changed to %d", st.Uid)
	}
	// An existing destination file is replaced.
	must(t, os.WriteFile(src, []byte("second"), 0o644))
	e, err = s.Move(src, dst, Owner{})
	must(t, err)
	if b, _ := os.ReadFile(dst); string(b) != "second" || e.Size != 6 {
		t.Fatalf("replace: %q %+v", b, e)
	}
}

// E34: moving a missing source is not_found, and creates nothing.
func TestMoveMissingSourceIsNotFound(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{})
	_, err := s.Move(filepath.Join(dir, "ghost"), filepath.Join(dir, "p/q"), Owner{})
	if kindName(err) != "not found" {
		t.Fatalf("move missing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "p")); !os.IsNotExist(err) {
		t.Fatalf("destination parent created for a missing source: %v", err)
	}
}

func TestMoveOntoNonEmptyDirectoryIsInternal(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "a"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "b/full"), 0o755))
	s := newService(t, Options{})
	if _, err := s.Move(filepath.Join(dir, "a"), filepath.Join(dir, "b"), Owner{}); kindName(err) != "internal" {
		t.Fatalf("onto non-empty dir: %v", err)
	}
}

func TestRemove(t *testing.T) {
	dir := makeTree(t)
	s := newService(t, Options{})
	must(t, s.Remove(filepath.Join(dir, "missing"))) // remove-all semantics
	must(t, s.Remove(filepath.Join(dir, "c")))       // the link, not the target
	if _, err := os.Stat(filepath.Join(dir, "a/y/z")); err != nil {
		t.Fatalf("removing a symlink touched its target: %v", err)
	}
	must(t, s.Remove(filepath.Join(dir, "a")))
	es, err := s.ListDir(dir, 5)
	must(t, err)
	if got := names(dir, es); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("left: %v", got)
	}
}

// BenchmarkListDir10kSubsystem is ListDir without the RPC layer.
func BenchmarkListDir10kSubsystem(b *testing.B) {
	dir := b.TempDir()
	for i := range 10_000 {
		must(b, os.WriteFile(fmt.Sprintf("%s/file-%05d", dir, i), nil, 0o644))
	}
	s := newService(b, Options{Names: testNames(b)})
	var r0, r1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &r0)
	for b.Loop() {
		es, err := s.ListDir(dir, 1)
		if err != nil || len(es) != 10_000 {
			b.Fatal(err)
		}
	}
	_ = unix.Getrusage(unix.RUSAGE_SELF, &r1)
	// CPU time is less sensitive than wall time to a busy machine.
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
