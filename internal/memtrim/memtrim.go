// Package memtrim gives back memory an idle envd does not need: heap pages
// the Go runtime holds, and the page-table mappings of envd's own read-only
// executable pages (code and constant data touched at start-up). The latter
// stay in the page cache, so touching them again is a minor fault, not I/O.
// Only non-writable mappings of the executable are trimmed: their content
// can never differ from the file, so dropping them cannot lose data.
package memtrim

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Idle trims once envd has been idle for a while. Touch marks activity.
type Idle struct {
	log   *slog.Logger
	after time.Duration
	last  atomic.Int64 // unix nanos of the last activity
	trim  func() (uint64, error)
}

// NewIdle trims after the given quiet period (0 = 30 s).
func NewIdle(log *slog.Logger, after time.Duration) *Idle {
	if after <= 0 {
		after = 30 * time.Second
	}
	i := &Idle{log: log, after: after, trim: Trim}
	i.Touch()
	return i
}

// Touch records activity (one atomic store; called per request).
func (i *Idle) Touch() { i.last.Store(time.Now().UnixNano()) }

// Run trims at most once per quiet period until ctx ends. It wakes every
// quarter period, so the idle cost is a few timer wake-ups a minute.
func (i *Idle) Run(ctx context.Context) {
	t := time.NewTicker(i.after / 4)
	defer t.Stop()
	var trimmedAt int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last := i.last.Load()
		if last == trimmedAt || time.Since(time.Unix(0, last)) < i.after {
			continue
		}
		trimmedAt = last
		if _, err := i.trim(); err != nil {
			i.log.Debug("memory trim failed", "err", err)
		}
	}
}

// Trim returns freed heap to the OS and unmaps envd's clean read-only
// executable pages. It reports how many bytes of mappings it advised.
func Trim() (advised uint64, err error) {
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	type span struct{ start, end uintptr }
	var spans []span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		var s, e uintptr
		if !parseRange(fields[0], &s, &e) {
			continue
		}
		spans = append(spans, span{s, e})
	}
	for _, sp := range spans {
		// The raw call takes the addresses as integers: these mappings are
		// not Go memory, so no unsafe.Pointer is formed.
		n := sp.end - sp.start
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, sp.start, n, unix.MADV_DONTNEED); e == 0 {
			advised += uint64(n)
		}
	}
	return advised, sc.Err()
}

func parseRange(s string, start, end *uintptr) bool {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	var x, y uint64
	for _, c := range a {
		x = x<<4 | uint64(hexVal(c))
	}
	for _, c := range b {
		y = y<<4 | uint64(hexVal(c))
	}
	*start, *end = uintptr(x), uintptr(y)
	return y > x
}

func hexVal(c rune) byte {
	switch {
	case c >= '0' && c <= '9':
		return byte(c - '0')
	case c >= 'a' && c <= 'f':
		return byte(c-'a') + 10
	}
	return 0
}
