package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressMin is the size from which cp shows a progress bar.
const progressMin = 4 << 20

// progressBar redraws one terminal line, at most every 100 ms; it is fed
// by the copy itself (an io.Writer), so it needs no goroutine.
type progressBar struct {
	w           io.Writer
	name        string
	total, done int64
	start, last time.Time
}

// bar returns a progress bar for a file of size bytes, or nil when none
// is wanted (not a terminal, -q, or a small file).
func (c *copier) bar(name string, size int64) *progressBar {
	if !c.progress || size < progressMin {
		return nil
	}
	now := time.Now()
	return &progressBar{w: c.a.stderr, name: name, total: size, start: now}
}

func (b *progressBar) Write(p []byte) (int, error) {
	b.done += int64(len(p))
	if now := time.Now(); now.Sub(b.last) >= 100*time.Millisecond {
		b.last = now
		b.render(now)
	}
	return len(p), nil
}

func (b *progressBar) render(now time.Time) {
	const width = 30
	frac := float64(b.done) / float64(max(b.total, 1))
	frac = min(frac, 1)
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	rate := float64(b.done) / max(now.Sub(b.start).Seconds(), 0.001)
	name := b.name
	if len(name) > 24 {
		name = name[:21] + "..."
	}
	fmt.Fprintf(b.w, "\r%-24s %3d%% [%s] %s / %s  %s/s ", name, int(frac*100), bar,
		human(float64(b.done)), human(float64(b.total)), human(rate))
}

// finish draws the final state and ends the line.
func (b *progressBar) finish() {
	b.render(time.Now())
	fmt.Fprintln(b.w)
}

// human formats a byte count with binary units.
func human(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
