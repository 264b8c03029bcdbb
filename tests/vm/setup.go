package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Available reports why VMs cannot run here (nil when they can): qemu and
// a stock kernel with its module tree are needed (scripts/deps.sh installs
// both).
func Available() error {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return fmt.Errorf("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	_, _, err := FindKernel()
	return err
}

// CacheDir keeps extracted kernels between runs: $ENVD_VM_CACHE, else
// /var/tmp/envd-vm-cache.
func CacheDir() string {
	if d := os.Getenv("ENVD_VM_CACHE"); d != "" {
		return d
	}
	return "/var/tmp/envd-vm-cache"
}

// ModuleRoot is the repository root (this file is tests/vm/setup.go).
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildStatic builds the module package pkg ("./cmd/envd") as a static,
// stripped binary at out.
func BuildStatic(pkg, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = ModuleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Prepare builds everything a boot needs in workDir: the shim, envd
// ($ENVD_BIN when set, else built), the initramfs with envdArgs, and the
// cached kernel. The result boots and restores any number of VMs.
func Prepare(workDir string, envdArgs []string) (*Machine, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	k, err := PrepareKernel(filepath.Clean(CacheDir()))
	if err != nil {
		return nil, err
	}
	shim := filepath.Join(workDir, "vminit")
	if err := BuildStatic("./tests/vm/vminit", shim); err != nil {
		return nil, err
	}
	envd := os.Getenv("ENVD_BIN")
	if envd == "" {
		envd = filepath.Join(workDir, "envd")
		if err := BuildStatic("./cmd/envd", envd); err != nil {
			return nil, err
		}
	}
	initrd := filepath.Join(workDir, "initrd.cpio")
	spec := ImageSpec{Envd: envd, Shim: shim, EnvdArgs: envdArgs, Kernel: k,
		Modules: DefaultModules, Tools: DefaultTools}
	if err := BuildInitramfs(spec, initrd); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	return NewMachine(k, initrd)
}
