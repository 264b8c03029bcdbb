package filesystem

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/errs"
)

func kindName(err error) string {
	if err == nil {
		return "ok"
	}
	if k := errs.Kind(err); k != nil {
		return k.Error()
	}
	return "internal"
}

// pollUntil polls a watcher until done accepts the events gathered so far.
func pollUntil(t testing.TB, s *Service, id string, done func([]Event) bool) []Event {
	t.Helper()
	var got []Event
	deadline := time.Now().Add(15 * time.Second)
	for !done(got) {
		evs, err := s.WatcherEvents(id)
		if err != nil {
			t.Fatalf("GetWatcherEvents: %v (so far %v)", err, got)
		}
		got = append(got, evs...)
		if time.Now().After(deadline) {
			t.Fatalf("timed out; got %v", got)
		}
		if len(evs) == 0 {
			time.Sleep(5 * time.Millisecond) // polling is the API under test
		}
	}
	return got
}

func TestPollingWatcherDrainsEventsAndRemoves(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{})
	id, err := s.CreateWatcher(WatchOptions{Path: dir, Recursive: true, IncludeEntry: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 21 || id[0] != 'w' || strings.Trim(id[1:], "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		t.Errorf("watcher id %q is not w + 20 [a-z0-9]", id)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "a/b"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "a/b/f"), nil, 0o644))
	// Only the CREATE is certain while a/b's watch is being added; once it
	// is reported, later writes are seen.
	pollUntil(t, s, id, func(e []Event) bool { return has(e, "a/b/f", EventCreate) })
	must(t, os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("12"), 0o644))
	// Truncation and the write are separate WRITE events; entries are
	// looked up when processed, so wait for one that saw both bytes.
	pollUntil(t, s, id, func(e []Event) bool {
		return slices.ContainsFunc(e, func(ev Event) bool {
			return ev.Name == "a/b/f" && ev.Type == EventWrite && ev.Entry != nil && ev.Entry.Size == 2
		})
	})
	if evs, err := s.WatcherEvents(id); err != nil || len(evs) != 0 {
		t.Fatalf("second poll must be drained: %v %v", evs, err)
	}
	must(t, s.RemoveWatcher(id))
	if _, err := s.WatcherEvents(id); kindName(err) != "not found" {
		t.Fatalf("events after remove: %v", err)
	}
	if err := s.RemoveWatcher(id); kindName(err) != "not found" {
		t.Fatalf("second remove: %v", err)
	}
}

// Cap on queued events per polling watcher: exactly MaxQueuedEvents fit;
// one more fails the watcher, and every later poll reports the overflow.
func TestPollingWatcherQueueCapFailsWatcher(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{MaxQueuedEvents: 8})
	id, err := s.CreateWatcher(WatchOptions{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 { // CREATE only: mkdir makes one event each
		must(t, os.Mkdir(filepath.Join(dir, fmt.Sprint(i)), 0o755))
	}
	// A second watcher on the same directory tells when the first has
	// processed everything: inotify delivers to both.
	probe := startWatch(t, s, WatchOptions{Path: dir})
	must(t, os.Mkdir(filepath.Join(dir, "last"), 0o755))
	awaitEvents(t, probe, hasAll(Event{Name: "last", Type: EventCreate}))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = s.WatcherEvents(id)
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
		// Refill past the cap: 9 more events without draining.
		for i := range 9 {
			_ = os.Mkdir(filepath.Join(dir, fmt.Sprintf("r%d", i)), 0o755)
			_ = os.Remove(filepath.Join(dir, fmt.Sprintf("r%d", i)))
		}
	}
	if err == nil || !strings.Contains(err.Error(), "more than 8 events") || kindName(err) != "internal" {
		t.Fatalf("overflow error = %v", err)
	}
	if _, err2 := s.WatcherEvents(id); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("later poll = %v, want the recorded error", err2)
	}
	must(t, s.RemoveWatcher(id))
}

func TestPollingWatcherAtExactlyTheCapKeepsEvents(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{MaxQueuedEvents: 8})
	id, err := s.CreateWatcher(WatchOptions{Path: dir})
	must(t, err)
	probe := startWatch(t, s, WatchOptions{Path: dir})
	for i := range 8 {
		must(t, os.Mkdir(filepath.Join(dir, fmt.Sprint(i)), 0o755))
	}
	awaitEvents(t, probe, hasAll(Event{Name: "7", Type: EventCreate}))
	got := pollUntil(t, s, id, func(e []Event) bool { return len(e) >= 8 })
	if len(got) != 8 {
		t.Fatalf("got %d events at the cap: %v", len(got), got)
	}
}

