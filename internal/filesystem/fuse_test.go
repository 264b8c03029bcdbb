package filesystem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// mountFUSE mounts a minimal, empty FUSE filesystem (a real network-mount
// magic, 0x65735546) at a temp dir, served by a goroutine speaking just
// enough of the kernel protocol: INIT, GETATTR, STATFS, empty READDIR,
// ENOSYS for the rest. It is unmounted when the test ends.
func mountFUSE(t *testing.T) string {
	t.Helper()
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skip("no /dev/fuse:", err)
	}
	dir := t.TempDir()
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0", fd)
	if err := unix.Mount("envd-test", dir, "fuse", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		unix.Close(fd)
		t.Skip("cannot mount FUSE here:", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveFUSE(fd)
	}()
	t.Cleanup(func() {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		wg.Wait()
		unix.Close(fd)
	})
	return dir
}

func serveFUSE(fd int) {
	buf := make([]byte, 1<<17)
	ne := binary.NativeEndian
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil || n < 40 {
			return // ENODEV after unmount
		}
		op, unique := ne.Uint32(buf[4:]), ne.Uint64(buf[8:])
		var out []byte
		errno := int32(0)
		switch op {
		case 26: // INIT: fuse_init_out, protocol 7.31
			out = make([]byte, 64)
			ne.PutUint32(out[0:], 7)
			ne.PutUint32(out[4:], 31)
			ne.PutUint32(out[8:], ne.Uint32(buf[48:])) // max_readahead as asked
			ne.PutUint32(out[20:], 4096)               // max_write
			ne.PutUint32(out[24:], 1)                  // time_gran
		case 3: // GETATTR: fuse_attr_out for a 0755 directory
			out = make([]byte, 104)
			ne.PutUint64(out[16:], 1)                     // ino
			ne.PutUint32(out[16+60:], unix.S_IFDIR|0o755) // mode
			ne.PutUint32(out[16+64:], 2)                  // nlink
			ne.PutUint32(out[16+80:], 4096)               // blksize
		case 17: // STATFS: fuse_kstatfs
			out = make([]byte, 80)
			ne.PutUint32(out[40:], 4096) // bsize
			ne.PutUint32(out[44:], 255)  // namelen
			ne.PutUint32(out[48:], 4096) // frsize
		case 27: // OPENDIR
			out = make([]byte, 16)
		case 28, 29, 38: // READDIR (empty), RELEASEDIR, DESTROY
		case 2, 36, 42: // FORGET, INTERRUPT, BATCH_FORGET: no reply
			continue
		case 1: // LOOKUP: nothing inside
			errno = -int32(unix.ENOENT)
		default:
			errno = -int32(unix.ENOSYS)
		}
		hdr := make([]byte, 16, 16+len(out))
		ne.PutUint32(hdr[0:], uint32(16+len(out)))
		ne.PutUint32(hdr[4:], uint32(errno))
		ne.PutUint64(hdr[8:], unique)
		if _, err := unix.Write(fd, append(hdr, out...)); err != nil && !errors.Is(err, unix.ENOENT) {
			return
		}
	}
}

// Network filesystems (here FUSE) are refused unless allow_network_mounts
// is set (PROTOCOL.md 3.4), for streams and polling watchers alike.
func TestWatchRefusesNetworkMountsUnlessAllowed(t *testing.T) {
	dir := mountFUSE(t)
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || uint32(fs.Type) != 0x65735546 {
		t.Fatalf("statfs of the FUSE mount: %#x %v", fs.Type, err)
	}
	s := newService(t, Options{})
	_, err := s.Watch(WatchOptions{Path: dir})
	if kindName(err) != "invalid argument" || !strings.Contains(err.Error(), "cannot watch path on network filesystem: "+dir) {
		t.Fatalf("watch on FUSE: %v", err)
	}
	if _, err := s.CreateWatcher(WatchOptions{Path: dir, Recursive: true}); kindName(err) != "invalid argument" {
		t.Fatalf("polling watcher on FUSE: %v", err)
	}
	w := startWatch(t, s, WatchOptions{Path: dir, AllowNetworkMounts: true})
	w.Close()
	id, err := s.CreateWatcher(WatchOptions{Path: dir, Recursive: true, AllowNetworkMounts: true})
	must(t, err)
	must(t, s.RemoveWatcher(id))
}
