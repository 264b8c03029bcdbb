package vm

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// TestExtractVmlinux unpacks the installed kernel in Go and, when it is
// lz4-packed and the lz4 tool is there, compares with the tool's output.
func TestExtractVmlinux(t *testing.T) {
	requireVM(t) // seconds under -race: with the VM tests only
	bz, _, err := FindKernel()
	if err != nil {
		t.Skip(err)
	}
	img, err := os.ReadFile(bz)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ExtractVmlinux(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("\x7fELF")) {
		t.Fatalf("not an ELF: % x", out[:16])
	}
	t.Logf("%s: %d bytes unpacked", bz, len(out))
	p, _ := kernelPayload(img)
	if _, err := exec.LookPath("lz4"); err != nil || !bytes.HasPrefix(p, []byte{0x02, 0x21, 0x4c, 0x18}) {
		return
	}
	cmd := exec.Command("lz4", "-dc")
	cmd.Stdin = bytes.NewReader(p)
	want, _ := cmd.Output() // it complains about the appended size
	if !bytes.Equal(out, want) {
		t.Fatalf("differs from lz4 -dc: %d vs %d bytes", len(out), len(want))
	}
}

func TestLZ4AgainstTool(t *testing.T) {
	if _, err := exec.LookPath("lz4"); err != nil {
		t.Skip("no lz4 tool")
	}
	in := bytes.Repeat([]byte("envd in a microvm, snapshot and restore; "), 50000)
	in = append(in, []byte("tail without repeats 0123456789")...)
	cmd := exec.Command("lz4", "-l", "-c")
	cmd.Stdin = bytes.NewReader(in)
	comp, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := unlz4Legacy(comp, 64<<20)
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("round trip: %d bytes, err %v", len(got), err)
	}
}
