package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ImageSpec says what goes into the guest's initramfs.
type ImageSpec struct {
	Envd     string   // static envd: /init, PID 1
	Shim     string   // static vminit: the kernel's rdinit
	EnvdArgs []string // given to envd by the shim, one per line in /vminit/args
	Kernel   *Kernel
	Modules  []string // loaded by the shim, dependencies first (resolved here)
	// Tools are host programs copied in with their ELF interpreter and
	// libraries (symlinks kept), so guest processes have a shell.
	Tools []string
}

// DefaultModules is what a stock Debian kernel needs for eth0 on microvm;
// tcp_diag gives envd's port scanner netlink sock_diag, as a sandbox
// kernel with it built in would.
var DefaultModules = []string{"virtio_mmio", "virtio_net", "tcp_diag"}

// DefaultTools are the guest programs the tests run.
var DefaultTools = []string{"/bin/sh", "/bin/sleep", "/bin/cat", "/bin/date"}

// libDirs is where DT_NEEDED libraries are looked for (Debian, x86_64).
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// BuildInitramfs writes the initramfs to out (uncompressed newc cpio; qemu
// loads it as is).
func BuildInitramfs(spec ImageSpec, out string) error {
	if err := mustBeStatic(spec.Envd); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	cw := newCPIO(f)
	b := &imageBuilder{cw: cw, seen: map[string]bool{}, linked: map[string]bool{}}
	for _, d := range []string{"/proc", "/sys", "/run", "/root", "/etc", "/dev"} {
		cw.Dir(d, 0o755)
	}
	cw.Dir("/tmp", 0o1777)
	cw.CharDev("/dev/console", 0o600, 5, 1) // PID 1's stdio: without it logs go nowhere
	cw.Dir("/home/user", 0o755)
	cw.File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"))
	cw.File("/etc/group", 0o644, []byte("root:x:0:\nuser:x:1000:\n"))
	if err := b.hostFile("/init", spec.Envd, 0o755); err != nil {
		return err
	}
	if err := b.hostFile("/vminit/vminit", spec.Shim, 0o755); err != nil {
		return err
	}
	cw.File("/vminit/args", 0o644, []byte(strings.Join(spec.EnvdArgs, "\n")+"\n"))
	mods, err := resolveModules(spec.Kernel.Modules, spec.Modules)
	if err != nil {
		return err
	}
	var names []string
	for _, m := range mods {
		data, err := readModule(filepath.Join(spec.Kernel.Modules, m))
		if err != nil {
			return err
		}
		name := moduleName(m) + ".ko"
		cw.File("/vminit/modules/"+name, 0o644, data)
		names = append(names, name)
	}
	cw.File("/vminit/modules.list", 0o644, []byte(strings.Join(names, "\n")+"\n"))
	for _, t := range spec.Tools {
		if err := b.program(t); err != nil {
			return fmt.Errorf("tool %s: %w", t, err)
		}
	}
	if err := cw.Close(); err != nil {
		return err
	}
	return f.Close()
}

type imageBuilder struct {
	cw     *cpioWriter
	seen   map[string]bool // host paths already in the archive
	linked map[string]bool // ELF files whose interpreter and libraries are in
}

func (b *imageBuilder) hostFile(dst, src string, perm uint32) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	b.cw.File(dst, perm, data)
	return nil
}

// program adds a host executable, its interpreter and its libraries.
func (b *imageBuilder) program(p string) error {
	real, err := b.hostPath(p, 0)
	if err != nil || b.linked[real] {
		return err
	}
	b.linked[real] = true
	f, err := elf.Open(real)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(prog.Open())
			if _, err := b.hostPath(string(bytes.TrimRight(interp, "\x00")), 0); err != nil {
				return err
			}
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return err
	}
	for _, lib := range libs {
		found := ""
		for _, d := range libDirs {
			if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
				found = filepath.Join(d, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("library %s not found", lib)
		}
		if err := b.program(found); err != nil {
			return err
		}
	}
	return nil
}

// hostPath copies the host path p into the archive at the same place.
// Every symlink met on the way (a merged-/usr /bin or /lib64, a library's
// soname link) is added as a symlink and resolution goes on at its
// target, so the guest resolves the path exactly as the host does. It
// returns the real path of the file.
func (b *imageBuilder) hostPath(p string, hops int) (string, error) {
	if hops > 40 {
		return "", fmt.Errorf("%s: too many symlinks", p)
	}
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := filepath.Join(cur, part)
		fi, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if !b.seen[next] {
			b.seen[next] = true
			b.cw.Symlink(next, target)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		return b.hostPath(filepath.Join(append([]string{target}, parts[i+1:]...)...), hops+1)
	}
	if !b.seen[cur] {
		b.seen[cur] = true
		fi, err := os.Stat(cur)
		if err != nil {
			return "", err
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%s is not a regular file", cur)
		}
		if err := b.hostFile(cur, cur, uint32(fi.Mode().Perm())); err != nil {
			return "", err
		}
	}
	return cur, nil
}

// mustBeStatic refuses a dynamically linked envd: the guest has no libc
// for it (CGO_ENABLED=0 builds are static).
func mustBeStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("envd %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("envd %s is dynamically linked: build it with CGO_ENABLED=0", p)
		}
	}
	return nil
}

// moduleName turns kernel/drivers/net/virtio_net.ko(.xz) into virtio_net.
func moduleName(path string) string {
	base := filepath.Base(path)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// resolveModules reads modules.dep and returns the module files (relative
// to the module tree) in load order: every module after its dependencies.
func resolveModules(tree string, want []string) ([]string, error) {
	f, err := os.Open(filepath.Join(tree, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps := map[string][]string{} // module file -> its dependencies' files
	byName := map[string]string{} // module name -> file
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		file, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[file] = strings.Fields(rest)
		byName[moduleName(file)] = file
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var order []string
	done := map[string]bool{}
	var visit func(file string, depth int) error
	visit = func(file string, depth int) error {
		if done[file] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("module dependency loop at %s", file)
		}
		for _, d := range deps[file] {
			if err := visit(d, depth+1); err != nil {
				return err
			}
		}
		done[file] = true
		order = append(order, file)
		return nil
	}
	for _, name := range want {
		file, ok := byName[strings.ReplaceAll(name, "-", "_")]
		if !ok {
			return nil, fmt.Errorf("module %s is not in %s/modules.dep (built in?)", name, tree)
		}
		if err := visit(file, 0); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readModule returns a module's ELF, unpacking .ko.gz here and .ko.xz and
// .ko.zst with their tools (finit_module wants the plain object).
func readModule(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(path, ".ko"):
		return data, nil
	case strings.HasSuffix(path, ".ko.gz"):
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(io.LimitReader(zr, 64<<20))
	case strings.HasSuffix(path, ".ko.xz"):
		return viaTool("xz", data)
	case strings.HasSuffix(path, ".ko.zst"):
		return viaTool("zstd", data)
	}
	return nil, errors.New("unknown module format: " + path)
}
