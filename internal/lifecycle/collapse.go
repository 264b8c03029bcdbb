package lifecycle

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	pageSize    = 4096
	hugePage    = 2 << 20
	maxMapsFile = 8 << 20
)

// CollapseResult are the counts of POST /collapse (PROTOCOL.md 4.7).
type CollapseResult struct {
	Regions     int   // anonymous read-write mappings visited
	Chunks      int   // 2 MiB chunks attempted
	Collapsed   int   // chunks newly backed by a huge page
	AlreadyHuge int   // chunks that succeeded without new huge pages
	Skipped     int   // chunks mostly not resident, or refused by the kernel (unsupported: all)
	ElapsedMs   int64 // wall time spent
}

// Collapse asks the kernel to back envd's own anonymous memory with huge
// pages, 2 MiB chunk by chunk (MADV_HUGEPAGE + MADV_COLLAPSE, Linux 6.1+),
// stopping early when ctx ends (BEHAVIOR.md 10.9). Where MADV_COLLAPSE is
// not supported every chunk counts as skipped and the answer is still a
// success: the hook is an optimisation. Unlike E2B, a chunk with fewer than
// half its pages resident is skipped: collapsing it would fill the rest
// with zeroes and grow envd's memory for nothing.
func (l *Lifecycle) Collapse(ctx context.Context) (CollapseResult, error) {
	start := time.Now()
	var r CollapseResult
	maps, err := readBounded("/proc/self/maps", maxMapsFile)
	if err != nil {
		return r, err
	}
	before := anonHugeBytes()
	succeeded := 0
	vec := make([]byte, hugePage/pageSize)
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() && ctx.Err() == nil {
		lo, hi, ok := anonRW(sc.Text())
		if !ok {
			continue
		}
		r.Regions++
		for a := alignUp(lo); a+hugePage <= hi && ctx.Err() == nil; a += hugePage {
			r.Chunks++
			if !mostlyResident(a, vec) {
				r.Skipped++
				continue
			}
			_ = madvise(a, hugePage, unix.MADV_HUGEPAGE)
			if madvise(a, hugePage, unix.MADV_COLLAPSE) == nil {
				succeeded++
			} else {
				r.Skipped++
			}
		}
	}
	grown := int((anonHugeBytes() - before) / hugePage)
	r.Collapsed = max(0, min(succeeded, grown))
	r.AlreadyHuge = succeeded - r.Collapsed
	r.ElapsedMs = time.Since(start).Milliseconds()
	return r, nil
}

// mostlyResident reports whether at least half of the chunk's pages are in
// memory (mincore; vec holds one byte per page).
func mostlyResident(addr uintptr, vec []byte) bool {
	_, _, e := unix.Syscall(unix.SYS_MINCORE, addr, hugePage, uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return false
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n >= len(vec)/2
}

func alignUp(a uintptr) uintptr { return (a + hugePage - 1) &^ (hugePage - 1) }

// anonRW parses one /proc/self/maps line and reports a private read-write
// anonymous mapping (no backing file; [heap] included, [stack] and the
// kernel's special mappings not).
func anonRW(line string) (lo, hi uintptr, ok bool) {
	f := strings.Fields(line)
	if len(f) < 5 || f[1] != "rw-p" {
		return 0, 0, false
	}
	if len(f) > 5 && f[5] != "[heap]" {
		return 0, 0, false
	}
	a, b, found := strings.Cut(f[0], "-")
	if !found {
		return 0, 0, false
	}
	x, err1 := strconv.ParseUint(a, 16, 64)
	y, err2 := strconv.ParseUint(b, 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uintptr(x), uintptr(y), true
}

// madvise is the raw syscall: the ranges are envd's own mappings, given by
// address, so no Go slice exists for them.
func madvise(addr, length uintptr, advice int) error {
	_, _, e := unix.Syscall(unix.SYS_MADVISE, addr, length, uintptr(advice))
	if e != 0 {
		return e
	}
	return nil
}

// anonHugeBytes is AnonHugePages of /proc/self/smaps_rollup (0 if unknown).
func anonHugeBytes() int64 {
	b, err := readBounded("/proc/self/smaps_rollup", 64<<10)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "AnonHugePages:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
