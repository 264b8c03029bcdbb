package filesystem

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func newService(t testing.TB, o Options) *Service {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func startWatch(t testing.TB, s *Service, o WatchOptions) *Watch {
	t.Helper()
	w, err := s.Watch(o)
	if err != nil {
		t.Fatalf("watch %s: %v", o.Path, err)
	}
	t.Cleanup(w.Close)
	return w
}

// awaitEvents reads events until done says the collection is complete.
func awaitEvents(t testing.TB, w *Watch, done func([]Event) bool) []Event {
	t.Helper()
	var got []Event
	timeout := time.After(15 * time.Second)
	for !done(got) {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended (err %v) before the expected events; got %v", w.Err(), got)
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("timed out; got %d events: %v", len(got), got)
		}
	}
	return got
}

func has(evs []Event, name string, typ EventType) bool {
	return slices.ContainsFunc(evs, func(e Event) bool { return e.Name == name && e.Type == typ })
}

func hasAll(want ...Event) func([]Event) bool {
	return func(got []Event) bool {
		for _, w := range want {
			if !has(got, w.Name, w.Type) {
				return false
			}
		}
		return true
	}
}

func TestWatchReportsEachEventTypeWithRelativeNames(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{})
	w := startWatch(t, s, WatchOptions{Path: dir})
	f := filepath.Join(dir, "a.txt")
	must(t, os.WriteFile(f, []byte("x"), 0o644))
	must(t, os.Chmod(f, 0o600))
	must(t, os.Rename(f, filepath.Join(dir, "b.txt")))
	must(t, os.Remove(filepath.Join(dir, "b.txt")))
	got := awaitEvents(t, w, hasAll(Event{Name: "b.txt", Type: EventRemove}))
	want := []Event{{Name: "a.txt", Type: EventCreate}, {Name: "a.txt", Type: EventWrite},
		{Name: "a.txt", Type: EventChmod}, {Name: "a.txt", Type: EventRename},
		{Name: "b.txt", Type: EventCreate}, {Name: "b.txt", Type: EventRemove}}
	// Order: rename shows as RENAME old, then CREATE new (PROTOCOL.md 3.4).
	i := 0
	for _, ev := range got {
		if i < len(want) && ev.Name == want[i].Name && ev.Type == want[i].Type {
			i++
		}
		if ev.Entry != nil {
			t.Errorf("entry set without include_entry: %+v", ev)
		}
	}
	if i != len(want) {
		t.Fatalf("events out of order or missing:\n got %v\nwant %v", got, want)
	}
}

func TestTypesOfSplitsMultiFlagEventsInSpecOrder(t *testing.T) {
	all := uint32(0xFFF)
	got := typesOf(all)
	want := []EventType{EventCreate, EventRename, EventChmod, EventWrite, EventRemove}
	if !slices.Equal(got, want) {
		t.Fatalf("typesOf(all) = %v, want %v", got, want)
	}
}

// E31: directories created after the watch started, and files created in
// them at once, are all reported. 100 rounds of mkdir + immediate create.
func TestRecursiveWatchMissesNoFileInNewDirectories(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{})
	w := startWatch(t, s, WatchOptions{Path: dir, Recursive: true})
	var want []Event
	for i := range 100 {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", i))
		must(t, os.Mkdir(sub, 0o755))
		must(t, os.WriteFile(filepath.Join(sub, "f"), nil, 0o644))
		want = append(want, Event{Name: fmt.Sprintf("d%03d/f", i), Type: EventCreate})
	}
	awaitEvents(t, w, hasAll(want...))
}

// E31: mkdir -p a/b/c && touch a/b/c/f under a recursive watch reports
// every level and the file, and later events deep inside carry full names.
func TestRecursiveWatchSeesMkdirPChains(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{})
	w := startWatch(t, s, WatchOptions{Path: dir, Recursive: true})
	must(t, os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "a/b/c/f"), nil, 0o644))
	awaitEvents(t, w, hasAll(Event{Name: "a", Type: EventCreate}, Event{Name: "a/b", Type: EventCreate},
		Event{Name: "a/b/c", Type: EventCreate}, Event{Name: "a/b/c/f", Type: EventCreate}))
	must(t, os.WriteFile(filepath.Join(dir, "a/b/c/g"), []byte("1"), 0o644))
	awaitEvents(t, w, hasAll(Event{Name: "a/b/c/g", Type: EventWrite}))
}

func TestRecursiveWatchWatchesExistingSubdirectories(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "x/y"), 0o755))
	s := newService(t, Options{})
	w := startWatch(t, s, WatchOptions{Path: dir, Recursive: true})
	must(t, os.WriteFile(filepath.Join(dir, "x/y/z"), nil, 0o644))
	got := awaitEvents(t, w, hasAll(Event{Name: "x/y/z", Type: EventCreate}))
	if has(got, "x", EventCreate) {
		t.Errorf("pre-existing directories must not be reported: %v", got)
	}
}

