package main

import (
	"bufio"
	"bytes"
	"context"
	bin "encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/envd/internal/testenv"
)

// rssBudget is the most envdctl may hold while copying 1 GiB.
const rssBudget = 32 << 20

// A 1 GiB cp each way streams: envdctl's peak RSS stays under 32 MiB and
// the bytes arrive intact. envd runs as the built binary (not under the
// race detector) and envdctl is a plain build, as users run them.
func TestCp1GiBBothWaysInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("copies 1 GiB each way")
	}
	e := testenv.StartBinary(t)
	dir := t.TempDir()
	src, remote, back := dir+"/src.bin", dir+"/remote/big.bin", dir+"/back.bin"
	writePattern(t, src, 1<<30)

	up := cpMeasured(t, e, src, ":"+remote)
	sameContent(t, src, remote)
	down := cpMeasured(t, e, ":"+remote, back)
	sameContent(t, src, back)
	for _, m := range []measure{up, down} {
		t.Logf("cp %s 1 GiB: %v, %.0f MiB/s, envdctl VmHWM %.1f MiB", m.dir, m.took.Round(time.Millisecond),
			1024/m.took.Seconds(), mib(m.vmHWM))
		if m.vmHWM == 0 || m.vmHWM >= rssBudget {
			t.Errorf("cp %s: VmHWM %.1f MiB, budget %d MiB", m.dir, mib(m.vmHWM), rssBudget>>20)
		}
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

type measure struct {
	dir   string
	took  time.Duration
	vmHWM int64 // bytes
}

// cpMeasured runs a plain envdctl cp and reports its peak RSS: VmHWM from
// /proc/PID/status, read every 10 ms while it runs. VmHWM is a high-water
// mark, so only the last few ms before exit go unseen. (wait4's ru_maxrss
// is no use here: it also counts the forking test binary's memory, which
// the child shared until execve.)
func cpMeasured(t *testing.T, e *testenv.Proc, src, dst string) measure {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t, false), "cp", "-q", src, dst)
	cmd.Env = append(cleanEnv(), "ENVD_ADDR="+e.Addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop, sampled := make(chan struct{}), make(chan int64, 1)
	go func() {
		var hwm int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := vmHWM(cmd.Process.Pid); v > hwm {
				hwm = v
			}
			select {
			case <-stop:
				sampled <- hwm
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	took := time.Since(start)
	close(stop)
	hwm := <-sampled
	if err != nil {
		t.Fatalf("cp %s %s: %v: %s", src, dst, err, stderr.String())
	}
	dir := "up"
	if strings.HasPrefix(src, ":") {
		dir = "down"
	}
	return measure{dir: dir, took: took, vmHWM: hwm}
}

// vmHWM reads a live process's peak resident set, in bytes (0 once gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// writePattern writes size bytes: a random 1 MiB block, each copy stamped
// with its index, so reordered or repeated blocks are caught.
func writePattern(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{7}).Read(block)
	w := bufio.NewWriterSize(f, 1<<20)
	for i := int64(0); i < size>>20; i++ {
		bin.LittleEndian.PutUint64(block, uint64(i))
		if _, err := w.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func sameContent(t *testing.T, a, b string) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(ba)) {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			t.Fatalf("%s and %s differ near offset %d", a, b, off)
		}
		if ea != nil || eb != nil {
			if (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF) {
				return
			}
			t.Fatalf("compare: %v / %v", ea, eb)
		}
	}
}
