// Package metrics computes GET /metrics from /proc and statfs, without
// gopsutil (PROTOCOL.md 4.2, BEHAVIOR.md 8).
package metrics

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Snapshot is one reading. JSON names are the wire names.
type Snapshot struct {
	TS          int64   `json:"ts"`
	CPUCount    int     `json:"cpu_count"`
	CPUUsedPct  float64 `json:"cpu_used_pct"`
	MemTotal    uint64  `json:"mem_total"`
	MemUsed     uint64  `json:"mem_used"`
	MemCache    uint64  `json:"mem_cache"`
	MemTotalMiB uint64  `json:"mem_total_mib"`
	MemUsedMiB  uint64  `json:"mem_used_mib"`
	DiskUsed    uint64  `json:"disk_used"`
	DiskTotal   uint64  `json:"disk_total"`
}

// Collector keeps the CPU baseline between calls: the CPU figure is the
// busy share since the previous call (E2B), the first call since start.
type Collector struct {
	procDir  string
	diskPath string
	// UsedFromAvailable selects Wrenn's mem_used = total − available
	// instead of E2B's total − free − buffers − cached − sreclaimable.
	usedFromAvailable bool

	mu       sync.Mutex // guards the CPU baseline
	lastBusy uint64
	lastAll  uint64
}

// Options configure a Collector; zero values mean /proc and /.
type Options struct {
	ProcDir           string
	DiskPath          string
	UsedFromAvailable bool
}

// New takes the CPU baseline now.
func New(o Options) (*Collector, error) {
	if o.ProcDir == "" {
		o.ProcDir = "/proc"
	}
	if o.DiskPath == "" {
		o.DiskPath = "/"
	}
	c := &Collector{procDir: o.ProcDir, diskPath: o.DiskPath, usedFromAvailable: o.UsedFromAvailable}
	busy, all, err := c.cpuTimes()
	if err != nil {
		return nil, err
	}
	c.lastBusy, c.lastAll = busy, all
	return c, nil
}

// Collect reads every field. An error means the caller answers 500.
func (c *Collector) Collect() (Snapshot, error) {
	s := Snapshot{TS: time.Now().Unix(), CPUCount: cpuCount(c.procDir)}
	busy, all, err := c.cpuTimes()
	if err != nil {
		return s, err
	}
	c.mu.Lock()
	dBusy, dAll := busy-c.lastBusy, all-c.lastAll
	if busy < c.lastBusy || all < c.lastAll { // counters reset (restore): start over
		dBusy, dAll = 0, 0
	}
	c.lastBusy, c.lastAll = busy, all
	c.mu.Unlock()
	if dAll > 0 {
		pct := float64(dBusy) / float64(dAll) * 100
		s.CPUUsedPct = math.Round(math.Min(math.Max(pct, 0), 100)*100) / 100
	}

	mem, err := readMeminfo(c.procDir + "/meminfo")
	if err != nil {
		return s, err
	}
	s.MemTotal = mem["MemTotal"]
	s.MemCache = mem["Cached"] + mem["SReclaimable"]
	if c.usedFromAvailable {
		s.MemUsed = sub(s.MemTotal, mem["MemAvailable"])
	} else {
		s.MemUsed = sub(s.MemTotal, mem["MemFree"]+mem["Buffers"]+s.MemCache)
	}
	s.MemTotalMiB = s.MemTotal / (1 << 20)
	s.MemUsedMiB = s.MemUsed / (1 << 20)

	var st unix.Statfs_t
	if err := unix.Statfs(c.diskPath, &st); err != nil {
		return s, err
	}
	s.DiskTotal = st.Blocks * uint64(st.Bsize)
	s.DiskUsed = (st.Blocks - st.Bavail) * uint64(st.Bsize)
	return s, nil
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// cpuTimes returns busy and total jiffies from the aggregate "cpu" line:
// total excludes guest and guest_nice (already counted in user and nice),
// busy is total minus idle and iowait.
func (c *Collector) cpuTimes() (busy, total uint64, err error) {
	b, err := readHead(c.procDir+"/stat", 512)
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, os.ErrInvalid
	}
	var v [10]uint64
	for i := 1; i < len(f) && i <= 10; i++ {
		v[i-1], _ = strconv.ParseUint(f[i], 10, 64)
	}
	for i := 0; i < 8; i++ { // user nice system idle iowait irq softirq steal
		total += v[i]
	}
	return total - v[3] - v[4], total, nil
}

// readHead reads at most n bytes: /proc files are small and this keeps the
// read bounded.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := f.Read(buf)
	if k == 0 && err != nil {
		return nil, err
	}
	return buf[:k], nil
}

// readMeminfo returns the kB fields of /proc/meminfo in bytes.
func readMeminfo(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string]uint64, 8)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch name {
		case "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SReclaimable":
		default:
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		out[name] = n * 1024
	}
	if out["MemTotal"] == 0 {
		return nil, os.ErrInvalid
	}
	return out, sc.Err()
}

// cpuCount counts the "processor" entries of cpuinfo, falling back to the
// runtime's view.
func cpuCount(procDir string) int {
	b, err := os.ReadFile(procDir + "/cpuinfo")
	if err == nil {
		if n := bytes.Count(b, []byte("\nprocessor")); n > 0 || bytes.HasPrefix(b, []byte("processor")) {
			if bytes.HasPrefix(b, []byte("processor")) {
				n++
			}
			return n
		}
	}
	return runtime.NumCPU()
}
