package metrics

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func writeProc(t *testing.T, dir, stat, meminfo string) {
	t.Helper()
	for name, body := range map[string]string{"stat": stat, "meminfo": meminfo, "cpuinfo": "processor\t: 0\nx\n\nprocessor\t: 1\nx\n\nprocessor\t: 2\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const meminfo = `MemTotal:        1000000 kB
MemFree:          200000 kB
MemAvailable:     600000 kB
Buffers:           10000 kB
Cached:           300000 kB
SwapCached:            0 kB
SReclaimable:      40000 kB
`

// The E2B formula: used = total − free − buffers − (cached + sreclaimable);
// cpu = Δbusy/Δtotal since the previous call, guest fields excluded.
func TestFormulasOnKnownProcFiles(t *testing.T) {
	dir := t.TempDir()
	writeProc(t, dir, "cpu  100 0 100 700 100 0 0 0 50 50\ncpu0 1 1 1 1\n", meminfo)
	c, err := New(Options{ProcDir: dir, DiskPath: dir})
	if err != nil {
		t.Fatal(err)
	}
	// +300 busy (user 200, system 100), +100 idle, +0 iowait, guest +1000 ignored.
	writeProc(t, dir, "cpu  300 0 200 800 100 0 0 0 1050 50\n", meminfo)
	s, err := c.Collect()
	if err != nil {
		t.Fatal(err)
	}
	if s.CPUUsedPct != 75 {
		t.Errorf("cpu_used_pct = %v, want 75", s.CPUUsedPct)
	}
	if s.CPUCount != 3 {
		t.Errorf("cpu_count = %d, want 3", s.CPUCount)
	}
	kb := uint64(1024)
	if s.MemTotal != 1000000*kb || s.MemCache != 340000*kb || s.MemUsed != (1000000-200000-10000-340000)*kb {
		t.Errorf("memory: %+v", s)
	}
	if s.MemTotalMiB != s.MemTotal>>20 || s.MemUsedMiB != s.MemUsed>>20 {
		t.Errorf("MiB fields: %+v", s)
	}
	// Unchanged counters: no interval, 0 %.
	s, _ = c.Collect()
	if s.CPUUsedPct != 0 {
		t.Errorf("no elapsed jiffies must give 0, got %v", s.CPUUsedPct)
	}
	w, err := New(Options{ProcDir: dir, DiskPath: dir, UsedFromAvailable: true})
	if err != nil {
		t.Fatal(err)
	}
	s, _ = w.Collect()
	if s.MemUsed != (1000000-600000)*kb {
		t.Errorf("wrenn mem_used = %d", s.MemUsed)
	}
}

func TestBrokenProcFilesAreAnError(t *testing.T) {
	dir := t.TempDir()
	writeProc(t, dir, "garbage\n", meminfo)
	if _, err := New(Options{ProcDir: dir}); err == nil {
		t.Fatal("New must fail on an unreadable /proc/stat")
	}
	writeProc(t, dir, "cpu 1 2 3 4 5\n", "nothing useful\n")
	c, err := New(Options{ProcDir: dir, DiskPath: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Collect(); err == nil {
		t.Fatal("Collect must fail without MemTotal")
	}
}

// Against the real machine, each field is checked with an independent read.
func TestRealMachineValues(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Collect()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := readMeminfo("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	if s.MemTotal != mem["MemTotal"] || s.MemUsed == 0 || s.MemUsed > s.MemTotal {
		t.Errorf("mem: got total %d used %d, /proc/meminfo total %d", s.MemTotal, s.MemUsed, mem["MemTotal"])
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		t.Fatal(err)
	}
	if s.DiskTotal != st.Blocks*uint64(st.Bsize) {
		t.Errorf("disk_total %d, statfs %d", s.DiskTotal, st.Blocks*uint64(st.Bsize))
	}
	used := (st.Blocks - st.Bavail) * uint64(st.Bsize)
	if diff := int64(s.DiskUsed) - int64(used); diff > 64<<20 || diff < -64<<20 {
		t.Errorf("disk_used %d, statfs %d", s.DiskUsed, used)
	}
	if s.CPUCount < 1 || s.CPUUsedPct < 0 || s.CPUUsedPct > 100 {
		t.Errorf("cpu: %+v", s)
	}
	if d := time.Since(time.Unix(s.TS, 0)); d < 0 || d > 5*time.Second {
		t.Errorf("ts %d is not now", s.TS)
	}
}
