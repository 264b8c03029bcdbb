package ports

import (
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// pipeSize is the private pipe's capacity, and so the largest move.
const pipeSize = 256 << 10

// spliceCopy moves src to dst with splice(2) through a private pipe: the
// bytes never enter user space. Waiting for readiness goes through Go's
// poller (RawConn), so Close and deadlines interrupt it. The pipe is
// closed when the copy ends, so a finished relay holds no descriptor
// (io.Copy also splices, but keeps its pipes in a pool until a GC).
func spliceCopy(dst, src *net.TCPConn) (int64, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return copyBuffered(dst, src)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	chunk := pipeSize
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, pipeSize); err != nil {
		chunk = 64 << 10 // the default capacity
	}
	rs, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	rd, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n, m       int64
		rerr, werr error
		total      int64
	)
	// EAGAIN on the read side means the socket is empty (the pipe is
	// always drained first); on the write side that the socket is full.
	fill := func(fd uintptr) bool {
		for {
			n, rerr = unix.Splice(int(fd), nil, p[1], nil, chunk, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	}
	drain := func(fd uintptr) bool {
		for {
			m, werr = unix.Splice(p[0], nil, int(fd), nil, int(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			if werr != unix.EINTR {
				return werr != unix.EAGAIN
			}
		}
	}
	for {
		if err := rs.Read(fill); err != nil {
			return total, err
		}
		if rerr != nil {
			return total, rerr
		}
		if n == 0 {
			return total, nil // EOF
		}
		for n > 0 {
			if err := rd.Write(drain); err != nil {
				return total, err
			}
			if werr != nil {
				return total, werr
			}
			n -= m
			total += m
		}
	}
}

// copyBuffered is the fallback when no pipe can be made (fd limit).
func copyBuffered(dst, src *net.TCPConn) (int64, error) {
	buf := make([]byte, 32<<10)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}
