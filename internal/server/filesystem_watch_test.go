package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	fspb "github.com/sandboxd/envd/internal/gen/filesystem"
	"github.com/sandboxd/envd/internal/gen/filesystem/filesystemconnect"
	"github.com/sandboxd/envd/internal/testenv"
)

type fsWatchStream = *connect.ServerStreamForClient[fspb.WatchDirResponse]

// fsOpenWatch opens a WatchDir stream and checks that start comes first.
func fsOpenWatch(t testing.TB, ctx context.Context, c filesystemconnect.FilesystemClient, req *fspb.WatchDirRequest, hdr ...string) fsWatchStream {
	t.Helper()
	r := connect.NewRequest(req)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header().Set(hdr[i], hdr[i+1])
	}
	s, err := c.WatchDir(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if !s.Receive() {
		t.Fatalf("no start event: %v", s.Err())
	}
	if s.Msg().GetStart() == nil {
		t.Fatalf("first message is not start: %v", s.Msg())
	}
	return s
}

// fsAwait receives until an event named name of type typ arrives and
// returns everything received.
func fsAwait(t testing.TB, s fsWatchStream, name string, typ fspb.EventType) []*fspb.FilesystemEvent {
	t.Helper()
	var got []*fspb.FilesystemEvent
	for s.Receive() {
		if ev := s.Msg().GetFilesystem(); ev != nil {
			got = append(got, ev)
			if ev.Name == name && ev.Type == typ {
				return got
			}
		}
	}
	t.Fatalf("stream ended (%v) before %s %v; got %v", s.Err(), name, typ, got)
	return nil
}

func TestWatchDirStreamsEventsOverEveryCodec(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	for _, codec := range testenv.Codecs {
		t.Run(codec.Name, func(t *testing.T) {
			dir := t.TempDir()
			s := fsOpenWatch(t, fsCtx(t), e.Filesystem(codec), &fspb.WatchDirRequest{Path: dir, Recursive: true, IncludeEntry: true})
			_ = os.MkdirAll(dir+"/sub/deeper", 0o755)
			_ = os.WriteFile(dir+"/sub/deeper/f.txt", []byte("hi"), 0o644)
			got := fsAwait(t, s, "sub/deeper/f.txt", fspb.EventType_EVENT_TYPE_CREATE)
			last := got[len(got)-1]
			if last.Entry != nil && (last.Entry.Path != dir+"/sub/deeper/f.txt" || last.Entry.Name != "f.txt") {
				t.Fatalf("entry %v", last.Entry)
			}
			_ = os.Remove(dir + "/sub/deeper/f.txt")
			for _, ev := range fsAwait(t, s, "sub/deeper/f.txt", fspb.EventType_EVENT_TYPE_REMOVE) {
				if ev.Type == fspb.EventType_EVENT_TYPE_REMOVE && ev.Entry != nil {
					t.Fatalf("REMOVE with entry: %v", ev)
				}
			}
		})
	}
}

// E31 through the wire: 100 × (mkdir, then a file in it at once) under a
// recursive watch; every file's CREATE arrives.
func TestWatchDirRecursiveRaceLosesNoFile(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	s := fsOpenWatch(t, fsCtx(t), e.Filesystem(testenv.Codecs[1]), &fspb.WatchDirRequest{Path: dir, Recursive: true})
	want := map[string]bool{}
	for i := range 100 {
		d := fmt.Sprintf("%s/d%03d", dir, i)
		_ = os.Mkdir(d, 0o755)
		_ = os.WriteFile(d+"/file", nil, 0o644)
		want[fmt.Sprintf("d%03d/file", i)] = true
	}
	for len(want) > 0 && s.Receive() {
		if ev := s.Msg().GetFilesystem(); ev != nil && ev.Type == fspb.EventType_EVENT_TYPE_CREATE {
			delete(want, ev.Name)
		}
	}
	if len(want) > 0 {
		t.Fatalf("missing %d file events (stream err %v)", len(want), s.Err())
	}
}

// E43: Keepalive-Ping-Interval of 0, negative or garbage must not crash
// envd; the stream works with the default interval. A valid small value
// yields keepalives.
func TestWatchDirKeepaliveHeaderNeverCrashes(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Filesystem(testenv.Codecs[1])
	for _, v := range []string{"0", "-5", "abc", "99999999999999999999", "1e9"} {
		dir := t.TempDir()
		s := fsOpenWatch(t, fsCtx(t), c, &fspb.WatchDirRequest{Path: dir}, "Keepalive-Ping-Interval", v)
		_ = os.WriteFile(dir+"/f", nil, 0o644)
		fsAwait(t, s, "f", fspb.EventType_EVENT_TYPE_CREATE)
	}
	dir := t.TempDir()
	s := fsOpenWatch(t, fsCtx(t), c, &fspb.WatchDirRequest{Path: dir}, "Keepalive-Ping-Interval", "1")
	start := time.Now()
	if !s.Receive() || s.Msg().GetKeepalive() == nil {
		t.Fatalf("want a keepalive, got %v %v", s.Msg(), s.Err())
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("keepalive after %v, want about 1s", d)
	}
	if resp, body := get(t, e.HTTP, e.URL+"/health"); resp.StatusCode/100 != 2 {
		t.Fatalf("envd unhealthy after odd headers: %d %s", resp.StatusCode, body)
	}
}

