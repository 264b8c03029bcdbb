package vm

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Kernel is a stock distribution kernel prepared for qemu's microvm: the
// bzImage's payload unpacked into an ELF vmlinux that carries a PVH entry
// note, so qemu jumps straight into it (no firmware, no in-guest
// decompression), plus the matching module tree.
type Kernel struct {
	Version string // e.g. 6.1.0-56-cloud-amd64
	Image   string // the ELF vmlinux (cached)
	Modules string // /lib/modules/<Version>
}

// maxVmlinux bounds the decompressed kernel image.
const maxVmlinux = 256 << 20

// FindKernel picks the kernel to boot: $ENVD_VM_KERNEL (a /boot/vmlinuz-*
// path) or the newest /boot/vmlinuz-*-cloud-amd64, else the newest
// /boot/vmlinuz-*. It needs a module tree for that version.
func FindKernel() (string, string, error) {
	if p := os.Getenv("ENVD_VM_KERNEL"); p != "" {
		return p, strings.TrimPrefix(filepath.Base(p), "vmlinuz-"), nil
	}
	all, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(all) == 0 {
		return "", "", errors.New("no /boot/vmlinuz-* (apt-get install linux-image-cloud-amd64)")
	}
	sort.Strings(all)
	pick := all[len(all)-1]
	for _, p := range all {
		if strings.HasSuffix(p, "-cloud-amd64") {
			pick = p // sorted: the last cloud kernel wins
		}
	}
	ver := strings.TrimPrefix(filepath.Base(pick), "vmlinuz-")
	if _, err := os.Stat(filepath.Join("/lib/modules", ver, "modules.dep")); err != nil {
		return "", "", fmt.Errorf("kernel %s has no module tree: %w", ver, err)
	}
	return pick, ver, nil
}

// PrepareKernel returns the kernel, extracting the vmlinux into cacheDir
// once per kernel build (the key is the version, size and mtime of the
// bzImage). Concurrent callers are safe: the file appears by rename.
func PrepareKernel(cacheDir string) (*Kernel, error) {
	bz, ver, err := FindKernel()
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(bz)
	if err != nil {
		return nil, err
	}
	k := &Kernel{Version: ver, Modules: filepath.Join("/lib/modules", ver),
		Image: filepath.Join(cacheDir, fmt.Sprintf("vmlinux-%s-%d-%d", ver, st.Size(), st.ModTime().Unix()))}
	if _, err := os.Stat(k.Image); err == nil {
		return k, nil
	}
	img, err := os.ReadFile(bz)
	if err != nil {
		return nil, err
	}
	vmlinux, err := ExtractVmlinux(img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bz, err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(cacheDir, ".vmlinux-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(vmlinux); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	return k, os.Rename(tmp.Name(), k.Image)
}

// ExtractVmlinux unpacks a bzImage's payload (x86 boot protocol ≥ 2.08:
// payload_offset and payload_length in the setup header) and checks that
// the result is an ELF with a PVH entry note.
func ExtractVmlinux(img []byte) ([]byte, error) {
	p, err := kernelPayload(img)
	if err != nil {
		return nil, err
	}
	out, err := decompress(p)
	if err != nil {
		return nil, err
	}
	if !hasPVHNote(out) {
		return nil, errors.New("the unpacked kernel has no PVH entry note (CONFIG_PVH off?)")
	}
	return out, nil
}

// kernelPayload returns the compressed kernel inside a bzImage.
func kernelPayload(img []byte) ([]byte, error) {
	if len(img) < 0x250 || string(img[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage (no HdrS)")
	}
	if binary.LittleEndian.Uint16(img[0x206:]) < 0x208 {
		return nil, errors.New("boot protocol older than 2.08: no payload fields")
	}
	setupSects := int(img[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := int(binary.LittleEndian.Uint32(img[0x248:]))
	n := int(binary.LittleEndian.Uint32(img[0x24c:]))
	start := (setupSects+1)*512 + off
	if start < 0 || n <= 0 || start+n > len(img) {
		return nil, fmt.Errorf("payload [%d,+%d) outside the %d-byte image", start, n, len(img))
	}
	return img[start : start+n], nil
}

// decompress handles the kernel compressions: gzip and lz4 here, xz and
// zstd through their command-line tools when installed.
func decompress(p []byte) ([]byte, error) {
	switch {
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, err
		}
		zr.Multistream(false) // the appended size is not a gzip member
		return io.ReadAll(io.LimitReader(zr, maxVmlinux))
	case bytes.HasPrefix(p, []byte{0x02, 0x21, 0x4c, 0x18}):
		return unlz4Legacy(p, maxVmlinux)
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return viaTool("xz", p)
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return viaTool("zstd", p)
	}
	return nil, fmt.Errorf("unknown kernel compression (magic % x)", p[:min(6, len(p))])
}

func viaTool(tool string, p []byte) ([]byte, error) {
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("%s is needed to unpack this kernel: %w", tool, err)
	}
	cmd := exec.Command(tool, "-dcq")
	cmd.Stdin = bytes.NewReader(p)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	if out.Len() == 0 {
		return nil, fmt.Errorf("%s -dc: %v", tool, err)
	}
	return out.Bytes(), nil // trailing garbage makes the tools complain: ignore
}

// hasPVHNote reports whether an ELF image has XEN_ELFNOTE_PHYS32_ENTRY
// (note type 18, owner "Xen"), the entry point qemu uses for PVH boot.
func hasPVHNote(p []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(p))
	if err != nil {
		return false
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_NOTE {
			continue
		}
		notes := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(notes, 0); err != nil {
			continue
		}
		for len(notes) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(notes))
			descsz := int(binary.LittleEndian.Uint32(notes[4:]))
			typ := binary.LittleEndian.Uint32(notes[8:])
			end := 12 + (namesz+3)&^3 + (descsz+3)&^3
			if namesz > len(notes)-12 || end > len(notes) {
				break
			}
			if string(bytes.TrimRight(notes[12:12+namesz], "\x00")) == "Xen" && typ == 18 {
				return true
			}
			notes = notes[end:]
		}
	}
	return false
}
