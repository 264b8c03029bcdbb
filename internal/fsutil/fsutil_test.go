package fsutil

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := UnescapeMountinfo(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}

// E35: parallel creators of one new tree all succeed and every created
// component is owned by the requested user.
func TestMkdirAllOwnedParallelAndOwned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	leaf := filepath.Join(dir, "new", "dir", "leaf")
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- MkdirAllOwned(leaf, 4242, 4343) }()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"new", "new/dir", "new/dir/leaf"} {
		fi, err := os.Stat(filepath.Join(dir, d))
		st := fi.Sys().(*syscall.Stat_t)
		if err != nil || !fi.IsDir() || st.Uid != 4242 || st.Gid != 4343 {
			t.Fatalf("%s: %v uid %d gid %d", d, err, st.Uid, st.Gid)
		}
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o644)
	if err := MkdirAllOwned(filepath.Join(f, "sub"), 0, 0); err == nil {
		t.Fatal("a file as a parent must fail")
	}
}