// Removing the watched directory ends the stream without an error.
func TestWatchDirEndsCleanlyWhenDirectoryRemoved(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := filepath.Join(t.TempDir(), "watched")
	_ = os.Mkdir(dir, 0o755)
	s := fsOpenWatch(t, fsCtx(t), e.Filesystem(testenv.Codecs[0]), &fspb.WatchDirRequest{Path: dir})
	_ = os.Remove(dir)
	var sawRemove bool
	for s.Receive() {
		if ev := s.Msg().GetFilesystem(); ev != nil && ev.Name == "." && ev.Type == fspb.EventType_EVENT_TYPE_REMOVE {
			sawRemove = true
		}
	}
	if s.Err() != nil || !sawRemove {
		t.Fatalf("stream end: err %v, saw REMOVE . %v", s.Err(), sawRemove)
	}
}

func TestWatchDirPreconditionErrorsEndTheStream(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Filesystem(testenv.Codecs[1])
	dir := t.TempDir()
	_ = os.WriteFile(dir+"/f", nil, 0o644)
	for path, want := range map[string]connect.Code{
		dir + "/missing": connect.CodeNotFound,
		dir + "/f":       connect.CodeInvalidArgument,
		"~nobody":        connect.CodeInvalidArgument,
	} {
		s, err := c.WatchDir(fsCtx(t), connect.NewRequest(&fspb.WatchDirRequest{Path: path}))
		if err == nil {
			for s.Receive() {
				t.Errorf("%s: unexpected message %v", path, s.Msg())
			}
			err = s.Err()
			_ = s.Close()
		}
		if fsCode(err) != want {
			t.Errorf("%s: %v, want %v", path, err, want)
		}
	}
}

// inotifyFDs counts this process's inotify descriptors (the daemon runs
// in-process).
func inotifyFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// A stream's watcher is released when the client goes away: no inotify
// descriptor outlives its stream.
func TestWatchDirReleasesWatcherWhenClientCancels(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Filesystem(testenv.Codecs[2])
	dir := t.TempDir()
	before := inotifyFDs(t)
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		fsOpenWatch(t, ctx, c, &fspb.WatchDirRequest{Path: dir, Recursive: true})
		cancel()
	}
	deadline := time.Now().Add(10 * time.Second)
	for inotifyFDs(t) != before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the server notices the cancel asynchronously
	}
	if n := inotifyFDs(t); n != before {
		t.Fatalf("inotify descriptors: %d before, %d after 50 canceled streams", before, n)
	}
}

// E30: a polling watcher outlives the CreateWatcher request; events after
// it returned are delivered, drained, and RemoveWatcher ends it.
func TestPollingWatcherOutlivesItsRequest(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	c := e.Filesystem(testenv.Codecs[1])
	dir := t.TempDir()
	reqCtx, cancel := context.WithCancel(context.Background())
	cr, err := c.CreateWatcher(reqCtx, connect.NewRequest(&fspb.CreateWatcherRequest{Path: dir, Recursive: true, IncludeEntry: true}))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	id := cr.Msg.WatcherId
	if len(id) != 21 || id[0] != 'w' {
		t.Errorf("watcher id %q", id)
	}
	_ = os.Mkdir(dir+"/late", 0o755)
	_ = os.WriteFile(dir+"/late/f", []byte("x"), 0o644)
	var got []*fspb.FilesystemEvent
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(fmt.Sprint(got), "late/f") && time.Now().Before(deadline) {
		r, err := c.GetWatcherEvents(fsCtx(t), connect.NewRequest(&fspb.GetWatcherEventsRequest{WatcherId: id}))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Msg.Events...)
		time.Sleep(10 * time.Millisecond) // polling is the API under test
	}
	if len(got) == 0 || got[0].Name != "late" || got[0].Type != fspb.EventType_EVENT_TYPE_CREATE || got[0].Entry == nil {
		t.Fatalf("events %v", got)
	}
	if !strings.Contains(fmt.Sprint(got), "late/f") {
		t.Fatalf("late/f never reported: %v", got)
	}
	if _, err := c.RemoveWatcher(fsCtx(t), connect.NewRequest(&fspb.RemoveWatcherRequest{WatcherId: id})); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetWatcherEvents(fsCtx(t), connect.NewRequest(&fspb.GetWatcherEventsRequest{WatcherId: id}))
	if fsCode(err) != connect.CodeNotFound {
		t.Fatalf("after remove: %v", err)
	}
}

func TestWatchDirLegacyTrimsEvents(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	dir := t.TempDir()
	// connect-go adds its own User-Agent to streams; set exactly one value,
	// as connect-python does.
	hc := &http.Client{Transport: fsUserAgent{e.HTTP.Transport, "connect-python"}}
	c := filesystemconnect.NewFilesystemClient(hc, e.URL, connect.WithProtoJSON())
	s := fsOpenWatch(t, fsCtx(t), c, &fspb.WatchDirRequest{Path: dir, IncludeEntry: true})
	if s.ResponseHeader().Get("X-E2B-Legacy-SDK") != "true" {
		t.Error("legacy header missing on the stream")
	}
	_ = os.WriteFile(dir+"/f", nil, 0o644)
	for _, ev := range fsAwait(t, s, "f", fspb.EventType_EVENT_TYPE_CREATE) {
		if ev.Entry != nil {
			t.Fatalf("legacy event carries an entry: %v", ev)
		}
	}
}

type fsUserAgent struct {
	rt http.RoundTripper
	ua string
}

func (u fsUserAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return u.rt.RoundTrip(r)
}
