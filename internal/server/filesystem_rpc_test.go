package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

func fsCode(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return 0
}

func fsCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func fsStat(t testing.TB, c filesystemconnect.FilesystemClient, path string) (*fspb.EntryInfo, error) {
	t.Helper()
	r, err := c.Stat(fsCtx(t), connect.NewRequest(&fspb.StatRequest{Path: path}))
	if err != nil {
		return nil, err
	}
	return r.Msg.GetEntry(), nil
}

// Every unary RPC, over both codecs and both HTTP versions, end to end.
func TestFilesystemRPCsOverEveryCodec(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for _, codec := range testenv.Codecs {
		t.Run(codec.Name, func(t *testing.T) {
			c := e.Filesystem(codec)
			ctx := fsCtx(t)
			dir := t.TempDir()
			mk, err := c.MakeDir(ctx, testenv.AsUser(connect.NewRequest(&fspb.MakeDirRequest{Path: dir + "/a/b"}), "www-data"))
			if err != nil {
				t.Fatal(err)
			}
			if m := mk.Msg.Entry; m.Name != "b" || m.Path != dir+"/a/b" || m.Type != fspb.FileType_FILE_TYPE_DIRECTORY ||
				m.Owner != "www-data" || m.Group != "www-data" || m.Mode != 0o755 || m.Permissions != "drwxr-xr-x" {
				t.Fatalf("MakeDir entry %v", m)
			}
			if err := os.WriteFile(dir+"/a/b/f.txt", []byte("hello"), 0o640); err != nil {
				t.Fatal(err)
			}
			st, err := fsStat(t, c, dir+"/a/b/f.txt")
			if err != nil {
				t.Fatal(err)
			}
			var raw unix.Stat_t
			_ = unix.Lstat(dir+"/a/b/f.txt", &raw)
			if st.Name != "f.txt" || st.Type != fspb.FileType_FILE_TYPE_FILE || st.Size != 5 || st.Mode != 0o640 ||
				st.Permissions != "-rw-r-----" || st.Owner != "root" || st.Group != "root" || st.SymlinkTarget != nil ||
				!st.ModifiedTime.AsTime().Equal(time.Unix(raw.Mtim.Sec, raw.Mtim.Nsec)) {
				t.Fatalf("Stat entry %v", st)
			}
			ls, err := c.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: dir, Depth: 3}))
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, en := range ls.Msg.Entries {
				paths = append(paths, strings.TrimPrefix(en.Path, dir))
			}
			if !slices.Equal(paths, []string{"/a", "/a/b", "/a/b/f.txt"}) {
				t.Fatalf("ListDir paths %v", paths)
			}
			mv, err := c.Move(ctx, connect.NewRequest(&fspb.MoveRequest{Source: dir + "/a/b/f.txt", Destination: dir + "/c/g.txt"}))
			if err != nil {
				t.Fatal(err)
			}
			if mv.Msg.Entry.Path != dir+"/c/g.txt" || mv.Msg.Entry.Size != 5 {
				t.Fatalf("Move entry %v", mv.Msg.Entry)
			}
			if _, err := c.Remove(ctx, connect.NewRequest(&fspb.RemoveRequest{Path: dir + "/a"})); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir + "/a"); !os.IsNotExist(err) {
				t.Fatalf("Remove left %v", err)
			}
		})
	}
}

// Error codes of PROTOCOL.md 3.4, as Connect codes on the wire.
func TestFilesystemErrorCodes(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Filesystem(testenv.Codecs[1]) // JSON, as the SDK
	ctx := fsCtx(t)
	dir := t.TempDir()
	file := dir + "/file"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Symlink("l2", dir+"/l1")
	_ = os.Symlink("l1", dir+"/l2")
	call := map[string]func() error{
		"stat missing": func() error { _, err := fsStat(t, c, dir+"/missing"); return err },
		"stat ~other":  func() error { _, err := fsStat(t, c, "~nobody/x"); return err },
		"list missing": func() error {
			_, err := c.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: dir + "/missing"}))
			return err
		},
		"list file": func() error {
			_, err := c.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: file}))
			return err
		},
		"list loop": func() error {
			_, err := c.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: dir + "/l1"}))
			return err
		},
		"mkdir exists": func() error {
			_, err := c.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: dir}))
			return err
		},
		"mkdir on file": func() error {
			_, err := c.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: file}))
			return err
		},
		"mkdir under file": func() error {
			_, err := c.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: file + "/sub"}))
			return err
		},
		// E34: a missing source is not_found, not internal.
		"move missing": func() error {
			_, err := c.Move(ctx, connect.NewRequest(&fspb.MoveRequest{Source: dir + "/ghost", Destination: dir + "/x"}))
			return err
		},
		"move cross-device": func() error {
			f, err := os.CreateTemp("/dev/shm", "envd-fs-")
			if err != nil {
				return connect.NewError(connect.CodeInternal, err) // no tmpfs: same code
			}
			f.Close()
			defer os.Remove(f.Name())
			_, err = c.Move(ctx, connect.NewRequest(&fspb.MoveRequest{Source: f.Name(), Destination: dir + "/xdev"}))
			return err
		},
		"remove missing": func() error {
			_, err := c.Remove(ctx, connect.NewRequest(&fspb.RemoveRequest{Path: dir + "/missing"}))
			return err
		},
		"unknown user": func() error {
			_, err := c.Stat(ctx, testenv.AsUser(connect.NewRequest(&fspb.StatRequest{Path: dir}), "no-such-user"))
			return err
		},
		"watcher events unknown": func() error {
			_, err := c.GetWatcherEvents(ctx, connect.NewRequest(&fspb.GetWatcherEventsRequest{WatcherId: "wnope"}))
			return err
		},
		"remove watcher unknown": func() error {
			_, err := c.RemoveWatcher(ctx, connect.NewRequest(&fspb.RemoveWatcherRequest{WatcherId: "wnope"}))
			return err
		},
		"create watcher on file": func() error {
			_, err := c.CreateWatcher(ctx, connect.NewRequest(&fspb.CreateWatcherRequest{Path: file}))
			return err
		},
		"create watcher missing": func() error {
			_, err := c.CreateWatcher(ctx, connect.NewRequest(&fspb.CreateWatcherRequest{Path: dir + "/missing"}))
			return err
		},
	}
	want := map[string]connect.Code{
		"stat missing": connect.CodeNotFound, "stat ~other": connect.CodeInvalidArgument,
		"list missing": connect.CodeNotFound, "list file": connect.CodeInvalidArgument,
		"list loop": connect.CodeFailedPrecondition, "mkdir exists": connect.CodeAlreadyExists,
		"mkdir on file": connect.CodeInvalidArgument, "mkdir under file": connect.CodeInternal,
		"move missing": connect.CodeNotFound, "move cross-device": connect.CodeInternal,
		"remove missing": 0, "unknown user": connect.CodeUnauthenticated,
		"watcher events unknown": connect.CodeNotFound, "remove watcher unknown": connect.CodeNotFound,
		"create watcher on file": connect.CodeInvalidArgument, "create watcher missing": connect.CodeNotFound,
	}
	for name, fn := range call {
		if got := fsCode(fn()); got != want[name] {
			t.Errorf("%s: code %v, want %v", name, got, want[name])
		}
	}
	_, err := fsStat(t, c, dir+"/missing")
	if ce := new(connect.Error); !errors.As(err, &ce) || ce.Message() != "file not found: "+dir+"/missing" {
		t.Errorf("stat message: %v", err)
	}
}

