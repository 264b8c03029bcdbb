package process

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Size is a terminal size in character cells.
type Size struct {
	Cols, Rows uint32
}

// openPTY allocates a pseudo-terminal of the given size. The master is
// non-blocking (read through the Go poller); the slave is for the child.
func openPTY(sz Size) (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(mfd)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave without a path lookup (works whatever
	// is mounted on /dev/pts); fall back to the path on old kernels.
	sfd, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e != 0 {
		n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
		if err != nil {
			unix.Close(mfd)
			return nil, nil, fmt.Errorf("pty number: %w", err)
		}
		fd, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(mfd)
			return nil, nil, fmt.Errorf("open pty slave: %w", err)
		}
		sfd = uintptr(fd)
	}
	master = os.NewFile(uintptr(mfd), "ptmx")
	slave = os.NewFile(sfd, "pts")
	if err := resize(master, sz); err != nil {
		master.Close()
		slave.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// resize sets the window size (TIOCSWINSZ); the kernel sends SIGWINCH to
// the foreground process group.
func resize(master *os.File, sz Size) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Col: uint16(sz.Cols), Row: uint16(sz.Rows)}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	if ioErr != nil {
		return fmt.Errorf("resize pty: %w", ioErr)
	}
	return nil
}

// newPipe returns a pipe whose parent end is non-blocking (pollable) and
// whose child end is blocking, both close-on-exec. parentReads selects
// which end the parent keeps.
func newPipe(parentReads bool) (parent, child *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	pi, ci := p[0], p[1]
	if !parentReads {
		pi, ci = p[1], p[0]
	}
	// A deeper pipe lets a bulk writer run ahead of one read, so reads
	// come back full; best effort (pipe-max-size may be lower).
	_, _ = unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, pipeSize)
	if err := unix.SetNonblock(pi, true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(pi), "pipe"), os.NewFile(uintptr(ci), "pipe"), nil
}
