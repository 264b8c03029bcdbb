// Package vm runs envd as PID 1 of a real virtual machine: qemu's microvm
// machine under TCG (software emulation), a stock Debian kernel booted
// through its PVH entry, and an initramfs with envd as /init. It drives
// qemu's QMP socket to snapshot a VM to a file and restore it into a new
// qemu, the Firecracker lifecycle envd has to survive.
//
// Networking is user-mode (slirp) with restrict=on: the guest reaches
// nothing, and the one host forward listens on 127.0.0.1 only. Every qemu
// is started here and killed here, by PID; Pdeathsig kills it too if the
// test binary dies first.
package vm

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/envd/internal/safe"
)

// GuestPort is where envd listens inside the guest.
const GuestPort = 49983

// Machine is what one boot and every restore of its snapshots share. A
// restore needs the identical machine, memory size, devices, kernel and
// initrd bytes and command line, so a Machine is built once and reused.
type Machine struct {
	Qemu   string // qemu-system-x86_64
	Kernel string // ELF vmlinux with a PVH note
	Initrd string // newc cpio
	Append string // kernel command line
	MemMB  int
}

// NewMachine returns a 256 MiB, 1 vCPU machine for kernel and initrd.
func NewMachine(k *Kernel, initrd string) (*Machine, error) {
	q, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, errors.New("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
	}
	khz, err := tscKHz()
	if err != nil {
		return nil, err
	}
	// Why each argument: under TCG microvm has no HPET or PM timer and PIT
	// calibration fails, so the TSC rate is given and trusted (without it
	// the boot hangs or guest time runs slow). The initcalls and self-tests
	// skipped are the slowest ones under emulation; none matters to envd.
	args := []string{
		"console=ttyS0", "panic=-1", "quiet", "rdinit=/vminit/vminit",
		"tsc_early_khz=" + strconv.Itoa(khz), "tsc=reliable",
		"mitigations=off", "init_on_alloc=0", "cryptomgr.notests", "apparmor=0", "audit=0",
		"rcupdate.rcu_expedited=1",
		"initcall_blacklist=crypto_kdf108_init,init_kprobe_trace,load_system_certificate_list," +
			"dev_map_init,trace_eval_init,init_blk_tracer,bpf_rstat_kfunc_init",
	}
	return &Machine{Qemu: q, Kernel: k.Image, Initrd: initrd, Append: strings.Join(args, " "), MemMB: 256}, nil
}

// tscKHz is the host TSC rate, which the guest TSC runs at under TCG:
// $ENVD_VM_TSC_KHZ, else /proc/cpuinfo's "cpu MHz".
func tscKHz() (int, error) {
	if v := os.Getenv("ENVD_VM_TSC_KHZ"); v != "" {
		return strconv.Atoi(v)
	}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil && mhz > 0 {
				return int(mhz * 1000), nil
			}
		}
	}
	return 0, errors.New("no cpu MHz in /proc/cpuinfo: set ENVD_VM_TSC_KHZ")
}

// VM is one running qemu.
type VM struct {
	Dir  string // state: qmp.sock, console.log, qemu.log, qemu.cmd
	Port int    // host port forwarded to the guest's GuestPort
	Addr string // 127.0.0.1:Port
	PID  int

	m       *Machine
	cmd     *exec.Cmd
	qmp     *QMP
	exited  chan struct{} // closed once qemu has exited and been waited for
	waitErr error         // qemu's exit status; read after exited is closed
}

// Boot starts a fresh VM with its state in dir. It returns once QMP
// answers; wait for envd with WaitHealthy.
func (m *Machine) Boot(dir string) (*VM, error) { return m.startRetry(dir, "") }

// Restore starts a new qemu from snapshot file snap and resumes it. It
// returns once the guest runs; the snapshot file is no longer needed then.
func (m *Machine) Restore(dir, snap string) (*VM, error) {
	v, err := m.startRetry(dir, snap)
	if err != nil {
		return nil, err
	}
	for { // the incoming migration reads the whole file, then the VM waits paused
		st, err := v.qmp.status()
		if err != nil {
			v.Kill()
			return nil, fmt.Errorf("restore: %w\n%s", err, v.Logs())
		}
		if st != "inmigrate" {
			break
		}
		if !v.pause(5 * time.Millisecond) {
			v.Kill() // closes QMP
			return nil, fmt.Errorf("restore: qemu exited: %v\n%s", v.waitErr, v.Logs())
		}
	}
	if _, err := v.qmp.Execute("cont", nil); err != nil {
		v.Kill()
		return nil, fmt.Errorf("restore: %w\n%s", err, v.Logs())
	}
	return v, nil
}