// Paths resolve per PROTOCOL.md 3.0: relative to the user's home, "~"
// expanded, empty means the default workdir or else home.
func TestFilesystemPathResolution(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Filesystem(testenv.Codecs[0])
	name := fmt.Sprintf("envd-fs-test-%d", os.Getpid())
	t.Cleanup(func() { _ = os.RemoveAll("/root/" + name) })
	if err := os.MkdirAll("/root/"+name+"/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		name + "/sub":           "/root/" + name + "/sub",
		"~/" + name:             "/root/" + name,
		"~":                     "/root",
		"":                      "/root",
		name + "/sub/../sub/./": "/root/" + name + "/sub",
	} {
		st, err := fsStat(t, c, in)
		if err != nil || st.Path != want {
			t.Errorf("Stat(%q) = %v, %v; want path %s", in, st.GetPath(), err, want)
		}
	}
	// Ownership follows the Basic user even for relative paths.
	mk, err := c.MakeDir(fsCtx(t), testenv.AsUser(connect.NewRequest(&fspb.MakeDirRequest{Path: "/root/" + name + "/owned"}), "www-data"))
	if err != nil || mk.Msg.Entry.Owner != "www-data" {
		t.Fatalf("MakeDir as www-data: %v %v", mk, err)
	}
}

// Symlinks: the target's type plus symlink_target; a listed symlinked
// directory re-bases paths on the requested path (E33).
func TestFilesystemSymlinkEntries(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Filesystem(testenv.Codecs[1])
	dir, _ := filepath.EvalSymlinks(t.TempDir())
	_ = os.MkdirAll(dir+"/real/inner", 0o755)
	_ = os.Symlink(dir+"/real", dir+"/link")
	st, err := fsStat(t, c, dir+"/link")
	if err != nil || st.Type != fspb.FileType_FILE_TYPE_DIRECTORY || st.GetSymlinkTarget() != dir+"/real" ||
		!strings.HasPrefix(st.Permissions, "L") {
		t.Fatalf("symlink stat %v %v", st, err)
	}
	ls, err := c.ListDir(fsCtx(t), connect.NewRequest(&fspb.ListDirRequest{Path: dir + "/link"}))
	if err != nil || len(ls.Msg.Entries) != 1 || ls.Msg.Entries[0].Path != dir+"/link/inner" {
		t.Fatalf("list via symlink: %v %v", ls, err)
	}
}

// Legacy connect-python clients get name, type and path only, plus the
// marker header (PROTOCOL.md 3.5).
func TestFilesystemLegacyPythonTrimming(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Filesystem(testenv.Codecs[1])
	dir := t.TempDir()
	_ = os.WriteFile(dir+"/f", []byte("abc"), 0o644)
	req := connect.NewRequest(&fspb.ListDirRequest{Path: dir})
	req.Header().Set("User-Agent", "connect-python")
	resp, err := c.ListDir(fsCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header().Get("X-E2B-Legacy-SDK") != "true" {
		t.Error("legacy header missing")
	}
	en := resp.Msg.Entries[0]
	if en.Name != "f" || en.Path != dir+"/f" || en.Type != fspb.FileType_FILE_TYPE_FILE ||
		en.Size != 0 || en.Permissions != "" || en.Owner != "" || en.ModifiedTime != nil || en.Mode != 0 {
		t.Fatalf("legacy entry not trimmed: %v", en)
	}
	resp2, err := c.ListDir(fsCtx(t), connect.NewRequest(&fspb.ListDirRequest{Path: dir}))
	if err != nil || resp2.Header().Get("X-E2B-Legacy-SDK") != "" || resp2.Msg.Entries[0].Size != 3 {
		t.Fatalf("normal client trimmed: %v %v", resp2, err)
	}
}
