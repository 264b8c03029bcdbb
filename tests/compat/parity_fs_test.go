package compat

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

// Codec parity for all nine filesystem RPCs, the WatchDir stream included.
// Every variant works on the same absolute paths, rebuilt before each run
// with fixed modification times, so entries compare exactly (times are
// cleared only for entries the scenario itself creates).
func TestCodecParityFilesystem(t *testing.T) {
	forFlavours(t, func(t *testing.T, flavor string) {
		e := testenv.Start(t, testenv.Options{Args: []string{"--flavor", flavor}})
		base := filepath.Join(t.TempDir(), "tree")
		for _, sc := range []struct {
			name string
			fn   func(t *testing.T, c filesystemconnect.FilesystemClient, base string, tr *transcript)
		}{
			{"Stat", parityStat},
			{"ListDir", parityListDir},
			{"MakeDir+Move+Remove", parityMutations},
			{"WatchDir", parityWatchDir},
			{"CreateWatcher+GetWatcherEvents+RemoveWatcher", parityPolling},
		} {
			t.Run(sc.name, func(t *testing.T) {
				parity(t, e, func(t *testing.T, v variant) *transcript {
					buildTree(t, base)
					tr := &transcript{}
					sc.fn(t, v.filesystem(e), base, tr)
					return tr
				})
			})
		}
	})
}

var fixedTime = time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)

// buildTree makes base/{a/b/, a/x.txt, f.txt, link -> a, dangling -> missing}
// afresh, with fixed times and, where the filesystem allows, one metadata
// xattr on f.txt (EntryInfo.metadata).
func buildTree(t *testing.T, base string) {
	t.Helper()
	if err := os.RemoveAll(base); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(base, "a", "b"), 0o755))
	must(os.WriteFile(filepath.Join(base, "a", "x.txt"), []byte("x"), 0o600))
	must(os.WriteFile(filepath.Join(base, "f.txt"), []byte("hello"), 0o644))
	must(os.Symlink(filepath.Join(base, "a"), filepath.Join(base, "link")))
	must(os.Symlink(filepath.Join(base, "missing"), filepath.Join(base, "dangling")))
	_ = unix.Setxattr(filepath.Join(base, "f.txt"), "user.e2b.origin", []byte("compat"), 0)
	ts := []unix.Timespec{unix.NsecToTimespec(fixedTime.UnixNano()), unix.NsecToTimespec(fixedTime.UnixNano())}
	for _, p := range []string{"a/b", "a/x.txt", "a", "f.txt", "link", "dangling", "."} {
		must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(base, p), ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func parityStat(t *testing.T, c filesystemconnect.FilesystemClient, base string, tr *transcript) {
	ctx := ctxFor(t, 10*time.Second)
	for _, p := range []string{".", "f.txt", "a", "a/x.txt", "link", "dangling", "missing"} {
		r, err := c.Stat(ctx, connect.NewRequest(&fspb.StatRequest{Path: filepath.Join(base, p)}))
		tr.add("Stat "+p, msgOf(r), err)
	}
	r, err := c.Stat(ctx, connect.NewRequest(&fspb.StatRequest{Path: "~no-such-user-envd/x"}))
	tr.add("Stat ~user", msgOf(r), err)
}

func parityListDir(t *testing.T, c filesystemconnect.FilesystemClient, base string, tr *transcript) {
	ctx := ctxFor(t, 10*time.Second)
	for _, x := range []struct {
		path  string
		depth uint32
	}{{".", 0}, {".", 1}, {".", 2}, {".", 5}, {"link", 1}, {"f.txt", 1}, {"missing", 1}} {
		r, err := c.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: filepath.Join(base, x.path), Depth: x.depth}))
		tr.add("ListDir "+x.path, msgOf(r), err)
	}
}

func parityMutations(t *testing.T, c filesystemconnect.FilesystemClient, base string, tr *transcript) {
	ctx := ctxFor(t, 10*time.Second)
	for _, p := range []string{"new/deep", "a", "f.txt", "f.txt/under"} {
		r, err := c.MakeDir(ctx, connect.NewRequest(&fspb.MakeDirRequest{Path: filepath.Join(base, p)}))
		if r != nil {
			clearTimes(r.Msg.GetEntry())
		}
		tr.add("MakeDir "+p, msgOf(r), err)
	}
	for _, x := range [][2]string{{"f.txt", "moved/g.txt"}, {"ghost", "x"}, {"a", "a/b/inside"}} {
		r, err := c.Move(ctx, connect.NewRequest(&fspb.MoveRequest{Source: filepath.Join(base, x[0]), Destination: filepath.Join(base, x[1])}))
		tr.add("Move "+x[0], msgOf(r), err)
	}
	for _, p := range []string{"a", "a", "link", "moved/g.txt"} {
		r, err := c.Remove(ctx, connect.NewRequest(&fspb.RemoveRequest{Path: filepath.Join(base, p)}))
		tr.add("Remove "+p, msgOf(r), err)
	}
	r, err := c.ListDir(ctx, connect.NewRequest(&fspb.ListDirRequest{Path: base, Depth: 3}))
	if r != nil {
		for _, e := range r.Msg.GetEntries() {
			clearTimes(e) // directories the scenario changed
		}
	}
	tr.add("ListDir after", msgOf(r), err)
}

