package memtrim

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssFile:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

func TestTrimUnmapsCleanExecutablePages(t *testing.T) {
	before := rssFileKB(t)
	n, err := Trim()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	if n == 0 || after >= before {
		t.Fatalf("advised %d bytes; RssFile %d kB → %d kB", n, before, after)
	}
	// The program keeps working: code pages fault back in from the page cache.
	if s := strings.Repeat("x", 3); s != "xxx" {
		t.Fatal("code after trim misbehaves")
	}
}

// Idle trims once per quiet period, and never while requests keep coming.
func TestIdleTrimsOncePerQuietPeriod(t *testing.T) {
	i := NewIdle(slog.New(slog.NewTextHandler(io.Discard, nil)), 40*time.Millisecond)
	trims := make(chan struct{}, 8)
	i.trim = func() (uint64, error) { trims <- struct{}{}; return 0, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { i.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	select {
	case <-trims:
	case <-time.After(5 * time.Second):
		t.Fatal("no trim after a quiet period")
	}
	// Still quiet: no second trim for the same period.
	select {
	case <-trims:
		t.Fatal("trimmed twice in one quiet period")
	case <-time.After(200 * time.Millisecond):
	}
	// Busy: touching more often than the period keeps it from trimming.
	busy := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(busy) {
		i.Touch()
		select {
		case <-trims:
			t.Fatal("trimmed while busy")
		case <-time.After(5 * time.Millisecond):
		}
	}
	select {
	case <-trims:
	case <-time.After(5 * time.Second):
		t.Fatal("no trim after activity stopped")
	}
}