// startRetry picks a free loopback port; another process may take it
// before qemu binds it, so a failed host forward is retried on a new one.
func (m *Machine) startRetry(dir, snap string) (*VM, error) {
	var err error
	for range 5 {
		var v *VM
		v, err = m.start(dir, snap)
		if err == nil {
			return v, nil
		}
		if !strings.Contains(err.Error(), "host forwarding") {
			break
		}
	}
	return nil, err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (m *Machine) start(dir, snap string) (*VM, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "qmp.sock")
	_ = os.Remove(sock)
	args := []string{
		"-name", "envd-vm", "-machine", "microvm,acpi=on", "-accel", "tcg",
		"-m", strconv.Itoa(m.MemMB) + "M", "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", m.Kernel, "-initrd", m.Initrd, "-append", m.Append,
		"-chardev", "file,id=con0,path=" + filepath.Join(dir, "console.log") + ",append=on",
		"-serial", "chardev:con0",
		// restrict=on: the guest can reach nothing; the forward is loopback-only.
		"-netdev", fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:%d", port, GuestPort),
		"-device", "virtio-net-device,netdev=net0",
		"-qmp", "unix:" + sock + ",server=on,wait=off",
	}
	cmd := exec.Command(m.Qemu, args...)
	if snap != "" {
		f, err := os.Open(snap)
		if err != nil {
			return nil, err
		}
		defer f.Close() // qemu holds its own copy
		cmd.ExtraFiles = []*os.File{f}
		cmd.Args = append(cmd.Args, "-incoming", "fd:3")
	}
	logf, err := os.Create(filepath.Join(dir, "qemu.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: go test's signals do not reach qemu; Pdeathsig:
	// qemu dies with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	_ = os.WriteFile(filepath.Join(dir, "qemu.cmd"), []byte(strings.Join(cmd.Args, " ")+"\n"), 0o644)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	v := &VM{Dir: dir, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), PID: cmd.Process.Pid,
		m: m, cmd: cmd, exited: make(chan struct{})}
	go func() {
		defer safe.Recover(slog.Default(), "qemu waiter")
		v.waitErr = cmd.Wait()
		close(v.exited)
	}()
	for {
		q, err := dialQMP(sock)
		if err == nil {
			v.qmp = q
			return v, nil
		}
		if !v.pause(5 * time.Millisecond) { // qemu creates the socket during start-up
			return nil, fmt.Errorf("qemu exited during start-up: %v\n%s", v.waitErr, v.Logs())
		}
	}
}

// pause waits d, or less if qemu exits; it reports whether qemu still runs.
func (v *VM) pause(d time.Duration) bool {
	select {
	case <-v.exited:
		return false
	case <-time.After(d):
		return true
	}
}

// Exited is closed once qemu has exited.
func (v *VM) Exited() <-chan struct{} { return v.exited }

// Kill ends qemu by its PID and waits for it. Safe to call again.
func (v *VM) Kill() {
	select {
	case <-v.exited:
	default:
		_ = v.cmd.Process.Kill()
		<-v.exited
	}
	if v.qmp != nil {
		_ = v.qmp.Close()
	}
}

// QMP returns the VM's QMP client.
func (v *VM) QMP() *QMP { return v.qmp }

// Logs returns the tails of qemu's stderr and the guest console, for
// failure messages.
func (v *VM) Logs() string {
	tail := func(name string, n int) string {
		b, _ := os.ReadFile(filepath.Join(v.Dir, name))
		if len(b) > n {
			b = b[len(b)-n:]
		}
		return string(b)
	}
	return "--- qemu.log:\n" + tail("qemu.log", 2000) + "--- console.log (tail):\n" + tail("console.log", 6000)
}