func TestNonRecursiveWatchIgnoresSubdirectoryContents(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	s := newService(t, Options{})
	w := startWatch(t, s, WatchOptions{Path: dir})
	must(t, os.WriteFile(filepath.Join(dir, "sub/inner"), nil, 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "new"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "new/inner"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644))
	got := awaitEvents(t, w, hasAll(Event{Name: "new", Type: EventCreate}, Event{Name: "marker", Type: EventCreate}))
	for _, ev := range got {
		if strings.Contains(ev.Name, "/") {
			t.Fatalf("non-recursive watch reported %v", ev)
		}
	}
}

// A directory renamed inside the tree keeps being watched under its new
// name; one moved out of the tree stops producing events.
func TestRecursiveWatchFollowsDirectoryMoves(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "old/deep"), 0o755))
	s := newService(t, Options{})
	w := startWatch(t, s, WatchOptions{Path: dir, Recursive: true})
	must(t, os.Rename(filepath.Join(dir, "old"), filepath.Join(dir, "new")))
	must(t, os.WriteFile(filepath.Join(dir, "new/deep/f"), nil, 0o644))
	got := awaitEvents(t, w, hasAll(Event{Name: "old", Type: EventRename}, Event{Name: "new", Type: EventCreate},
		Event{Name: "new/deep/f", Type: EventCreate}))
	if has(got, "old/deep/f", EventCreate) {
		t.Fatalf("stale name after rename: %v", got)
	}
	must(t, os.Rename(filepath.Join(dir, "new"), filepath.Join(outside, "gone")))
	must(t, os.WriteFile(filepath.Join(outside, "gone/deep/g"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "marker"), nil, 0o644))
	got = awaitEvents(t, w, hasAll(Event{Name: "marker", Type: EventCreate}))
	for _, ev := range got {
		if strings.HasSuffix(ev.Name, "/g") {
			t.Fatalf("event from a directory moved out of the tree: %v", got)
		}
	}
}

func TestIncludeEntryOnlyForCreateWriteChmod(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{})
	w := startWatch(t, s, WatchOptions{Path: dir, IncludeEntry: true})
	f := filepath.Join(dir, "e.txt")
	must(t, os.WriteFile(f, []byte("hello"), 0o640))
	must(t, os.Remove(f))
	got := awaitEvents(t, w, hasAll(Event{Name: "e.txt", Type: EventRemove}))
	for _, ev := range got {
		switch ev.Type {
		case EventRemove, EventRename:
			if ev.Entry != nil {
				t.Errorf("%v carries an entry", ev)
			}
		case EventCreate:
			// The file may already be gone when the event is processed:
			// then there is no entry, and no error.
			if ev.Entry != nil && (ev.Entry.Name != "e.txt" || ev.Entry.Path != f || ev.Entry.Type != TypeFile) {
				t.Errorf("bad entry %+v", *ev.Entry)
			}
		}
	}
	// An entry that still exists is attached.
	must(t, os.WriteFile(f, []byte("hello"), 0o640))
	got = awaitEvents(t, w, hasAll(Event{Name: "e.txt", Type: EventWrite}))
	last := got[len(got)-1]
	if last.Entry == nil || last.Entry.Size != 5 || last.Entry.Mode != 0o640 {
		t.Fatalf("write event entry = %+v", last.Entry)
	}
}

// Removing the watched directory reports REMOVE "." and ends the watch
// without an error.
func TestRemovingWatchedDirectoryEndsWatchCleanly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w")
	must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	s := newService(t, Options{})
	w := startWatch(t, s, WatchOptions{Path: dir, Recursive: true})
	must(t, os.RemoveAll(dir))
	var got []Event
	for ev := range w.Events() {
		got = append(got, ev)
	}
	if w.Err() != nil {
		t.Fatalf("watch ended with %v", w.Err())
	}
	if !has(got, ".", EventRemove) || !has(got, "sub", EventRemove) {
		t.Fatalf("events %v", got)
	}
}

func TestWatchPreconditions(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	must(t, os.WriteFile(file, nil, 0o644))
	must(t, os.Symlink(dir, filepath.Join(dir, "link")))
	s := newService(t, Options{})
	if _, err := s.Watch(WatchOptions{Path: filepath.Join(dir, "missing")}); kindName(err) != "not found" {
		t.Errorf("missing: %v", err)
	}
	if _, err := s.Watch(WatchOptions{Path: file}); kindName(err) != "invalid argument" {
		t.Errorf("file: %v", err)
	}
	if _, err := s.CreateWatcher(WatchOptions{Path: file}); kindName(err) != "invalid argument" {
		t.Errorf("polling on a file: %v", err)
	}
	// A symlink to a directory is accepted and events are named relative
	// to it.
	w := startWatch(t, s, WatchOptions{Path: filepath.Join(dir, "link")})
	must(t, os.WriteFile(filepath.Join(dir, "g"), nil, 0o644))
	awaitEvents(t, w, hasAll(Event{Name: "g", Type: EventCreate}))
}

func TestNetworkMagicsMatchSpec(t *testing.T) {
	for _, m := range []uint32{0x6969, 0xFF534D42, 0x517B, 0xFE534D42, 0x65735546} {
		if _, ok := networkMagics[m]; !ok {
			t.Errorf("magic %#x not refused", m)
		}
	}
	if len(networkMagics) != 5 {
		t.Errorf("unexpected magics: %v", networkMagics)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
