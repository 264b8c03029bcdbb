package client_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandboxd/envd/client"
	"github.com/sandboxd/envd/internal/testenv"
)

func TestFilesystemCalls(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for _, cd := range testenv.Codecs {
		t.Run(cd.Name, func(t *testing.T) {
			c := newClient(t, e, codecOpts(cd)...)
			ctx := ctxT(t)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			st, err := c.Stat(ctx, filepath.Join(dir, "a.txt"))
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(filepath.Join(dir, "a.txt"))
			if st.Name != "a.txt" || st.Type != client.TypeFile || st.Size != 5 || st.Mode != 0o640 ||
				st.Permissions != "-rw-r-----" || st.Owner != "root" || !st.ModTime.Equal(fi.ModTime()) || st.IsDir() {
				t.Fatalf("stat: %+v", st)
			}
			if ln, err := c.Stat(ctx, filepath.Join(dir, "link")); err != nil || ln.SymlinkTarget != filepath.Join(dir, "a.txt") {
				t.Fatalf("stat link: %v %+v", err, ln)
			}
			_, err = c.Stat(ctx, filepath.Join(dir, "missing"))
			if !errors.Is(err, client.ErrNotFound) || !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("stat missing: %v", err)
			}
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != "not_found" || ce.Message == "" {
				t.Fatalf("error fields: %#v", err)
			}

			md, err := c.MakeDir(ctx, filepath.Join(dir, "d/e"))
			if err != nil || md.Type != client.TypeDir || md.Path != filepath.Join(dir, "d/e") {
				t.Fatalf("mkdir: %v %+v", err, md)
			}
			_, err = c.MakeDir(ctx, filepath.Join(dir, "d/e"))
			if !errors.Is(err, client.ErrAlreadyExists) || !errors.Is(err, fs.ErrExist) {
				t.Fatalf("mkdir again: %v", err)
			}
			mv, err := c.Move(ctx, filepath.Join(dir, "a.txt"), filepath.Join(dir, "d/e/b.txt"))
			if err != nil || mv.Name != "b.txt" {
				t.Fatalf("move: %v %+v", err, mv)
			}
			if _, err := c.Move(ctx, filepath.Join(dir, "gone"), filepath.Join(dir, "x")); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("move missing: %v", err)
			}

			list, err := c.ListDir(ctx, dir, 3)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range list {
				rel, _ := filepath.Rel(dir, e.Path)
				names = append(names, rel)
			}
			if want := "[d d/e d/e/b.txt link]"; fmtList(names) != want {
				t.Fatalf("list %s, want %s", fmtList(names), want)
			}
			if one, err := c.ListDir(ctx, dir, 0); err != nil || len(one) != 2 {
				t.Fatalf("depth 0 (= 1): %v %d", err, len(one))
			}
			if _, err := c.ListDir(ctx, filepath.Join(dir, "d/e/b.txt"), 1); !errors.Is(err, client.ErrInvalidArgument) {
				t.Fatalf("list a file: %v", err)
			}

			if err := c.Remove(ctx, filepath.Join(dir, "d")); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "d")); !os.IsNotExist(err) {
				t.Fatalf("not removed: %v", err)
			}
			if err := c.Remove(ctx, filepath.Join(dir, "d")); err != nil {
				t.Fatalf("remove missing: %v", err)
			}
		})
	}
}

func fmtList(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}

func TestRelativePathsUseHome(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e, client.WithUser("root"))
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	st, err := c.Stat(ctxT(t), "~")
	if err != nil || st.Path != home {
		t.Fatalf("%v %+v", err, st)
	}
}

func TestWatch(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := newClient(t, e)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctxT(t), dir, client.WatchOptions{Recursive: true, IncludeEntry: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub/new.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ev := next(t, w)
	if ev.Name != "sub/new.txt" || ev.Op != client.OpCreate || ev.Entry == nil || ev.Entry.Name != "new.txt" {
		t.Fatalf("event %+v", ev)
	}
	if err := os.Remove(filepath.Join(dir, "sub/new.txt")); err != nil {
		t.Fatal(err)
	}
	for ev := next(t, w); ev.Op != client.OpRemove; ev = next(t, w) {
		if ev.Op != client.OpWrite && ev.Op != client.OpChmod {
			t.Fatalf("unexpected %v %s", ev.Op, ev.Name)
		}
	}
	w.Close()
	if _, open := <-w.Events(); open {
		t.Fatal("events not closed after Close")
	}
	if err := w.Err(); err != nil {
		t.Fatalf("err after close: %v", err)
	}
	if _, err := c.Watch(ctxT(t), filepath.Join(dir, "missing"), client.WatchOptions{}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("watch missing: %v", err)
	}
}

func next(t *testing.T, w *client.Watcher) client.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event")
	}
	return client.Event{}
}
