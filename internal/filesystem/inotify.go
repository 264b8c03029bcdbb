package filesystem

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// EventType is a watcher event's type. The numbers are the wire enum's.
type EventType int32

// Event types, in the order one multi-flag inotify event is split into
// (PROTOCOL.md 3.4: CREATE, RENAME, CHMOD, WRITE, REMOVE).
const (
	EventCreate EventType = 1
	EventWrite  EventType = 2
	EventRemove EventType = 3
	EventRename EventType = 4
	EventChmod  EventType = 5
)

// Event is one filesystem event. Name is relative to the watched directory
// ("." for the directory itself). Entry is set only when the watch asked
// for entries, the type is CREATE, WRITE or CHMOD, and the path still
// exists when the event is processed.
type Event struct {
	Name  string
	Type  EventType
	Entry *EntryInfo
}

const (
	// eventMask is what fsnotify (and so E2B) subscribes to.
	eventMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MODIFY | unix.IN_DELETE |
		unix.IN_DELETE_SELF | unix.IN_MOVED_FROM | unix.IN_MOVE_SELF | unix.IN_ATTRIB
	// readBufSize bounds one read of the inotify queue: at least 60 events
	// of the longest name, 16 KiB per watcher for its lifetime.
	readBufSize = 16 << 10
)

var (
	// errRootGone ends a watch cleanly: the watched directory was removed
	// or unmounted.
	errRootGone = errors.New("watched directory is gone")
	// errOverflow ends a watch whose kernel queue overflowed: events were
	// lost, and a watcher that misses events must say so.
	errOverflow = errors.New("watcher error: inotify event queue overflowed, events were lost")
)

// tree is one inotify instance watching root, and with recursive every
// directory below it, including directories created later. Its fields are
// owned by the goroutine that calls run (newTree's caller before that).
type tree struct {
	f            *os.File // the inotify fd, non-blocking, read through the runtime poller
	root         string   // the watched path as requested (resolved, symlinks not resolved)
	recursive    bool
	includeEntry bool
	names        Names
	sink         func(Event) error // a non-nil error ends the watch with it
	rootWd       int32
	dirs         map[int32]string // wd → directory path relative to root ("" = root)
	// A directory just moved away (MOVED_FROM): if the very next event is
	// its MOVED_TO the subtree is renamed in place, otherwise it left the
	// tree and is forgotten before any further event is handled.
	moveCookie uint32
	moveRel    string
}

// newTree creates the inotify instance and adds the initial watches. On
// error nothing is left open.
func newTree(root string, recursive, includeEntry bool, names Names, sink func(Event) error) (*tree, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.EMFILE) {
			return nil, fmt.Errorf("error creating watcher: inotify instance limit reached (fs.inotify.max_user_instances): %v", err)
		}
		return nil, fmt.Errorf("error creating watcher: %v", err)
	}
	t := &tree{f: os.NewFile(uintptr(fd), "inotify"), root: root, recursive: recursive,
		includeEntry: includeEntry, names: names, sink: sink,
		dirs: map[int32]string{}}
	// The root may be a symlink to a directory: follow it.
	wd, err := unix.InotifyAddWatch(fd, root, eventMask|unix.IN_ONLYDIR)
	if err != nil {
		t.f.Close()
		return nil, fmt.Errorf("error adding path %s to watcher: %v", root, watchErr(err))
	}
	t.rootWd = int32(wd)
	t.dirs[t.rootWd] = ""
	if recursive {
		if err := t.scan("", false); err != nil {
			t.f.Close()
			return nil, err
		}
	}
	return t, nil
}

func watchErr(err error) error {
	if errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("inotify watch limit reached (fs.inotify.max_user_watches): %v", err)
	}
	return err
}

// close releases the inotify fd; a blocked run returns.
func (t *tree) close() { t.f.Close() }

// run reads events until the tree is closed (nil), the root goes away
// (nil) or an error ends it.
func (t *tree) run() error {
	buf := make([]byte, readBufSize)
	for {
		n, err := t.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("watcher error: %v", err)
		}
		if err := t.batch(buf[:n]); err != nil {
			if err == errRootGone {
				return nil
			}
			return err
		}
	}
}

// batch handles one read's worth of events.
func (t *tree) batch(b []byte) error {
	for len(b) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		cookie := binary.NativeEndian.Uint32(b[8:])
		n := int(binary.NativeEndian.Uint32(b[12:]))
		end := unix.SizeofInotifyEvent + n
		if end > len(b) {
			return fmt.Errorf("watcher error: short inotify event")
		}
		name := b[unix.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		b = b[end:]
		if t.moveRel != "" && (mask&unix.IN_MOVED_TO == 0 || cookie != t.moveCookie) {
			t.forgetMove()
		}
		if err := t.handle(wd, mask, cookie, string(name)); err != nil {
			return err
		}
	}
	t.forgetMove()
	return nil
}

// forgetMove drops a directory that moved out of the tree, so events from
// its old watches never carry stale names.
func (t *tree) forgetMove() {
	if t.moveRel != "" {
		t.forget(t.moveRel)
		t.moveRel = ""
	}
}

