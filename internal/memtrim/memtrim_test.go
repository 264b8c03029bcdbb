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

func TestIdleTrimsOnlyWhenQuiet(t *testing.T) {
	i := NewIdle(slog.New(slog.NewTextHandler(io.Discard, nil)), 40*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { i.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for rssFileKB(t) > 2000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // polling a kernel counter; no event exists for it
	}
	cancel()
	<-done
	if kb := rssFileKB(t); kb > 2000 {
		t.Fatalf("idle trim did not run: RssFile %d kB", kb)
	}
}