// fsOps are the same changes for both watcher kinds; each is awaited (the
// named event must be seen) before the next runs, so every entry is stat-ed
// in a known state.
func fsOps(t *testing.T, dir string) []struct {
	do   func() error
	name string
	typ  fspb.EventType
} {
	p := filepath.Join(dir, "w.txt")
	return []struct {
		do   func() error
		name string
		typ  fspb.EventType
	}{
		{func() error { f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); f.Close(); return err }, "w.txt", fspb.EventType_EVENT_TYPE_CREATE},
		{func() error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				_, err = f.Write([]byte("data"))
				f.Close()
			}
			return err
		}, "w.txt", fspb.EventType_EVENT_TYPE_WRITE},
		{func() error { return os.Chmod(p, 0o600) }, "w.txt", fspb.EventType_EVENT_TYPE_CHMOD},
		{func() error { return os.Mkdir(filepath.Join(dir, "sub"), 0o755) }, "sub", fspb.EventType_EVENT_TYPE_CREATE},
		{func() error { return os.Rename(p, filepath.Join(dir, "v.txt")) }, "v.txt", fspb.EventType_EVENT_TYPE_CREATE},
		{func() error { return os.Remove(filepath.Join(dir, "v.txt")) }, "v.txt", fspb.EventType_EVENT_TYPE_REMOVE},
	}
}

func normFsEvent(ev *fspb.FilesystemEvent) *fspb.FilesystemEvent {
	ev = proto.Clone(ev).(*fspb.FilesystemEvent)
	clearTimes(ev.GetEntry())
	return ev
}

func parityWatchDir(t *testing.T, c filesystemconnect.FilesystemClient, base string, tr *transcript) {
	dir := filepath.Join(base, "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.WatchDir(ctx, connect.NewRequest(&fspb.WatchDirRequest{Path: dir, Recursive: true, IncludeEntry: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next := func() *fspb.WatchDirResponse {
		for s.Receive() {
			if s.Msg().GetKeepalive() == nil {
				return s.Msg()
			}
		}
		t.Fatalf("watch stream ended: %v", s.Err())
		return nil
	}
	first := next()
	if first.GetStart() == nil {
		t.Fatalf("first WatchDir message is not start: %v", first)
	}
	tr.add("WatchDir start", first, nil)
	for _, op := range fsOps(t, dir) {
		if err := op.do(); err != nil {
			t.Fatal(err)
		}
		for {
			ev := next().GetFilesystem()
			tr.add("WatchDir event", &fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Filesystem{Filesystem: normFsEvent(ev)}}, nil)
			if ev.GetName() == op.name && ev.GetType() == op.typ {
				break
			}
		}
	}
	for _, p := range []string{"missing", "f.txt"} {
		s, err := c.WatchDir(ctxFor(t, 10*time.Second), connect.NewRequest(&fspb.WatchDirRequest{Path: filepath.Join(base, p)}))
		if err != nil {
			t.Fatal(err)
		}
		for s.Receive() {
			tr.add("WatchDir "+p, s.Msg(), nil)
		}
		tr.add("WatchDir "+p+" (end of stream)", nil, s.Err())
	}
}

func parityPolling(t *testing.T, c filesystemconnect.FilesystemClient, base string, tr *transcript) {
	dir := filepath.Join(base, "a", "b")
	ctx := ctxFor(t, 20*time.Second)
	cw, err := c.CreateWatcher(ctx, connect.NewRequest(&fspb.CreateWatcherRequest{Path: dir, Recursive: true, IncludeEntry: true}))
	if err != nil {
		t.Fatal(err)
	}
	id := cw.Msg.GetWatcherId()
	if id == "" {
		t.Fatal("empty watcher id")
	}
	tr.add("CreateWatcher", &fspb.CreateWatcherResponse{}, nil) // ids legitimately differ
	tr.scrub = append(tr.scrub, id)
	// Batching depends on timing; the merged event list does not.
	all := &fspb.GetWatcherEventsResponse{}
	for _, op := range fsOps(t, dir) {
		if err := op.do(); err != nil {
			t.Fatal(err)
		}
		for seen := false; !seen; {
			r, err := c.GetWatcherEvents(ctx, connect.NewRequest(&fspb.GetWatcherEventsRequest{WatcherId: id}))
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range r.Msg.GetEvents() {
				all.Events = append(all.Events, normFsEvent(ev))
				seen = seen || (ev.GetName() == op.name && ev.GetType() == op.typ)
			}
			if !seen {
				// A polling API has no event to await: poll as its clients do.
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	tr.add("GetWatcherEvents (merged)", all, nil)
	rw, err := c.RemoveWatcher(ctx, connect.NewRequest(&fspb.RemoveWatcherRequest{WatcherId: id}))
	tr.add("RemoveWatcher", msgOf(rw), err)
	ge, err := c.GetWatcherEvents(ctx, connect.NewRequest(&fspb.GetWatcherEventsRequest{WatcherId: id}))
	tr.add("GetWatcherEvents removed id", msgOf(ge), err)
	rw, err = c.RemoveWatcher(ctx, connect.NewRequest(&fspb.RemoveWatcherRequest{WatcherId: id}))
	tr.add("RemoveWatcher removed id", msgOf(rw), err)
	for _, p := range []string{"missing", "f.txt"} {
		cw, err := c.CreateWatcher(ctx, connect.NewRequest(&fspb.CreateWatcherRequest{Path: filepath.Join(base, p)}))
		tr.add("CreateWatcher "+p, msgOf(cw), err)
	}
}