func (t *tree) handle(wd int32, mask, cookie uint32, name string) error {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		return errOverflow
	}
	rel, ok := t.dirs[wd]
	if !ok {
		return nil // a watch already forgotten
	}
	if mask&unix.IN_IGNORED != 0 {
		delete(t.dirs, wd)
		if wd == t.rootWd {
			return errRootGone
		}
		return nil
	}
	evName := "."
	if name == "" {
		// An event on a watched directory itself. For subdirectories the
		// parent's watch reports the same change by name.
		if wd != t.rootWd {
			return nil
		}
	} else {
		evName = joinRel(rel, name)
	}
	for _, typ := range typesOf(mask) {
		if err := t.emit(evName, typ); err != nil {
			return err
		}
	}
	if name == "" || mask&unix.IN_ISDIR == 0 || !t.recursive {
		return nil
	}
	switch {
	case mask&unix.IN_MOVED_FROM != 0:
		t.moveCookie, t.moveRel = cookie, evName
	case mask&unix.IN_MOVED_TO != 0 && t.moveRel != "" && cookie == t.moveCookie:
		t.rebase(t.moveRel, evName)
		t.moveRel = ""
	case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		// Watch the new directory first, then scan it: anything created
		// before the watch existed is reported by the scan, anything after
		// by the watch (E31), so nothing created in the race is lost.
		added, err := t.watch(evName)
		if err != nil || !added {
			return err
		}
		return t.scan(evName, true)
	}
	return nil
}

// typesOf splits an inotify mask into event types in the spec's order.
func typesOf(mask uint32) []EventType {
	var out []EventType
	if mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
		out = append(out, EventCreate)
	}
	if mask&(unix.IN_MOVED_FROM|unix.IN_MOVE_SELF) != 0 {
		out = append(out, EventRename)
	}
	if mask&unix.IN_ATTRIB != 0 {
		out = append(out, EventChmod)
	}
	if mask&unix.IN_MODIFY != 0 {
		out = append(out, EventWrite)
	}
	if mask&(unix.IN_DELETE|unix.IN_DELETE_SELF) != 0 {
		out = append(out, EventRemove)
	}
	return out
}

func (t *tree) emit(name string, typ EventType) error {
	ev := Event{Name: name, Type: typ}
	if t.includeEntry && (typ == EventCreate || typ == EventWrite || typ == EventChmod) {
		if e, err := lstatEntry(t.abs(name), newNameCache(t.names)); err == nil {
			ev.Entry = &e
		}
	}
	return t.sink(ev)
}

func (t *tree) abs(rel string) string {
	if rel == "" || rel == "." {
		return t.root
	}
	return filepath.Join(t.root, rel)
}

// watch adds a watch for the directory at rel. It reports false for a
// directory that vanished, was replaced or cannot be read (skipped, as in
// E2B); running out of inotify watches is an error that ends the watch.
func (t *tree) watch(rel string) (bool, error) {
	wd, err := -1, error(unix.EBADF)
	t.withFd(func(fd int) {
		wd, err = unix.InotifyAddWatch(fd, t.abs(rel), eventMask|unix.IN_ONLYDIR|unix.IN_DONT_FOLLOW)
	})
	switch {
	case err == nil:
		t.dirs[int32(wd)] = rel
		return true, nil
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.ENOMEM):
		return false, fmt.Errorf("watcher error: cannot watch %s: %v", t.abs(rel), watchErr(err))
	}
	return false, nil
}

// withFd runs fn with the inotify descriptor, which stays open until fn
// returns even if close runs concurrently (so the number cannot be reused
// under fn). fn does not run once the tree is closed.
func (t *tree) withFd(fn func(fd int)) {
	if rc, err := t.f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { fn(int(fd)) })
	}
}

// scan walks the already-watched directory rel, watching every
// subdirectory below it. With emit it reports each entry found as CREATE:
// those entries appeared before their directory's watch existed.
func (t *tree) scan(rel string, emit bool) error {
	dfd, err := openDir(unix.AT_FDCWD, t.abs(rel), unix.O_NOFOLLOW)
	if err != nil {
		return nil // vanished or unreadable: skipped
	}
	d := os.NewFile(uintptr(dfd), t.abs(rel))
	defer d.Close()
	for {
		ents, err := d.ReadDir(readBatch)
		for _, e := range ents {
			child := joinRel(rel, e.Name())
			if emit {
				if err := t.emit(child, EventCreate); err != nil {
					return err
				}
			}
			if !e.IsDir() {
				continue
			}
			added, err := t.watch(child)
			if err != nil {
				return err
			}
			if added {
				if err := t.scan(child, emit); err != nil {
					return err
				}
			}
		}
		if err == io.EOF || len(ents) == 0 || err != nil {
			return nil
		}
	}
}

// rebase renames the watched directories under old to new after a move
// inside the tree, so their events keep correct names without a rescan.
func (t *tree) rebase(old, new string) {
	for wd, r := range t.dirs {
		if r == old {
			t.dirs[wd] = new
		} else if rest, ok := strings.CutPrefix(r, old+"/"); ok {
			t.dirs[wd] = new + "/" + rest
		}
	}
}

// forget stops watching rel and everything below it.
func (t *tree) forget(rel string) {
	for wd, r := range t.dirs {
		if r == rel || strings.HasPrefix(r, rel+"/") {
			t.withFd(func(fd int) { _, _ = unix.InotifyRmWatch(fd, uint32(wd)) })
			delete(t.dirs, wd)
		}
	}
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
