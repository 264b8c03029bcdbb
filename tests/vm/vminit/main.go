// Command vminit is the VM tests' rdinit shim. A stock distribution kernel
// has virtio as modules, where a Firecracker guest kernel has them built in
// and gets its address from ip=. The shim stands in for that: it loads the
// modules listed in /vminit/modules.list, gives eth0 slirp's fixed guest
// address, and then execve()s /init (envd) with the arguments in
// /vminit/args, so envd really is PID 1 and finds the network up, as it
// would on Firecracker. It mounts /proc only for its own use and unmounts
// it again, so envd's PID 1 mounts are tested on a bare kernel.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	guestIP   = "10.0.2.15" // slirp's default guest address: hostfwd targets it
	guestMask = "255.255.255.0"
)

func main() {
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "vminit:", err) // still exec envd: the tests see what works
	}
	args := []string{"/init"}
	if b, err := os.ReadFile("/vminit/args"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				args = append(args, l)
			}
		}
	}
	err := unix.Exec("/init", args, os.Environ())
	fmt.Fprintln(os.Stderr, "vminit: exec /init:", err) // returning panics the kernel: qemu exits
}

func setup() error {
	if err := os.MkdirAll("/proc", 0o555); err != nil {
		return err
	}
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	defer func() { _ = unix.Unmount("/proc", 0) }()
	list, err := os.ReadFile("/vminit/modules.list")
	if err != nil {
		return err
	}
	for _, name := range strings.Fields(string(list)) {
		if err := loadModule("/vminit/modules/" + name); err != nil {
			return err
		}
	}
	return netUp()
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module %s: %w", path, err)
	}
	return nil
}

// netUp waits (bounded) for eth0 to appear, turns on arp_notify so slirp
// learns the guest's MAC from a gratuitous ARP as the link comes up, and
// sets the address and IFF_UP with ioctls.
func netUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ifr, err := unix.NewIfreq("eth0")
		if err != nil {
			return err
		}
		if err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("eth0 did not appear: %w", err)
		}
		time.Sleep(2 * time.Millisecond) // a device appearing has no cheap event here
	}
	_ = os.WriteFile("/proc/sys/net/ipv4/conf/eth0/arp_notify", []byte("1"), 0)
	for _, s := range []struct {
		req  uint
		addr string
	}{{unix.SIOCSIFADDR, guestIP}, {unix.SIOCSIFNETMASK, guestMask}} {
		ifr, _ := unix.NewIfreq("eth0")
		if err := ifr.SetInet4Addr(ip4(s.addr)); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, s.req, ifr); err != nil {
			return fmt.Errorf("eth0 %s: %w", s.addr, err)
		}
	}
	ifr, _ := unix.NewIfreq("eth0")
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func ip4(s string) []byte {
	var b [4]byte
	_, _ = fmt.Sscanf(s, "%d.%d.%d.%d", &b[0], &b[1], &b[2], &b[3])
	return b[:]
}
