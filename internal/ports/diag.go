package ports

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// listener is one TCP socket in state LISTEN.
type listener struct {
	v6   bool     // AF_INET6 socket (an IPv4-mapped address is still v6 here)
	addr [16]byte // v4: first 4 bytes
	port uint16
}

// Netlink sock_diag constants (linux/inet_diag.h, linux/sock_diag.h).
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	tcpListen        = 10 // TCP_LISTEN
	reqLen           = unix.NLMSG_HDRLEN + 56
	diagMsgLen       = 72 // struct inet_diag_msg
	diagBufSize      = 64 << 10
	// maxListeners bounds one scan; a guest with more listening sockets
	// than this gets the first maxListeners forwarded and a log line.
	maxListeners = 4096
)

// diag lists listening TCP sockets through NETLINK_SOCK_DIAG: the kernel
// walks only its listening hash and answers in one or two reads, with no
// text to format or parse. A scan allocates nothing once warm.
type diag struct {
	fd  int
	seq uint32
	req [reqLen]byte
	buf []byte
	out []listener
}

func newDiag() (*diag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("netlink sock_diag socket: %w", err)
	}
	// A kernel that never answers must not wedge the scanner.
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	d := &diag{fd: fd, buf: make([]byte, diagBufSize)}
	// Probe once so a kernel without inet_diag is detected at start.
	if _, err := d.listeners(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return d, nil
}

func (d *diag) close() { unix.Close(d.fd) }

// listeners returns every listening TCP socket of both families. The
// slice is reused by the next call.
func (d *diag) listeners() ([]listener, error) {
	d.out = d.out[:0]
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := d.dump(fam); err != nil {
			return nil, err
		}
	}
	return d.out, nil
}

func (d *diag) dump(family uint8) error {
	d.seq++
	r := d.req[:]
	clear(r)
	binary.NativeEndian.PutUint32(r[0:], reqLen)
	binary.NativeEndian.PutUint16(r[4:], sockDiagByFamily)
	binary.NativeEndian.PutUint16(r[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(r[8:], d.seq)
	r[16] = family
	r[17] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[20:], 1<<tcpListen)
	if _, err := unix.Write(d.fd, r); err != nil {
		return fmt.Errorf("sock_diag request: %w", err)
	}
	for {
		n, err := unix.Read(d.fd, d.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sock_diag read: %w", err)
		}
		done, err := d.parse(d.buf[:n])
		if err != nil || done {
			return err
		}
	}
}

// parse consumes one datagram of netlink messages; done at NLMSG_DONE.
func (d *diag) parse(b []byte) (done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		typ := binary.NativeEndian.Uint16(b[4:])
		seq := binary.NativeEndian.Uint32(b[8:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, errors.New("sock_diag: truncated message")
		}
		msg := b[unix.NLMSG_HDRLEN:l]
		if next := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1); next < len(b) {
			b = b[next:]
		} else {
			b = nil
		}
		if seq != d.seq {
			continue // a late answer to an earlier, timed-out request
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) >= 4 {
				if e := int32(binary.NativeEndian.Uint32(msg)); e != 0 {
					return false, fmt.Errorf("sock_diag: %w", unix.Errno(-e))
				}
			}
			return true, nil
		case sockDiagByFamily:
			if len(msg) < diagMsgLen || msg[1] != tcpListen || len(d.out) >= maxListeners {
				continue
			}
			var l listener
			l.v6 = msg[0] == unix.AF_INET6
			l.port = binary.BigEndian.Uint16(msg[4:])
			copy(l.addr[:], msg[8:24])
			d.out = append(d.out, l)
		}
	}
	return false, nil
}

// procListeners is the fallback for kernels without inet_diag: it parses
// /proc/net/tcp and tcp6 (BEHAVIOR.md 6.1 describes the format).
func procListeners(out []listener) ([]listener, error) {
	out = out[:0]
	for _, f := range []struct {
		path string
		v6   bool
	}{{"/proc/net/tcp", false}, {"/proc/net/tcp6", true}} {
		var err error
		if out, err = parseProcNet(f.path, f.v6, out); err != nil && !(f.v6 && os.IsNotExist(err)) {
			return nil, err
		}
	}
	return out, nil
}

func parseProcNet(path string, v6 bool, out []listener) ([]listener, error) {
	file, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Scan() // header
	for sc.Scan() && len(out) < maxListeners {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(fields[1], ":")
		port, perr := strconv.ParseUint(hexPort, 16, 16)
		raw, herr := hex.DecodeString(hexAddr)
		if !ok || perr != nil || herr != nil || (len(raw) != 4 && len(raw) != 16) {
			continue
		}
		l := listener{v6: v6, port: uint16(port)}
		// Each 32-bit word is printed in host (little-endian) order.
		for w := 0; w < len(raw); w += 4 {
			l.addr[w], l.addr[w+1], l.addr[w+2], l.addr[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
		}
		out = append(out, l)
	}
	return out, sc.Err()
}