// Cap on watchers per daemon: MaxWatchers succeed, the next fails with a
// clear internal error, and closing one frees a slot.
func TestWatcherCapPerDaemon(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, Options{MaxWatchers: 3})
	w1 := startWatch(t, s, WatchOptions{Path: dir})
	startWatch(t, s, WatchOptions{Path: dir})
	id, err := s.CreateWatcher(WatchOptions{Path: dir})
	must(t, err)
	_, err = s.Watch(WatchOptions{Path: dir})
	if err == nil || kindName(err) != "internal" || !strings.Contains(err.Error(), "too many active watchers (limit 3)") {
		t.Fatalf("4th watch: %v", err)
	}
	if _, err := s.CreateWatcher(WatchOptions{Path: dir}); err == nil {
		t.Fatal("4th polling watcher accepted")
	}
	w1.Close()
	startWatch(t, s, WatchOptions{Path: dir})
	if _, err := s.Watch(WatchOptions{Path: dir}); err == nil {
		t.Fatal("cap not restored")
	}
	must(t, s.RemoveWatcher(id))
	startWatch(t, s, WatchOptions{Path: dir})
}

// A kernel queue overflow ends the watch with an error instead of
// silently dropping events. The queue limit is read at inotify_init, so
// the sysctl is lowered only around this watcher's creation.
func TestKernelQueueOverflowEndsWatchWithError(t *testing.T) {
	const knob = "/proc/sys/fs/inotify/max_queued_events"
	old, err := os.ReadFile(knob)
	if err != nil {
		t.Skip("no inotify sysctl:", err)
	}
	dir := t.TempDir()
	s := newService(t, Options{})
	if err := os.WriteFile(knob, []byte("16"), 0o644); err != nil {
		t.Skip("cannot lower max_queued_events:", err)
	}
	w, werr := s.Watch(WatchOptions{Path: dir})
	must(t, os.WriteFile(knob, old, 0o644))
	must(t, werr)
	defer w.Close()
	// Nobody reads: the stream buffer fills, the reader stops, the kernel
	// queue overflows.
	for i := range streamBuffer + 200 {
		must(t, os.Mkdir(filepath.Join(dir, fmt.Sprint(i)), 0o755))
	}
	n := 0
	for range w.Events() {
		n++
	}
	if w.Err() == nil || !strings.Contains(w.Err().Error(), "overflowed") {
		t.Fatalf("after %d events the watch ended with %v", n, w.Err())
	}
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// No inotify descriptor leaks: 1,000 watches opened and closed (streams
// and polling watchers, recursive) leave the descriptor count unchanged.
func TestThousandWatchesLeakNoDescriptors(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "a/b"), 0o755))
	s := newService(t, Options{})
	before := openFDs(t)
	for i := range 1000 {
		if i%2 == 0 {
			w, err := s.Watch(WatchOptions{Path: dir, Recursive: true})
			must(t, err)
			w.Close()
			continue
		}
		id, err := s.CreateWatcher(WatchOptions{Path: dir, Recursive: true})
		must(t, err)
		must(t, s.RemoveWatcher(id))
	}
	if after := openFDs(t); after != before {
		t.Fatalf("descriptors: %d before, %d after 1,000 watches", before, after)
	}
}

func TestCloseStopsEveryWatcher(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Options{})
	must(t, err)
	w, err := s.Watch(WatchOptions{Path: dir})
	must(t, err)
	id, err := s.CreateWatcher(WatchOptions{Path: dir})
	must(t, err)
	before := openFDs(t)
	must(t, s.Close())
	for range w.Events() {
	}
	if after := openFDs(t); after != before-2 {
		t.Fatalf("descriptors %d → %d after Close", before, after)
	}
	if _, err := s.WatcherEvents(id); err == nil {
		t.Error("polling watcher survived Close")
	}
	if _, err := s.Watch(WatchOptions{Path: dir}); err == nil {
		t.Error("watch accepted after Close")
	}
	w.Close() // the stream's owner still closes it: must not block or panic
}

// A polling watcher whose directory is removed stops cleanly: its last
// events stay readable, then polls return nothing and no error.
func TestPollingWatcherEndsCleanlyWhenDirectoryRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w")
	must(t, os.Mkdir(dir, 0o755))
	s := newService(t, Options{})
	id, err := s.CreateWatcher(WatchOptions{Path: dir})
	must(t, err)
	must(t, os.Remove(dir))
	pollUntil(t, s, id, func(e []Event) bool { return has(e, ".", EventRemove) })
	if evs, err := s.WatcherEvents(id); err != nil || len(evs) != 0 {
		t.Fatalf("after the end: %v %v", evs, err)
	}
	must(t, s.RemoveWatcher(id))
}
