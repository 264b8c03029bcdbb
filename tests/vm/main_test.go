package vm

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The VM tests boot qemu and take minutes of CPU, so they run on request:
// ENVD_VM_TESTS=1 (make test-vm sets it, after scripts/deps.sh installed
// qemu and the kernel). Outside that they skip with the reason.

// envdArgs are the flags the shim gives envd: Firecracker mode (no
// --isnotfc: MMDS polling, the /init clock rule, marker files "true"), but
// MMDS on a closed guest-loopback port so nothing goes to 169.254.169.254,
// and ports forwarded onto the guest's own eth0 address.
var envdArgs = []string{"--flavor", "wrenn", "--mmds-addr", "127.0.0.1:1", "--forward-addr", "10.0.2.15"}

// Timeouts sized for TCG on a loaded 2-core machine (a quiet boot takes
// about 3 s, a restore about 0.5 s; both stretch several times under load).
const (
	bootTimeout    = 180 * time.Second
	restoreTimeout = 60 * time.Second
)

// suite is what every test of this binary shares: one build of the
// initramfs, one boot, and a snapshot of that booted guest ("golden"),
// which each test restores into its own qemu.
type suite struct {
	once     sync.Once
	err      error
	dir      string
	m        *Machine
	golden   string
	bootTook time.Duration
}

var shared suite

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// requireVM skips unless VM tests were asked for; asked for but
// impossible (no qemu, no kernel) is a failure, so CI cannot skip them.
func requireVM(t testing.TB) {
	t.Helper()
	if os.Getenv("ENVD_VM_TESTS") != "1" {
		t.Skip("VM tests run with ENVD_VM_TESTS=1 (make test-vm)")
	}
	if err := Available(); err != nil {
		t.Fatalf("ENVD_VM_TESTS=1 but VMs cannot run here: %v (run scripts/deps.sh)", err)
	}
}

// golden returns the shared machine and the path of its golden snapshot,
// booting once per test binary.
func golden(t testing.TB) (*Machine, string) {
	t.Helper()
	requireVM(t)
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "envd-vm-")
		if shared.err != nil {
			return
		}
		shared.m, shared.err = Prepare(shared.dir, envdArgs)
		if shared.err != nil {
			return
		}
		vm, err := shared.m.Boot(filepath.Join(shared.dir, "boot"))
		if err != nil {
			shared.err = err
			return
		}
		defer vm.Kill()
		if shared.bootTook, err = vm.WaitHealthy(bootTimeout); err != nil {
			shared.err = err
			return
		}
		if code, err := vm.Post("/snapshot/prepare"); err != nil || code != 204 {
			shared.err = fmt.Errorf("prepare: %d %v", code, err) // as the host does before a pause
			return
		}
		shared.golden = filepath.Join(shared.dir, "golden.snap")
		if _, err := vm.Snapshot(shared.golden); err != nil {
			shared.err = fmt.Errorf("golden snapshot: %w", err)
		}
	})
	if shared.err != nil {
		t.Fatalf("vm setup: %v", shared.err)
	}
	return shared.m, shared.golden
}

// restore starts a new VM from snap, waits for envd, and kills the VM
// when the test ends.
func restore(t testing.TB, m *Machine, snap string) *VM {
	t.Helper()
	vm, err := m.Restore(t.TempDir(), snap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	if _, err := vm.WaitHealthy(restoreTimeout); err != nil {
		t.Fatal(err)
	}
	return vm
}
